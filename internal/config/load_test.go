package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/task"
)

// noEnv is a lookup that finds no environment variable.
func noEnv(string) (string, bool) { return "", false }

// envOf returns a lookup that finds only the given variables.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load loads content written to name, with the given environment.
func load(t testing.TB, name, content string, env map[string]string) (*config.Loaded, error) {
	t.Helper()
	path := ""
	if name != "" {
		path = writeFile(t, name, content)
	}
	return config.Load(path, envOf(env))
}

// mustLoad is load that fails the test on an error.
func mustLoad(t testing.TB, name, content string, env map[string]string) *config.Loaded {
	t.Helper()
	l, err := load(t, name, content, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return l
}

// wantErr checks that err is a configuration error containing every part.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func d(v time.Duration) config.Duration { return config.Duration(v) }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	l, err := config.Load("", noEnv)
	if err != nil {
		t.Fatalf("Load with nothing set: %v", err)
	}
	if l.Legacy || len(l.Warnings) != 0 {
		t.Fatalf("Legacy %v, Warnings %q", l.Legacy, l.Warnings)
	}
	if !reflect.DeepEqual(l.Config, config.Default()) {
		t.Fatalf("Load(\"\") differs from Default():\n%+v\n%+v", l.Config, config.Default())
	}
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate(): %v", err)
	}
	q := l.QueueDefaults()
	if err := q.Validate(); err != nil {
		t.Fatalf("QueueDefaults().Validate(): %v", err)
	}
	if !reflect.DeepEqual(q, task.DefaultQueueConfig()) {
		t.Fatalf("QueueDefaults of the defaults = %+v, want task.DefaultQueueConfig()", q)
	}
}

func TestLoadEmptyYAML(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", "\n\n", "# only a comment\n", "   "} {
		l := mustLoad(t, "htq.yaml", content, nil)
		if !reflect.DeepEqual(l.Config, config.Default()) {
			t.Fatalf("empty file %q changed the defaults", content)
		}
	}
}

const fullYAML = `
redis:
  mode: sentinel
  url: ""
  addrs: ["10.0.0.1:26379", "10.0.0.2:26379"]
  username: htq
  password: redis-secret
  db: 2
  master_name: mymaster
  sentinel_username: sentinel
  sentinel_password: sentinel-secret
  tls: true
  key_prefix: "prod:"
  pool_size: 50
  dial_timeout: 2s
  read_timeout: 1500ms
  write_timeout: PT4S
api:
  listen: "0.0.0.0:8080"
  metrics_listen: "127.0.0.1:9090"
  tokens: ["0123456789abcdef-one", "0123456789abcdef-two"]
  token_sha256: ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
  insecure_no_auth: false
  legacy_app_key: appkey
  legacy_app_token: apptoken
  time_zone: Asia/Shanghai
  cors_origins: ["https://a.example", "https://b.example"]
  cors_credentials: false
  allowed_hosts: [htq.internal]
  auto_create_queues: true
  max_body_bytes: 2048
  max_url_bytes: 1024
  max_header_bytes: 512
  max_batch: 10
  read_header_timeout: 1
  read_timeout: 2.5
  write_timeout: 3s
  idle_timeout: 1m
  ui: false
dispatcher:
  listen: "127.0.0.1:7001"
  id: worker-1
  max_queues: 7
  lease_ttl: 3s
  recovery_grace: 0s
  shutdown_grace: 10s
  poll_min: 5ms
  poll_max: 500ms
  max_response_bytes: 4096
  history: 0
scheduler:
  listen: "127.0.0.1:7002"
  lock_ttl: 1s
  poll_interval: 250ms
  promote_batch: 50
  janitor_interval: 1m
queues:
  timeout: 10s
  max_attempts: 3
  min_backoff: 2s
  max_backoff: 1m
  max_backlog: 1000
  retention: 2h
  dead_retention: 48h
  min_variable_gap: 250ms
  idempotency_window: 1h
legacy:
  max_attempts: 2
  min_gap: 500ms
  strict_execute_time: true
signing:
  secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  previous_secret: whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD
egress:
  default_deny: false
  deny: [10.0.0.0/8, 192.0.2.1]
  allow: [0.0.0.0/0]
  deny_loopback: true
log:
  level: debug
  format: text
`

func TestLoadYAMLAllSections(t *testing.T) {
	t.Parallel()
	l := mustLoad(t, "htq.yaml", fullYAML, nil)
	if l.Legacy || len(l.Warnings) != 0 {
		t.Fatalf("Legacy %v, Warnings %q", l.Legacy, l.Warnings)
	}
	want := &config.Config{
		Redis: config.Redis{
			Mode: "sentinel", URL: "", Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, Username: "htq",
			Password: "redis-secret", DB: 2, MasterName: "mymaster", SentinelUsername: "sentinel",
			SentinelPassword: "sentinel-secret", TLS: true, KeyPrefix: "prod:", PoolSize: 50,
			DialTimeout: d(2 * time.Second), ReadTimeout: d(1500 * time.Millisecond), WriteTimeout: d(4 * time.Second),
		},
		API: config.API{
			Listen: "0.0.0.0:8080", MetricsListen: "127.0.0.1:9090",
			Tokens:       []string{"0123456789abcdef-one", "0123456789abcdef-two"},
			TokenSHA256:  []string{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			LegacyAppKey: "appkey", LegacyAppToken: "apptoken", TimeZone: "Asia/Shanghai",
			CORSOrigins: []string{"https://a.example", "https://b.example"}, CORSCredentials: false,
			AllowedHosts: []string{"htq.internal"}, AutoCreateQueues: true, MaxBodyBytes: 2048, MaxURLBytes: 1024, MaxHeaderBytes: 512, MaxBatch: 10,
			ReadHeaderTimeout: d(time.Second), ReadTimeout: d(2500 * time.Millisecond),
			WriteTimeout: d(3 * time.Second), IdleTimeout: d(time.Minute),
		},
		Dispatcher: config.Dispatcher{
			Listen: "127.0.0.1:7001", ID: "worker-1", MaxQueues: 7, LeaseTTL: d(3 * time.Second),
			RecoveryGrace: 0, ShutdownGrace: d(10 * time.Second), PollMin: d(5 * time.Millisecond),
			PollMax: d(500 * time.Millisecond), MaxResponseBytes: 4096, History: 0,
		},
		Scheduler: config.Scheduler{
			Listen: "127.0.0.1:7002", LockTTL: d(time.Second), PollInterval: d(250 * time.Millisecond),
			PromoteBatch: 50, JanitorInterval: d(time.Minute), BacklogInterval: d(15 * time.Second), BacklogTopQueues: 20,
			MissedGrace: d(time.Second),
		},
		Queues: config.Queues{
			Timeout: d(10 * time.Second), MaxAttempts: 3, MinBackoff: d(2 * time.Second), MaxBackoff: d(time.Minute),
			MaxBacklog: 1000, Retention: d(2 * time.Hour), DeadRetention: d(48 * time.Hour),
			IdempotencyWindow: d(time.Hour), MinVariableGap: d(250 * time.Millisecond),
		},
		Legacy:  config.Legacy{MaxAttempts: 2, MinGap: d(500 * time.Millisecond), StrictExecuteTime: true},
		Signing: config.Signing{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", PreviousSecret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"},
		Egress:  config.Egress{DefaultDeny: false, Deny: []string{"10.0.0.0/8", "192.0.2.1"}, Allow: []string{"0.0.0.0/0"}, DenyLoopback: true},
		Log:     config.Log{Level: "debug", Format: "text"},
	}
	if !reflect.DeepEqual(l.Config, want) {
		t.Fatalf("loaded\n%+v\nwant\n%+v", l.Config, want)
	}
	q := l.QueueDefaults()
	if q.Timeout.Std() != 10*time.Second || q.Retry.MaxAttempts != 3 || q.Retry.MinBackoff.Std() != 2*time.Second ||
		q.Retry.MaxBackoff.Std() != time.Minute || q.MaxBacklog != 1000 || q.Retention.Std() != 2*time.Hour || q.DeadRetention.Std() != 48*time.Hour {
		t.Fatalf("QueueDefaults = %+v", q)
	}
}

func TestLoadYAMLPartialKeepsDefaults(t *testing.T) {
	t.Parallel()
	l := mustLoad(t, "htq.yml", "dispatcher:\n  lease_ttl: 2s\n", nil)
	want := config.Default()
	want.Dispatcher.LeaseTTL = d(2 * time.Second)
	if !reflect.DeepEqual(l.Config, want) {
		t.Fatalf("loaded %+v, want the defaults with lease_ttl 2s", l.Config)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		parts   []string
	}{
		{name: "unknown top-level key", content: "colour: blue\n", parts: []string{"colour"}},
		{name: "unknown nested key", content: "redis:\n  hostname: x\n", parts: []string{"line 2", "hostname"}},
		{name: "misspelt key", content: "dispatcher:\n  lease_tll: 2s\n", parts: []string{"lease_tll"}},
		{name: "legacy key in yaml", content: "api_port: 5999\n", parts: []string{"api_port"}},
		{name: "string for int", content: "redis:\n  db: two\n", parts: []string{"line 2", "two", "int"}},
		{name: "list for string", content: "redis:\n  url: [a, b]\n", parts: []string{"line 2", "string"}},
		{name: "map for list", content: "api:\n  tokens: {a: b}\n", parts: []string{"line 2", "[]string"}},
		{name: "string for bool", content: "redis:\n  tls: maybe\n", parts: []string{"line 2", "maybe", "bool"}},
		{name: "bad duration", content: "dispatcher:\n  lease_ttl: soon\n", parts: []string{"soon"}},
		{name: "negative duration", content: "dispatcher:\n  lease_ttl: -2s\n", parts: []string{"-2s"}},
		{name: "NaN duration", content: "dispatcher:\n  lease_ttl: .nan\n", parts: []string{"duration"}},
		{name: "section not a map", content: "redis: localhost\n", parts: []string{"localhost"}},
		{name: "not yaml", content: "redis: [\n", parts: []string{"redis.yaml", "line 1"}},
		{name: "tabs", content: "redis:\n\turl: x\n", parts: []string{"redis.yaml", "line 2"}},
		{name: "duplicate key", content: "log:\n  level: info\n  level: debug\n", parts: []string{"line 3", "level"}},
		{name: "int overflow", content: "redis:\n  db: 99999999999999999999\n", parts: []string{"line 2", "int"}},
		{name: "valid yaml, invalid value", content: "log:\n  level: loud\n", parts: []string{"log.level", "HTQ_LOG_LEVEL", "loud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, "redis.yaml", tt.content, nil)
			wantErr(t, err, tt.parts...)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := config.Load(path, noEnv)
	wantErr(t, err, path)
}

// legacyExample is the original server's config.json, as LEGACY_API.md shows it.
const legacyExample = `{ "app_key": "myapp", "app_token": "my-secret-token", "api_port": 5999,
  "redis_host": "127.0.0.1", "redis_port": 6379, "redis_key_prefix": "htq_" }`

func TestLoadLegacyExample(t *testing.T) {
	t.Parallel()
	l := mustLoad(t, "config.json", legacyExample, nil)
	if !l.Legacy {
		t.Fatal("Legacy = false for config.json")
	}
	if len(l.Warnings) != 0 {
		t.Fatalf("Warnings = %q, want none", l.Warnings)
	}
	want := config.Default()
	want.API.Listen = ":5999"
	want.API.LegacyAppKey = "myapp"
	want.API.LegacyAppToken = "my-secret-token"
	want.Redis.URL = "redis://127.0.0.1:6379/0"
	want.Redis.KeyPrefix = "htq:" // never the original's htq_: see TestSeparatePrefix
	want.LegacyFile = true
	if !reflect.DeepEqual(l.Config, want) {
		t.Fatalf("loaded\n%+v\nwant\n%+v", l.Config, want)
	}
	if err := l.CheckAuth(); err != nil {
		t.Fatalf("the legacy token does not satisfy CheckAuth: %v", err)
	}
}

func TestLoadLegacy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		file     string
		content  string
		env      map[string]string
		check    func(t *testing.T, c *config.Config)
		warnings []string
	}{
		{name: "port as string", file: "config.json", content: `{"api_port": "5999"}`, check: func(t *testing.T, c *config.Config) {
			if c.API.Listen != ":5999" {
				t.Fatalf("api.listen = %q", c.API.Listen)
			}
		}},
		{name: "port as string with spaces", file: "config.json", content: `{"api_port": " 8080 "}`, check: func(t *testing.T, c *config.Config) {
			if c.API.Listen != ":8080" {
				t.Fatalf("api.listen = %q", c.API.Listen)
			}
		}},
		{name: "redis host and port", file: "config.json", content: `{"redis_host": "redis.internal", "redis_port": "6380", "redis_db": 3, "redis_password": "pw"}`, check: func(t *testing.T, c *config.Config) {
			if c.Redis.URL != "redis://redis.internal:6380/3" || c.Redis.Password != "pw" {
				t.Fatalf("redis.url = %q, password %q", c.Redis.URL, c.Redis.Password)
			}
		}},
		{name: "ipv6 redis host", file: "config.json", content: `{"redis_host": "::1"}`, check: func(t *testing.T, c *config.Config) {
			if c.Redis.URL != "redis://[::1]:6379/0" {
				t.Fatalf("redis.url = %q", c.Redis.URL)
			}
		}},
		{name: "empty redis host", file: "config.json", content: `{"redis_host": ""}`, check: func(t *testing.T, c *config.Config) {
			if c.Redis.URL != "redis://127.0.0.1:6379/0" {
				t.Fatalf("redis.url = %q", c.Redis.URL)
			}
		}},
		{name: "empty object", file: "config.json", content: `{}`, check: func(t *testing.T, c *config.Config) {
			if c.API.Listen != config.DefaultAPIListen || c.Redis.KeyPrefix != config.DefaultKeyPrefix {
				t.Fatalf("defaults changed: %+v", c)
			}
		}},
		{name: "null values", file: "config.json", content: `{"app_key": null, "app_token": null, "api_port": null}`, check: func(t *testing.T, c *config.Config) {
			if c.API.Listen != config.DefaultAPIListen || c.API.LegacyAppKey != "" {
				t.Fatalf("null changed a value: %+v", c.API)
			}
		}},
		{name: "unknown keys warn", file: "config.json", content: `{"api_port": 5999, "log_dir": "/var/log", "debug": true}`,
			warnings: []string{`"debug"`, `"log_dir"`}},
		{name: "detected by content", file: "htq.conf", content: "\n  " + legacyExample, check: func(t *testing.T, c *config.Config) {
			if c.API.LegacyAppKey != "myapp" {
				t.Fatalf("legacy_app_key = %q", c.API.LegacyAppKey)
			}
		}},
		{name: "upper-case extension", file: "CONFIG.JSON", content: `{"api_port": 6000}`, check: func(t *testing.T, c *config.Config) {
			if c.API.Listen != ":6000" {
				t.Fatalf("api.listen = %q", c.API.Listen)
			}
		}},
		{name: "environment over legacy file", file: "config.json", content: legacyExample,
			env: map[string]string{"HTQ_API_LISTEN": "127.0.0.1:7000", "HTQ_REDIS_KEY_PREFIX": "x:"}, check: func(t *testing.T, c *config.Config) {
				if c.API.Listen != "127.0.0.1:7000" || c.Redis.KeyPrefix != "x:" || c.API.LegacyAppKey != "myapp" {
					t.Fatalf("api.listen %q key_prefix %q legacy_app_key %q", c.API.Listen, c.Redis.KeyPrefix, c.API.LegacyAppKey)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := mustLoad(t, tt.file, tt.content, tt.env)
			if !l.Legacy {
				t.Fatal("not read as a legacy file")
			}
			if tt.check != nil {
				tt.check(t, l.Config)
			}
			if len(l.Warnings) != len(tt.warnings) {
				t.Fatalf("Warnings = %q, want %d", l.Warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(l.Warnings[i], w) {
					t.Fatalf("warning %d = %q, want it to name %s (sorted)", i, l.Warnings[i], w)
				}
			}
		})
	}
}

func TestLoadLegacyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		parts   []string
	}{
		{name: "port zero", content: `{"api_port": 0}`, parts: []string{"api_port"}},
		{name: "port too big", content: `{"api_port": 70000}`, parts: []string{"api_port"}},
		{name: "port negative", content: `{"api_port": -1}`, parts: []string{"api_port"}},
		{name: "port word", content: `{"api_port": "http"}`, parts: []string{"api_port"}},
		{name: "port fraction", content: `{"api_port": 5999.5}`, parts: []string{"api_port"}},
		{name: "port bool", content: `{"api_port": true}`, parts: []string{"api_port"}},
		{name: "redis port bad", content: `{"redis_port": "six"}`, parts: []string{"redis_port"}},
		{name: "redis db negative", content: `{"redis_db": -1}`, parts: []string{"redis_db"}},
		{name: "app_key not a string", content: `{"app_key": 5}`, parts: []string{"config.json"}},
		{name: "not json", content: `{"api_port": }`, parts: []string{"config.json", "JSON"}},
		{name: "array", content: `[1, 2]`, parts: []string{"config.json"}},
		{name: "trailing comma", content: `{"api_port": 5999,}`, parts: []string{"config.json"}},
		{name: "key without token", content: `{"app_key": "k"}`, parts: []string{"api.legacy_app_key"}},
		{name: "token without key", content: `{"app_token": "t"}`, parts: []string{"api.legacy_app_key"}},
		{name: "prefix with braces", content: `{"redis_key_prefix": "{htq}"}`, parts: []string{"redis.key_prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, "config.json", tt.content, nil)
			wantErr(t, err, tt.parts...)
		})
	}
}
