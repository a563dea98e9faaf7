{{/*
Names. fullname is <release>-htq, or the release name when it already
contains the chart name; every object is named <fullname>-<component>.
*/}}
{{- define "htq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "htq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "htq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "api"). */}}
{{- define "htq.labels" -}}
helm.sh/chart: {{ include "htq.chart" .ctx }}
{{ include "htq.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: htq
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "api"). */}}
{{- define "htq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "htq.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "htq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "htq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "htq.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret with tokens, signing secrets and passwords. */}}
{{- define "htq.secretName" -}}
{{- default (include "htq.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "htq.redis.fullname" -}}
{{- printf "%s-redis" (include "htq.fullname" .) }}
{{- end }}

{{/*
htq.durationSeconds: a duration as HTQ reads it ("25s", "1m30s", "500ms",
or a number of seconds) in whole seconds, rounded up.
*/}}
{{- define "htq.durationSeconds" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?$" $v }}
{{- ceil (float64 $v) | int }}
{{- else }}
{{- $units := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|h|m|s)" $v -1 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 }}
{{- $unit := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" }}
{{- $total = addf $total (mulf $num (get $units $unit)) }}
{{- end }}
{{- ceil $total | int }}
{{- end }}
{{- else }}
{{- ceil (float64 $v) | int }}
{{- end }}
{{- end }}

{{/* Seconds the dispatcher gets between SIGTERM and SIGKILL. */}}
{{- define "htq.dispatcher.terminationGracePeriodSeconds" -}}
{{- $grace := "25s" }}
{{- with .Values.config }}{{ with .dispatcher }}{{ if hasKey . "shutdown_grace" }}{{ $grace = .shutdown_grace }}{{ end }}{{ end }}{{ end }}
{{- add (include "htq.durationSeconds" $grace | int) (int .Values.dispatcher.terminationGraceMarginSeconds) }}
{{- end }}

{{/* The redis section of HTQ's config, from redis.* / externalRedis.*. */}}
{{- define "htq.redisConfig" -}}
{{- $r := dict }}
{{- $e := .Values.externalRedis }}
{{- if .Values.redis.enabled }}
{{- $_ := set $r "mode" "standalone" }}
{{- $_ := set $r "url" (printf "redis://%s:%d/0" (include "htq.redis.fullname" .) (int .Values.redis.port)) }}
{{- else if $e.url }}
{{- /* The schema refuses this too; this catches --skip-schema-validation. */}}
{{- if regexMatch "^rediss?://[^/?#]*:[^/?#]*@" $e.url }}
{{- fail "externalRedis.url must not hold a password (it would be written to the ConfigMap): set externalRedis.password or externalRedis.existingSecret" }}
{{- end }}
{{- $_ := set $r "mode" "standalone" }}
{{- $_ := set $r "url" $e.url }}
{{- else if $e.sentinel.addrs }}
{{- $_ := set $r "mode" "sentinel" }}
{{- $_ := set $r "addrs" $e.sentinel.addrs }}
{{- $_ := set $r "master_name" $e.sentinel.masterName }}
{{- $_ := set $r "db" (int $e.db) }}
{{- with $e.sentinel.username }}{{ $_ := set $r "sentinel_username" . }}{{ end }}
{{- else if $e.cluster.addrs }}
{{- $_ := set $r "mode" "cluster" }}
{{- $_ := set $r "addrs" $e.cluster.addrs }}
{{- else }}
{{- fail "set redis.enabled=true, or one of externalRedis.url, externalRedis.sentinel.addrs, externalRedis.cluster.addrs" }}
{{- end }}
{{- if not .Values.redis.enabled }}
{{- with $e.username }}{{ $_ := set $r "username" . }}{{ end }}
{{- if $e.tls }}{{ $_ := set $r "tls" true }}{{ end }}
{{- end }}
{{- toYaml $r }}
{{- end }}

{{/* A Redis URL without its userinfo (user:password@), for printing. */}}
{{- define "htq.redactURL" -}}
{{- regexReplaceAll "^(rediss?://)[^/?#]*@" . "${1}" }}
{{- end }}

{{/* The whole config.yaml: .Values.config plus the chart-managed redis keys. */}}
{{- define "htq.configYAML" -}}
{{- $cfg := deepCopy (default dict .Values.config) }}
{{- $redis := merge (include "htq.redisConfig" . | fromYaml) (deepCopy (default dict $cfg.redis)) }}
{{- $_ := set $cfg "redis" $redis }}
{{- toYaml $cfg }}
{{- end }}

{{/* env entry from a key of the Secret; call with (dict "name" "HTQ_X" "key" "k" "secret" "s" "optional" true). */}}
{{- define "htq.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      optional: {{ .optional }}
{{- end }}

{{/* The Redis password env vars every HTQ role gets. */}}
{{- define "htq.redisEnv" -}}
{{- $secret := include "htq.secretName" . }}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret }}
{{ include "htq.secretEnv" (dict "name" "HTQ_REDIS_PASSWORD" "secret" .Values.externalRedis.existingSecret "key" .Values.externalRedis.existingSecretPasswordKey "optional" false) }}
{{- else if and .Values.redis.enabled .Values.redis.auth.enabled }}
{{ include "htq.secretEnv" (dict "name" "HTQ_REDIS_PASSWORD" "secret" $secret "key" "redis-password" "optional" false) }}
{{- else if not .Values.redis.enabled }}
{{ include "htq.secretEnv" (dict "name" "HTQ_REDIS_PASSWORD" "secret" $secret "key" "redis-password" "optional" true) }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.sentinel.addrs }}
{{ include "htq.secretEnv" (dict "name" "HTQ_REDIS_SENTINEL_PASSWORD" "secret" $secret "key" "redis-sentinel-password" "optional" true) }}
{{- end }}
{{- end }}

{{/* Pod annotations that roll the pods when the config or the Secret change. */}}
{{- define "htq.checksums" -}}
checksum/config: {{ include "htq.configYAML" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/*
Scheduling shared by every role; call with (dict "ctx" $ "component" "api" "role" .Values.api).
*/}}
{{- define "htq.scheduling" -}}
{{- $ctx := .ctx }}
{{- with .role.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .role.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .role.affinity }}
affinity:
  {{- toYaml .role.affinity | nindent 2 }}
{{- else if $ctx.Values.softPodAntiAffinity }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "htq.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 14 }}
{{- end }}
{{- if $ctx.Values.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range $ctx.Values.topologySpread.topologyKeys }}
  - maxSkew: {{ $ctx.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $ctx.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "htq.selectorLabels" (dict "ctx" $ctx "component" $.component) | nindent 8 }}
    matchLabelKeys:
      - pod-template-hash
  {{- end }}
{{- end }}
{{- end }}

{{/* The parts of an HTQ container that are the same for every role. */}}
{{- define "htq.containerCommon" -}}
image: {{ include "htq.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
volumeMounts:
  - name: config
    mountPath: /etc/htq
    readOnly: true
{{- end }}

{{- define "htq.podCommon" -}}
serviceAccountName: {{ include "htq.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "htq.fullname" . }}
{{- end }}

{{/* redis.conf of the bundled Redis. */}}
{{- define "htq.redis.conf" -}}
{{- $r := .Values.redis -}}
# The bundled Redis of the HTQ chart: AOF for durability, RDB snapshots
# for backups (docs/operations.md).
port {{ $r.port }}
dir /data
appendonly yes
appendfsync {{ $r.appendfsync }}
appenddirname appendonlydir
aof-use-rdb-preamble yes
save 3600 1 300 100 60 10000
{{- with $r.maxmemory }}
maxmemory {{ . }}
{{- end }}
# HTQ's data must never be evicted.
maxmemory-policy noeviction
{{- if $r.auth.enabled }}
# requirepass, written from the Secret's redis-password by the pod's init
# container (write-auth.sh): the password is in no command line and no
# ConfigMap.
include /run/redis-auth/auth.conf
{{- else }}
# No password: the NetworkPolicy is the only guard.
protected-mode no
{{- end }}
{{- with $r.extraConfig }}
{{- . | nindent 0 }}
{{- end }}
{{- end }}

{{/*
write-auth.sh of the bundled Redis' init container: REDIS_PASSWORD (from the
Secret) becomes the line `requirepass "<password>"` of
/run/redis-auth/auth.conf, on a memory-backed volume only this pod mounts.
printf is a shell builtin and sed reads the password on stdin, so it is in
no process' arguments.
*/}}
{{- define "htq.redis.authScript" -}}
set -eu
nl='
'
case "$REDIS_PASSWORD" in
  "") echo "write-auth.sh: the Secret's redis-password is empty" >&2; exit 1 ;;
  *"$nl"*) echo "write-auth.sh: the Secret's redis-password has a line break" >&2; exit 1 ;;
esac
umask 077
# A double-quoted redis.conf string: escape backslashes and double quotes.
pw=$(printf '%s' "$REDIS_PASSWORD" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
printf 'requirepass "%s"\n' "$pw" > /run/redis-auth/auth.conf
{{- end }}
