package observability

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Secrets of the logs test: each must never appear in any output.
const (
	logBearer      = "obs-log-bearer-S3CRET-7f3a9c0e"
	logLegacyToken = "obs-log-legacy-S3CRET-51d2"
	logRedisPass   = "obs-log-redis-S3CRET-b8e4"
	logWrongBearer = "obs-log-wrong-bearer-S3CRET-c0de"
	logWrongLegacy = "obs-log-wrong-legacy-S3CRET-f00d"
	logLegacyKey   = "obs_log_key"
)

var (
	logSigningKey  = base64.StdEncoding.EncodeToString([]byte("obs-log-signing-S3CRET-key-32byt"))
	logPreviousKey = base64.StdEncoding.EncodeToString([]byte("obs-log-previous-S3CRET-key-32by"))
)

func logConfig(format string) string {
	cfg := `redis:
  url: {{REDIS}}
  password: ` + logRedisPass + `
api:
  tokens: ["` + logBearer + `"]
  legacy_app_key: ` + logLegacyKey + `
  legacy_app_token: ` + logLegacyToken + `
  time_zone: UTC
signing:
  secret: whsec_` + logSigningKey + `
  previous_secret: whsec_` + logPreviousKey + `
scheduler:
  backlog_interval: 1s
dispatcher:
  shutdown_grace: 2s
log:
  level: debug
`
	if format != "" {
		cfg += "  format: " + format + "\n"
	}
	return cfg
}

var textLineRE = regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=`)

// TestLogs runs every role at log.level debug with secrets in its
// configuration (bearer token, legacy app token, Redis password, signing
// secrets) and pushes tasks through REST and the legacy API with them, plus
// requests with wrong tokens; no secret appears in any output. Logs are JSON
// when log.format is not set, one object per line, and text with
// log.format text; the dispatcher's call records carry queue and task_id.
func TestLogs(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"", "text"} {
		name := "json by default"
		if format != "" {
			name = format
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t)
			c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1, WholeConfig: logConfig(format), RedisPassword: logRedisPass})

			hc := c.ClientAs(logBearer)
			one := 1
			if _, created, err := hc.PutQueue(t.Context(), "obs-log", client.QueueSettings{Retry: &client.Retry{MaxAttempts: &one}}); err != nil || !created {
				t.Fatalf("PUT queue: created=%v %v", created, err)
			}
			for _, task := range []client.TaskRequest{
				{URL: tg.URL + "/ok/rest-1"},
				{URL: tg.URL + "/ok/rest-2", Method: "POST", Body: json.RawMessage(`"hello"`), Delay: client.D(300 * time.Millisecond)},
				{URL: tg.URL + "/fail/rest-3"},
			} {
				if _, err := hc.CreateTask(t.Context(), "obs-log", task); err != nil {
					t.Fatalf("POST task: %v", err)
				}
			}
			for i := range 2 {
				if code := legacyCode(t, c, "addTask", "app_key", logLegacyKey, "app_token", logLegacyToken, "queue_name", "obs-log-legacy",
					"url", fmt.Sprintf("%s/ok/legacy-%d", tg.URL, i), "execute_time", "0", "method", "post",
					"header", `{"X-A":"1"}`, "data", `{"a":"1"}`); code != 0 {
					t.Fatalf("legacy addTask: error_code %v", code)
				}
			}
			if status := errStatus(c.ClientAs(logWrongBearer).ListQueues(t.Context(), client.ListOptions{})); status != http.StatusUnauthorized {
				t.Fatalf("wrong bearer token: %d", status)
			}
			if code := legacyCode(t, c, "addTask", "app_key", logLegacyKey, "app_token", logWrongLegacy, "url", tg.URL+"/ok/x"); code != 1000 {
				t.Fatalf("wrong legacy token: error_code %v", code)
			}
			c.WaitFor("the calls", 30*time.Second, func() bool {
				ok, by := counts(tg)
				return ok >= 4 && by["fail"] >= 1
			})
			signed := tg.Calls()[0].Header.Get("Webhook-Signature")
			if !strings.HasPrefix(signed, "v1,") || strings.Count(signed, "v1,") != 2 {
				t.Errorf("calls are not signed with both secrets: webhook-signature %q", signed)
			}
			c.StopAll() // the shutdown records are checked too

			secrets := []string{logBearer, logLegacyToken, logRedisPass, logWrongBearer, logWrongLegacy,
				logSigningKey, logPreviousKey, "S3CRET"}
			for _, p := range c.Procs("") {
				out := p.Log()
				for _, s := range secrets {
					if i := strings.Index(out, s); i >= 0 {
						line := out[strings.LastIndex(out[:i], "\n")+1:]
						line, _, _ = strings.Cut(line, "\n")
						t.Errorf("%s wrote the secret %q: %s", p.Name, s, line)
					}
				}
				checkLogFormat(t, p, format, out)
			}
		})
	}
}

// checkLogFormat checks every line of a process's output: a JSON object
// with time, level, msg and role (json), or time=… level=… msg=… with
// role=… (text). It also wants DEBUG records (log.level debug works) and,
// from a dispatcher, "call" records with the queue and task id.
func checkLogFormat(t *testing.T, p *testcluster.Proc, format, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if out == "" {
		t.Errorf("%s wrote nothing", p.Name)
		return
	}
	debug, calls := 0, 0
	for i, line := range lines {
		switch format {
		case "":
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("%s line %d is not JSON: %v: %s", p.Name, i+1, err, line)
				continue
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := rec[k].(string); !ok {
					t.Errorf("%s line %d has no %s: %s", p.Name, i+1, k, line)
				}
			}
			if rec["role"] != p.Role {
				t.Errorf("%s line %d: role %v, want %s: %s", p.Name, i+1, rec["role"], p.Role, line)
			}
			if rec["level"] == "DEBUG" {
				debug++
			}
			if rec["msg"] == "call" {
				if q, _ := rec["queue"].(string); q == "" {
					t.Errorf("%s line %d: a call record without queue: %s", p.Name, i+1, line)
				}
				if id, _ := rec["task_id"].(string); id == "" {
					t.Errorf("%s line %d: a call record without task_id: %s", p.Name, i+1, line)
				}
				calls++
			}
		case "text":
			if !textLineRE.MatchString(line) || !strings.Contains(line, " role="+p.Role) {
				t.Errorf("%s line %d is not a text record with role=%s: %s", p.Name, i+1, p.Role, line)
				continue
			}
			if strings.Contains(line, " level=DEBUG ") {
				debug++
			}
			if strings.Contains(line, " msg=call ") {
				if !strings.Contains(line, " queue=") || !strings.Contains(line, " task_id=") {
					t.Errorf("%s line %d: a call record without queue or task_id: %s", p.Name, i+1, line)
				}
				calls++
			}
		}
	}
	if p.Role == "dispatcher" {
		if debug == 0 {
			t.Errorf("%s: no DEBUG record at log.level debug", p.Name)
		}
		if calls < 5 {
			t.Errorf("%s: %d call records, want one per call (5)", p.Name, calls)
		}
	}
}
