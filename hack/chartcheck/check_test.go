package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func loadKnown(t *testing.T) *Known {
	t.Helper()
	f, err := os.Open("testdata/readme.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := ParseReadme(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// problems decodes and checks a rendering, returning every problem.
func problems(t *testing.T, name, data string) []string {
	t.Helper()
	objs, errs := Decode(name, strings.NewReader(data))
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return append(out, Check(objs, loadKnown(t))...)
}

func readGood(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGoodPasses(t *testing.T) {
	t.Parallel()
	if p := problems(t, "good.yaml", readGood(t)); len(p) > 0 {
		t.Fatalf("good.yaml has problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrokenFixtures breaks good.yaml one way at a time: each must be caught
// with a message containing want.
func TestBrokenFixtures(t *testing.T) {
	t.Parallel()
	good := readGood(t)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"selector does not match pod labels", "    matchLabels: {app: htq, component: api}\n  template:", "    matchLabels: {app: htq, component: apx}\n  template:", "does not match the pod template's labels"},
		{"service selects nothing", "  selector: {app: redis}\n  ports:", "  selector: {app: rediz}\n  ports:", "matches no pod template"},
		{"service targetPort unknown", "{name: redis, port: 6379, targetPort: redis}", "{name: redis, port: 6379, targetPort: redis-port}", "targetPort redis-port is not a container port"},
		{"service numeric targetPort unknown", "{name: metrics, port: 9090}", "{name: metrics, port: 9091}", "targetPort 9091 is not a container port"},
		{"no memory limit", "limits: {cpu: \"1\", memory: 256Mi}", "limits: {cpu: \"1\"}", "no memory limit"},
		{"no cpu request", "requests: {cpu: 100m, memory: 64Mi}", "requests: {memory: 64Mi}", "no cpu request"},
		{"request above limit", "requests: {cpu: 100m, memory: 64Mi}", "requests: {cpu: 100m, memory: 1Gi}", "memory request 1Gi is above its limit"},
		{"no readiness probe", "          readinessProbe:\n            httpGet: {path: /readyz, port: http}\n", "", "container api: no readiness probe"},
		{"wrong liveness path", "httpGet: {path: /healthz, port: http}", "httpGet: {path: /health, port: http}", `liveness probe path is "/health", want /healthz`},
		{"probe on an undeclared port", "httpGet: {path: /healthz, port: 8081}", "httpGet: {path: /healthz, port: 8082}", "liveness probe port 8082 is not a port of the container"},
		{"probe on the metrics port", "httpGet: {path: /healthz, port: http}", "httpGet: {path: /healthz, port: metrics}", "liveness probe is on port 9090, but api.listen is port 5999"},
		{"identical redis probes", "tcpSocket: {port: redis}", "exec: {command: [redis-cli, ping]}", "liveness and readiness probes are identical"},
		{"listen port not declared", `{name: HTQ_API_LISTEN, value: ":5999"}`, `{name: HTQ_API_LISTEN, value: ":6000"}`, `api.listen is ":6000" but port 6000 is not a containerPort`},
		{"listen on loopback", `{name: HTQ_DISPATCHER_LISTEN, value: ":8081"}`, `{name: HTQ_DISPATCHER_LISTEN, value: "127.0.0.1:8081"}`, "listens on 127.0.0.1 only"},
		{"listen left at its default", "            - {name: HTQ_DISPATCHER_LISTEN, value: \":8081\"}\n", "", `listen address "127.0.0.1:0": listens on 127.0.0.1 only`},
		{"listen on a random port", `{name: HTQ_DISPATCHER_LISTEN, value: ":8081"}`, `{name: HTQ_DISPATCHER_LISTEN, value: ":0"}`, "want a fixed port 1-65535"},
		{"flag wins over env", "command: [/usr/local/bin/htq-dispatcher, --config, /etc/htq/config.yaml]", "command: [/usr/local/bin/htq-dispatcher, --config, /etc/htq/config.yaml, --listen=:9000]", `dispatcher.listen is ":9000" but port 9000`},
		{"port nothing listens on", "            - {name: metrics, containerPort: 9090}\n          env:", "            - {name: metrics, containerPort: 9090}\n            - {name: extra, containerPort: 7000}\n          env:", "containerPort 7000 (extra) is not a port HTQ listens on"},
		{"metrics port not declared", `{name: HTQ_API_METRICS_LISTEN, value: ":9090"}`, `{name: HTQ_API_METRICS_LISTEN, value: ":9191"}`, `api.metrics_listen is ":9191" but port 9191 is not a containerPort`},
		{"termination grace too short", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 25", "terminationGracePeriodSeconds 25 does not exceed dispatcher.shutdown_grace 25s"},
		{"default termination grace vs long shutdown_grace", "      shutdown_grace: 25s", "      shutdown_grace: 1m", "terminationGracePeriodSeconds 40 does not exceed dispatcher.shutdown_grace 1m0s"},
		{"shutdown_grace from env", `{name: HTQ_DISPATCHER_LISTEN, value: ":8081"}`, `{name: HTQ_DISPATCHER_LISTEN, value: ":8081"}` + "\n            - {name: HTQ_DISPATCHER_SHUTDOWN_GRACE, value: \"45\"}", "does not exceed dispatcher.shutdown_grace 45s"},
		{"not read-only root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem is not true"},
		{"privilege escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation is not false"},
		{"capabilities kept", "capabilities: {drop: [ALL]}", "capabilities: {drop: [NET_RAW]}", "capabilities do not drop ALL"},
		{"root user", "runAsUser: 65532\n        seccompProfile: {type: RuntimeDefault}\n      volumes:\n        - name: config\n          configMap: {name: htq}\n      containers:\n        - name: api", "runAsUser: 0\n        seccompProfile: {type: RuntimeDefault}\n      volumes:\n        - name: config\n          configMap: {name: htq}\n      containers:\n        - name: api", "runs as root"},
		{"not the image's user", "terminationGracePeriodSeconds: 40\n      securityContext:\n        runAsNonRoot: true\n        runAsUser: 65532", "terminationGracePeriodSeconds: 40\n      securityContext:\n        runAsNonRoot: true\n        runAsUser: 1000", "runAsUser 1000: the HTQ image's user is 65532"},
		{"no seccomp", "        seccompProfile: {type: RuntimeDefault}\n      volumes:\n        - name: config\n          configMap: {name: htq}\n      containers:\n        - name: dispatcher", "      volumes:\n        - name: config\n          configMap: {name: htq}\n      containers:\n        - name: dispatcher", "seccompProfile is not RuntimeDefault"},
		{"runAsNonRoot off", "runAsNonRoot: true\n        runAsUser: 65532\n        seccompProfile: {type: RuntimeDefault}\n      containers:", "runAsNonRoot: false\n        runAsUser: 65532\n        seccompProfile: {type: RuntimeDefault}\n      containers:", "container redis: runAsNonRoot is not true"},
		{"config key unknown", "      shutdown_grace: 25s", "      shutdown_grace: 25s\n      max_queue: 5", "config key dispatcher.max_queue is not one of HTQ's"},
		{"env unknown", `{name: HTQ_API_LISTEN, value: ":5999"}`, `{name: HTQ_API_LISTEN, value: ":5999"}` + "\n            - {name: HTQ_API_TOKEN, value: x}", "env HTQ_API_TOKEN is not one of HTQ's variables"},
		{"env twice", `{name: HTQ_API_METRICS_LISTEN, value: ":9090"}`, `{name: HTQ_API_METRICS_LISTEN, value: ":9090"}` + "\n            - {name: HTQ_API_LISTEN, value: \":5999\"}", "env HTQ_API_LISTEN is set twice"},
		{"secret key missing", "valueFrom: {secretKeyRef: {name: htq, key: api-tokens}}", "valueFrom: {secretKeyRef: {name: htq, key: api-token}}", "Secret htq has no key api-token"},
		{"config map missing", "configMap: {name: htq}\n      containers:\n        - name: api", "configMap: {name: htq-config}\n      containers:\n        - name: api", "ConfigMap htq-config is not in the rendering"},
		{"config not mounted", "args: [--config=/etc/htq/config.yaml]", "args: [--config=/etc/htq-cfg/config.yaml]", "no volume is mounted at /etc/htq-cfg"},
		{"config key missing", "args: [--config=/etc/htq/config.yaml]", "args: [--config=/etc/htq/htq.yaml]", "ConfigMap htq has no key htq.yaml"},
		{"config mount writable", "            - {name: config, mountPath: /etc/htq, readOnly: true}\n          securityContext:\n            readOnlyRootFilesystem: true\n            allowPrivilegeEscalation: false\n            capabilities: {drop: [ALL]}\n          resources:\n            requests: {cpu: 100m, memory: 64Mi}\n            limits: {cpu: \"1\", memory: 256Mi}\n          livenessProbe:\n            httpGet: {path: /healthz, port: http}", "            - {name: config, mountPath: /etc/htq}\n          securityContext:\n            readOnlyRootFilesystem: true\n            allowPrivilegeEscalation: false\n            capabilities: {drop: [ALL]}\n          resources:\n            requests: {cpu: 100m, memory: 64Mi}\n            limits: {cpu: \"1\", memory: 256Mi}\n          livenessProbe:\n            httpGet: {path: /healthz, port: http}", "the config mount is not readOnly"},
		{"mount without volume", "            - {name: data, mountPath: /data}", "            - {name: cache, mountPath: /data}", "volumeMount cache: no such volume"},
		{"pdb selects nothing", "  maxUnavailable: 1\n  selector:\n    matchLabels: {app: htq, component: api}", "  maxUnavailable: 1\n  selector:\n    matchLabels: {app: htq, component: web}", "selector app=htq,component=web matches no pod template"},
		{"pdb blocks drains", "  maxUnavailable: 1\n  selector:", "  minAvailable: 2\n  selector:", "minAvailable 2 with 2 replicas"},
		{"pdb without policy", "  maxUnavailable: 1\n  selector:", "  selector:", "neither minAvailable nor maxUnavailable"},
		{"hpa target missing", "kind: Deployment, name: dispatcher}", "kind: Deployment, name: dispatch}", "scale target Deployment dispatch is not in the rendering"},
		{"hpa target sets replicas", "kind: Deployment, name: dispatcher}", "kind: Deployment, name: api}", "sets replicas"},
		{"ingress backend port", "backend: {service: {name: api, port: {name: http}}}", "backend: {service: {name: api, port: {name: web}}}", "backend Service api has no port web"},
		{"netpol named port", "    - ports: [{port: http}]", "    - ports: [{port: web}]", "ingress port web is not a named port"},
		{"servicemonitor port", "    - port: metrics\n", "    - port: prom\n", `endpoint port "prom" is not a port of any selected Service`},
		{"servicemonitor selects nothing", "    matchLabels: {app: htq}\n  endpoints:", "    matchLabels: {app: htx}\n  endpoints:", "selector app=htx matches no Service"},
		{"rule without expr", "          expr: up == 0", "          expr: \"\"", "has no expr"},
		{"statefulset service missing", "  serviceName: redis", "  serviceName: redis-headless", "serviceName redis-headless is not a Service"},
		{"statefulset service not headless", "  clusterIP: None\n", "", "serviceName redis is not a headless Service"},
		{"duplicate object", "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: api, namespace: t}", "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: t}\nspec: {selector: {app: htq}, ports: [{port: 1, targetPort: http}]}\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: api, namespace: t}", "same kind and name as"},
		{"unknown field", "  serviceName: redis", "  serviceName: redis\n  replica: 1", `unknown field "spec.replica"`},
		{"wrong type", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: \"40\"", "cannot unmarshal"},
		{"metrics on the API's Service", "    - {name: http, port: 80, targetPort: http}\n---", "    - {name: http, port: 80, targetPort: http}\n    - {name: metrics, port: 9090, targetPort: metrics}\n---", "exposes both the API (port http) and the API's /metrics (port metrics)"},
		{"metrics port number on the API's Service", "    - {name: http, port: 80, targetPort: http}\n---", "    - {name: http, port: 80, targetPort: http}\n    - {name: prom, port: 9090, targetPort: 9090}\n---", "exposes both the API (port http) and the API's /metrics (port prom)"},
		{"ingress to the metrics Service", "backend: {service: {name: api, port: {name: http}}}", "backend: {service: {name: api-metrics, port: {name: metrics}}}", "backend Service api-metrics exposes the API's /metrics (port metrics)"},
		{"metrics on a load balancer", "  clusterIP: None\n  selector: {app: htq, component: api}", "  type: LoadBalancer\n  selector: {app: htq, component: api}", "a LoadBalancer Service exposes the API's /metrics (port metrics)"},
		{"servicemonitor misses a role", "metadata: {name: dispatcher-metrics, namespace: t, labels: {app: htq}}", "metadata: {name: dispatcher-metrics, namespace: t}", "scrapes no pod of broken.yaml#3 Deployment t/dispatcher"},
		{"requirepass flag", "          image: redis:7\n", "          image: redis:7\n          command: [redis-server]\n          args: [/etc/redis/redis.conf, --requirepass, $(REDIS_PASSWORD)]\n", `container redis: passes a Redis password on the command line ("--requirepass ***")`},
		{"requirepass inline", "          image: redis:7\n", "          image: redis:7\n          args: [redis-server, --requirepass=hunter2]\n", `passes a Redis password on the command line ("--requirepass=***")`},
		{"requirepass in a script", "          image: redis:7\n", "          image: redis:7\n          command: [sh, -c, 'exec redis-server /etc/redis/redis.conf --requirepass \"$REDIS_PASSWORD\"']\n", "passes a Redis password on the command line"},
		{"masterauth flag", "          image: redis:7\n", "          image: redis:7\n          args: [redis-server, --masterauth, hunter2]\n", `passes a Redis password on the command line ("--masterauth ***")`},
		{"requirepass in a ConfigMap", "data:\n  config.yaml: |", "data:\n  redis.conf: |\n    port 6379\n    requirepass hunter2\n  config.yaml: |", "key redis.conf sets a Redis password (requirepass ...) in a ConfigMap"},
		{"REQUIREPASS in a ConfigMap", "data:\n  config.yaml: |", "data:\n  redis.conf: |\n    REQUIREPASS hunter2\n  config.yaml: |", "key redis.conf sets a Redis password (REQUIREPASS ...) in a ConfigMap"},
		{"ACL user in a ConfigMap", "data:\n  config.yaml: |", "data:\n  redis.conf: |\n    user app on >hunter2 ~* +@all\n  config.yaml: |", "key redis.conf sets a Redis password (user ...) in a ConfigMap"},
		{"quoted requirepass in a ConfigMap", "data:\n  config.yaml: |", "data:\n  redis.conf: |\n    \"requirepass\" hunter2\n  config.yaml: |", "key redis.conf sets a Redis password (\"requirepass\" ...) in a ConfigMap"},
		{"redis url with a password", "url: redis://redis:6379/0", "url: redis://:hunter2@redis:6379/0", "key config.yaml holds a Redis URL with a password (redis://***@redis:6379/0)"},
		{"redis url with user and password", "url: redis://redis:6379/0", "url: rediss://htq:hunter2@redis:6379/0", "holds a Redis URL with a password (rediss://***@redis:6379/0)"},
		{"redis url env with a password", `{name: HTQ_DISPATCHER_LISTEN, value: ":8081"}`, `{name: HTQ_DISPATCHER_LISTEN, value: ":8081"}` + "\n            - {name: HTQ_REDIS_URL, value: \"redis://u:pw@redis:6379/0\"}", "env HTQ_REDIS_URL: the Redis URL holds a password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(good, tc.old) {
				t.Fatalf("good.yaml does not contain %q", tc.old)
			}
			broken := strings.Replace(good, tc.old, tc.new, 1)
			p := problems(t, "broken.yaml", broken)
			if !containsProblem(p, tc.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tc.want, strings.Join(p, "\n"))
			}
			if containsProblem(p, "hunter2") {
				t.Fatalf("a problem repeats the password:\n%s", strings.Join(p, "\n"))
			}
		})
	}
}

func containsProblem(probs []string, want string) bool {
	for _, p := range probs {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

// TestBrokenFiles: documents that must fail to decode.
func TestBrokenFiles(t *testing.T) {
	t.Parallel()
	for file, wants := range map[string][]string{
		"broken-unknown-field.yaml": {`unknown field "spec.ports[0].targetport"`},
		"broken-wrong-type.yaml":    {"cannot unmarshal", "replicas"},
		"broken-duplicate-key.yaml": {"not valid YAML", `"a"`},
		"broken-unknown-kind.yaml":  {"unknown apiVersion/kind monitoring.coreos.com/v1 ServiceMonitorr", "unknown apiVersion/kind apps/v1beta1 Deployment"},
	} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile("testdata/" + file)
			if err != nil {
				t.Fatal(err)
			}
			p := problems(t, file, string(b))
			for _, w := range wants {
				if !containsProblem(p, w) {
					t.Errorf("want a problem containing %q, got:\n%s", w, strings.Join(p, "\n"))
				}
			}
		})
	}
}

// TestRun covers the command: exit codes, -want and -absent.
func TestRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-readme", "testdata/readme.md", "testdata/good.yaml"}, 0, "chartcheck: ok: 15 objects"},
		{[]string{"-want", "ScaledObject", "testdata/good.yaml"}, 1, "no ScaledObject was rendered"},
		{[]string{"-absent", "Ingress,Secret", "testdata/good.yaml"}, 1, "a Secret was rendered"},
		{[]string{"testdata/good.yaml", "testdata/broken-wrong-type.yaml"}, 1, "problem(s)"},
		{[]string{}, 2, ""},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("run %v = %d, %q (stderr %q); want %d and %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
}

func TestParseHTQDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"25s": "25s", "1m30s": "1m30s", "90": "1m30s", "1.5": "1.5s", "500ms": "500ms"} {
		d, err := parseHTQDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("parseHTQDuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
}

// TestPasswordDetection: what counts as a password on a command line or in
// a Redis URL, and what does not.
func TestPasswordDetection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"redis-server", "/etc/redis/redis.conf"}, false},
		{[]string{"redis-server", "/etc/redis/redis.conf", "--include", "/run/redis-auth/auth.conf"}, false},
		{[]string{"redis-cli", "CONFIG", "GET", "requirepass"}, false},
		{[]string{"sh", "/etc/redis/write-auth.sh"}, false},
		{[]string{"redis-server", "--requirepass", "$(REDIS_PASSWORD)"}, true},
		{[]string{"redis-server", "--REQUIREPASS=x"}, true},
		{[]string{"redis-cli", "CONFIG", "SET", "requirepass", "x"}, true},
		{[]string{"sh", "-c", "redis-server --masterauth $PW"}, true},
	} {
		if _, got := passwordInArgs(tc.args); got != tc.want {
			t.Errorf("passwordInArgs(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
	for u, want := range map[string]bool{
		"redis://redis:6379/0":          false,
		"rediss://htq@redis:6380/2":     false,
		"redis://[::1]:6379":            false,
		"redis://htq@[::1]:6379/0":      false,
		"redis://host:6379/0?a=b@c:d":   false,
		"redis://:secret@host:6379":     true,
		"redis://user:secret@host":      true,
		"redis://user:@host":            true,
		"redis://u:p@ss@host:6379/0":    true,
		"redis://u:p%40ss@host:6379/0":  true,
		"redis://u:p#ss@host:6379/0":    false, // a fragment: no userinfo
		"rediss://u:s3cr3t@h:1/0?x=y#z": true,
	} {
		if got := urlPassword(u); got != want {
			t.Errorf("urlPassword(%q) = %v, want %v", u, got, want)
		}
	}
	if got := redactURL("redis://u:p@ss@host:6379/0"); got != "redis://***@host:6379/0" {
		t.Errorf("redactURL = %q", got)
	}
}
