#!/usr/bin/env bash
# hack/tools/kube-apiserver.sh — a throwaway, loopback-only Kubernetes API
# server (etcd + kube-apiserver, no kubelet/controllers) for validating
# manifests with `kubectl apply --dry-run=server`.
#
# Usage:
#   eval "$(hack/tools/kube-apiserver.sh start <workdir>)"   # sets KUBECONFIG
#   kubectl apply --dry-run=server -f deploy/k8s/
#   hack/tools/kube-apiserver.sh stop <workdir>
#   hack/tools/kube-apiserver.sh status <workdir>   # exit 0 if both are running
#   hack/tools/kube-apiserver.sh env <workdir>      # print the export line again
#
# `start` prints only `export KUBECONFIG=<workdir>/kubeconfig` on stdout
# (progress goes to stderr), writes <workdir>/{etcd,kube-apiserver}.pid,
# <workdir>/env and logs, and returns once /readyz is ok and the default
# namespace exists. On failure it stops whatever it started and exits 1.
# `stop` stops kube-apiserver BEFORE etcd (the other order makes the API
# server's shutdown hang), escalating to SIGKILL after a deadline, and
# removes the etcd data dir (logs stay).
#
# Binaries: $ETCD, $KUBE_APISERVER, $KUBECTL, else $TOOLS_DIR/<name>
# (installed via hack/tools/install.sh when missing).
# Knobs: KUBE_APISERVER_START_TIMEOUT (s, default 120),
#        KUBE_APISERVER_EXTRA_ARGS (extra flags, word-split).
# Admission: the ServiceAccount admission plugin is disabled because no
# controller-manager runs to create the `default` ServiceAccount, so Pod
# templates would otherwise be rejected.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/htq/tools/bin}"
ETCD="${ETCD:-$TOOLS_DIR/etcd}"
KUBE_APISERVER="${KUBE_APISERVER:-$TOOLS_DIR/kube-apiserver}"
KUBECTL="${KUBECTL:-$TOOLS_DIR/kubectl}"
START_TIMEOUT="${KUBE_APISERVER_START_TIMEOUT:-120}"
START_OK=""
START_WD=""

msg() { printf 'kube-apiserver.sh: %s\n' "$*" >&2; }
die() { msg "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# pid_alive <pidfile> <binary-name>: the pid in the file is that binary, running
# for this workdir (its command line mentions the workdir), not a recycled pid.
pid_alive() {
  local pid dir argv0
  [[ -s "$1" ]] || return 1
  pid="$(cat "$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1)"
  [[ "${argv0##*/}" == "$2" ]] || return 1
  dir="$(cd "$(dirname "$1")" && pwd)"
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qF -- "$dir/"
}

# running <pid>: the process exists and is not a zombie.
running() {
  local state
  state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# stop_one <pidfile> <binary-name> <deadline-seconds>
stop_one() {
  local pidfile=$1 name=$2 deadline=$3 pid i
  if ! pid_alive "$pidfile" "$name"; then rm -f "$pidfile"; return 0; fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < deadline * 10; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    msg "$name (pid $pid) still running after ${deadline}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

do_stop() {
  local wd=$1
  [[ -d "$wd" ]] || return 0
  stop_one "$wd/kube-apiserver.pid" kube-apiserver 30
  stop_one "$wd/etcd.pid" etcd 15
  rm -rf "$wd/etcd-data"
}

# free_port: an unused loopback TCP port (kernel-assigned when python3 exists).
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

ensure_binaries() {
  local missing=()
  [[ -x "$ETCD" ]] || missing+=(etcd)
  [[ -x "$KUBE_APISERVER" ]] || missing+=(kube-apiserver)
  [[ -x "$KUBECTL" ]] || missing+=(kubectl)
  if ((${#missing[@]})); then
    msg "installing ${missing[*]} into $TOOLS_DIR"
    TOOLS_DIR="$TOOLS_DIR" "$SCRIPT_DIR/install.sh" "${missing[@]}" >&2
  fi
}

# wait_for <deadline-epoch> <pidfile> <name> <logfile> <command...>:
# poll the command every 0.2s until it succeeds, the process dies or time runs out.
wait_for() {
  local deadline=$1 pidfile=$2 name=$3 logf=$4; shift 4
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    if ! pid_alive "$pidfile" "$name"; then
      msg "$name exited during startup; last lines of $logf:"
      tail -n 40 "$logf" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      msg "$name not ready after ${START_TIMEOUT}s; last lines of $logf:"
      tail -n 40 "$logf" >&2
      return 1
    fi
    sleep 0.2
  done
}

do_start() {
  local wd=$1
  mkdir -p "$wd"
  wd="$(cd "$wd" && pwd)"
  if pid_alive "$wd/kube-apiserver.pid" kube-apiserver || pid_alive "$wd/etcd.pid" etcd; then
    die "already running in $wd (run: $0 stop $wd)"
  fi
  ensure_binaries
  command -v openssl >/dev/null || die "openssl is required"
  command -v curl >/dev/null || die "curl is required"

  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  # Clean up everything started so far unless we reach the end successfully.
  START_WD=$wd
  trap 'if [[ -z "$START_OK" ]]; then msg "start failed; stopping"; do_stop "$START_WD"; fi' EXIT
  trap 'exit 130' INT TERM

  rm -rf "$wd/etcd-data"
  mkdir -p "$wd/certs"
  local token
  token="$(openssl rand -hex 24)"
  printf '%s,htq-admin,htq-admin,system:masters\n' "$token" >"$wd/tokens.csv"
  [[ -s "$wd/sa.key" ]] || openssl genrsa -out "$wd/sa.key" 2048 2>/dev/null
  chmod 600 "$wd/tokens.csv" "$wd/sa.key"

  # etcd on two free loopback ports (retry if a port was taken meanwhile).
  local etcd_port peer_port attempt
  for attempt in 1 2 3; do
    etcd_port="$(free_port)" peer_port="$(free_port)"
    [[ "$etcd_port" != "$peer_port" ]] || continue
    "$ETCD" --name htq-test --data-dir "$wd/etcd-data" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-cluster "htq-test=http://127.0.0.1:$peer_port" --initial-cluster-state new \
      --unsafe-no-fsync --log-level warn \
      </dev/null >"$wd/etcd.log" 2>&1 &
    echo $! >"$wd/etcd.pid"
    if wait_for "$deadline" "$wd/etcd.pid" etcd "$wd/etcd.log" \
      curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health"; then
      break
    fi
    stop_one "$wd/etcd.pid" etcd 5
    rm -rf "$wd/etcd-data"
    if ! grep -q 'address already in use' "$wd/etcd.log" || ((attempt == 3)); then
      die "etcd did not start"
    fi
  done
  pid_alive "$wd/etcd.pid" etcd || die "etcd did not start"
  msg "etcd ready on 127.0.0.1:$etcd_port after $((SECONDS - t0))s"

  local port
  for attempt in 1 2 3; do
    port="$(free_port)"
    # shellcheck disable=SC2086 # KUBE_APISERVER_EXTRA_ARGS is word-split on purpose
    "$KUBE_APISERVER" \
      --etcd-servers "http://127.0.0.1:$etcd_port" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
      --cert-dir "$wd/certs" \
      --token-auth-file "$wd/tokens.csv" \
      --authorization-mode AlwaysAllow \
      --service-account-issuer https://kubernetes.default.svc.cluster.local \
      --service-account-key-file "$wd/sa.key" \
      --service-account-signing-key-file "$wd/sa.key" \
      --service-cluster-ip-range 10.96.0.0/16 \
      --disable-admission-plugins ServiceAccount \
      --allow-privileged=true \
      --profiling=false \
      ${KUBE_APISERVER_EXTRA_ARGS:-} \
      </dev/null >"$wd/kube-apiserver.log" 2>&1 &
    echo $! >"$wd/kube-apiserver.pid"
    if wait_for "$deadline" "$wd/kube-apiserver.pid" kube-apiserver "$wd/kube-apiserver.log" \
      curl -fsSk --max-time 2 -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz"; then
      break
    fi
    stop_one "$wd/kube-apiserver.pid" kube-apiserver 10
    if ! grep -q 'address already in use' "$wd/kube-apiserver.log" || ((attempt == 3)); then
      die "kube-apiserver did not start"
    fi
  done

  # Verify against the CA that kube-apiserver generated in --cert-dir.
  local ca="$wd/certs/apiserver.crt"
  cat >"$wd/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: htq-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $ca
users:
- name: htq-admin
  user:
    token: $token
contexts:
- name: htq-test
  context:
    cluster: htq-test
    user: htq-admin
    namespace: default
current-context: htq-test
EOF
  chmod 600 "$wd/kubeconfig"
  # /readyz can pass a moment before the bootstrap controller creates `default`.
  wait_for "$deadline" "$wd/kube-apiserver.pid" kube-apiserver "$wd/kube-apiserver.log" \
    "$KUBECTL" --kubeconfig "$wd/kubeconfig" get namespace default ||
    die "namespace default did not appear"

  cat >"$wd/env" <<EOF
export KUBECONFIG=$wd/kubeconfig
export HTQ_TEST_APISERVER=https://127.0.0.1:$port
export HTQ_TEST_ETCD=http://127.0.0.1:$etcd_port
EOF
  START_OK=1
  msg "kube-apiserver ready on https://127.0.0.1:$port after $((SECONDS - t0))s (workdir $wd)"
  echo "export KUBECONFIG=$wd/kubeconfig"
}

main() {
  [[ $# -eq 2 ]] || usage
  case "$1" in
    start) do_start "$2" ;;
    stop) do_stop "$2" ;;
    status)
      if ! pid_alive "$2/kube-apiserver.pid" kube-apiserver || ! pid_alive "$2/etcd.pid" etcd; then
        echo "not running"
        exit 1
      fi
      echo "running: etcd pid $(cat "$2/etcd.pid"), kube-apiserver pid $(cat "$2/kube-apiserver.pid")"
      ;;
    env) [[ -f "$2/env" ]] || die "no env in $2 (not started?)"; grep '^export KUBECONFIG=' "$2/env" ;;
    *) usage ;;
  esac
}

main "$@"
