package config_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/htq/htq/internal/config"
)

const (
	token1 = "0123456789abcdef-token-one"
	token2 = "0123456789abcdef-token-two"
)

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string // YAML, applied before the environment
		env   map[string]string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "duration", env: map[string]string{"HTQ_DISPATCHER_LEASE_TTL": "2s"}, check: func(t *testing.T, c *config.Config) {
			if c.Dispatcher.LeaseTTL.Std() != 2*time.Second {
				t.Fatalf("lease_ttl = %v", c.Dispatcher.LeaseTTL.Std())
			}
		}},
		{name: "duration as seconds and ISO", env: map[string]string{"HTQ_SCHEDULER_LOCK_TTL": "1.5", "HTQ_QUEUES_RETENTION": "PT2H"}, check: func(t *testing.T, c *config.Config) {
			if c.Scheduler.LockTTL.Std() != 1500*time.Millisecond || c.Queues.Retention.Std() != 2*time.Hour {
				t.Fatalf("lock_ttl = %v, retention = %v", c.Scheduler.LockTTL.Std(), c.Queues.Retention.Std())
			}
		}},
		{name: "list", env: map[string]string{"HTQ_API_TOKENS": token1 + "," + token2}, check: func(t *testing.T, c *config.Config) {
			if !slices.Equal(c.API.Tokens, []string{token1, token2}) {
				t.Fatalf("tokens = %q", c.API.Tokens)
			}
		}},
		{name: "read-only tokens", env: map[string]string{"HTQ_API_READ_ONLY_TOKENS": token1 + "," + token2}, check: func(t *testing.T, c *config.Config) {
			if !slices.Equal(c.API.ReadOnlyTokens, []string{token1, token2}) {
				t.Fatalf("read_only_tokens = %q", c.API.ReadOnlyTokens)
			}
			if len(c.ReadOnlyHashes()) != 2 || len(c.BearerHashes()) != 0 {
				t.Fatalf("read-only hashes %d, bearer hashes %d", len(c.ReadOnlyHashes()), len(c.BearerHashes()))
			}
		}},
		{name: "short list items", env: map[string]string{"HTQ_API_CORS_ORIGINS": "http://a,http://b"}, check: func(t *testing.T, c *config.Config) {
			if !slices.Equal(c.API.CORSOrigins, []string{"http://a", "http://b"}) {
				t.Fatalf("cors_origins = %q", c.API.CORSOrigins)
			}
		}},
		{name: "list trims and drops empty items", env: map[string]string{"HTQ_REDIS_ADDRS": " h1:1 , ,h2:2,", "HTQ_REDIS_MODE": "cluster"}, check: func(t *testing.T, c *config.Config) {
			if !slices.Equal(c.Redis.Addrs, []string{"h1:1", "h2:2"}) {
				t.Fatalf("addrs = %q", c.Redis.Addrs)
			}
		}},
		{name: "empty list clears", env: map[string]string{"HTQ_API_CORS_ORIGINS": ""}, check: func(t *testing.T, c *config.Config) {
			if len(c.API.CORSOrigins) != 0 {
				t.Fatalf("cors_origins = %q", c.API.CORSOrigins)
			}
		}},
		{name: "bools", env: map[string]string{"HTQ_API_INSECURE_NO_AUTH": "true", "HTQ_API_CORS_CREDENTIALS": "0", "HTQ_REDIS_TLS": " TRUE "}, check: func(t *testing.T, c *config.Config) {
			if !c.API.InsecureNoAuth || c.API.CORSCredentials || !c.Redis.TLS {
				t.Fatalf("insecure_no_auth %v cors_credentials %v tls %v", c.API.InsecureNoAuth, c.API.CORSCredentials, c.Redis.TLS)
			}
		}},
		{name: "ints", env: map[string]string{"HTQ_REDIS_DB": "3", "HTQ_API_MAX_BATCH": " 50 ", "HTQ_QUEUES_MAX_BACKLOG": "12345678901"}, check: func(t *testing.T, c *config.Config) {
			if c.Redis.DB != 3 || c.API.MaxBatch != 50 || c.Queues.MaxBacklog != 12345678901 {
				t.Fatalf("db %d max_batch %d max_backlog %d", c.Redis.DB, c.API.MaxBatch, c.Queues.MaxBacklog)
			}
		}},
		{name: "strings kept verbatim", env: map[string]string{"HTQ_REDIS_PASSWORD": " p,w ", "HTQ_API_TIME_ZONE": "UTC"}, check: func(t *testing.T, c *config.Config) {
			if c.Redis.Password != " p,w " || c.API.TimeZone != "UTC" {
				t.Fatalf("password %q time_zone %q", c.Redis.Password, c.API.TimeZone)
			}
		}},
		{name: "environment wins over the file", file: "dispatcher:\n  lease_ttl: 5s\n  max_queues: 9\n",
			env: map[string]string{"HTQ_DISPATCHER_LEASE_TTL": "2s"}, check: func(t *testing.T, c *config.Config) {
				if c.Dispatcher.LeaseTTL.Std() != 2*time.Second || c.Dispatcher.MaxQueues != 9 {
					t.Fatalf("lease_ttl %v max_queues %d", c.Dispatcher.LeaseTTL.Std(), c.Dispatcher.MaxQueues)
				}
			}},
		{name: "unrelated variables ignored", env: map[string]string{"HTQ_NOT_A_KEY": "x", "HTQ_API": "x", "HTQ_REDIS": "x", "PATH": "/bin"}, check: func(t *testing.T, c *config.Config) {
			if !reflect.DeepEqual(c, config.Default()) {
				t.Fatalf("config changed: %+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := ""
			if tt.file != "" {
				name = "htq.yaml"
			}
			l := mustLoad(t, name, tt.file, tt.env)
			tt.check(t, l.Config)
		})
	}
}

func TestEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  string
		val  string
		key  string
		more string
	}{
		{env: "HTQ_DISPATCHER_LEASE_TTL", val: "soon", key: "dispatcher.lease_ttl", more: "soon"},
		{env: "HTQ_DISPATCHER_LEASE_TTL", val: "-2s", key: "dispatcher.lease_ttl"},
		{env: "HTQ_DISPATCHER_LEASE_TTL", val: "", key: "dispatcher.lease_ttl"},
		{env: "HTQ_DISPATCHER_LEASE_TTL", val: "10ms", key: "dispatcher.lease_ttl", more: "100ms"}, // parses, fails validation
		{env: "HTQ_REDIS_DB", val: "three", key: "redis.db", more: "three"},
		{env: "HTQ_REDIS_DB", val: "1.5", key: "redis.db"},
		{env: "HTQ_REDIS_DB", val: "-1", key: "redis.db"},
		{env: "HTQ_REDIS_DB", val: "99999999999999999999", key: "redis.db"},
		{env: "HTQ_QUEUES_MAX_BACKLOG", val: "lots", key: "queues.max_backlog"},
		{env: "HTQ_REDIS_TLS", val: "yes", key: "redis.tls", more: "yes"},
		{env: "HTQ_API_INSECURE_NO_AUTH", val: "", key: "api.insecure_no_auth"},
		{env: "HTQ_API_TOKENS", val: "a,b", key: "api.tokens", more: "16"},
		{env: "HTQ_API_READ_ONLY_TOKENS", val: "short", key: "api.read_only_tokens", more: "16"},
		{env: "HTQ_API_LISTEN", val: "5999", key: "api.listen"},
		{env: "HTQ_LOG_LEVEL", val: "verbose", key: "log.level", more: "verbose"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.val, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load("", envOf(map[string]string{tt.env: tt.val}))
			parts := []string{tt.key, tt.env}
			if tt.more != "" {
				parts = append(parts, tt.more)
			}
			wantErr(t, err, parts...)
		})
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"dispatcher.lease_ttl": "HTQ_DISPATCHER_LEASE_TTL",
		"api.tokens":           "HTQ_API_TOKENS",
		"redis.url":            "HTQ_REDIS_URL",
		"log.level":            "HTQ_LOG_LEVEL",
	} {
		if got := config.EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

// leafKeys lists the dotted keys of every scalar or list in a YAML document,
// found without the package's own reflection walk.
func leafKeys(t *testing.T, v any, prefix string, out map[string]any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		out[prefix] = v
		return
	}
	for k, child := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		leafKeys(t, child, key, out)
	}
}

func defaultLeaves(t *testing.T) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	leaves := map[string]any{}
	leafKeys(t, doc, "", leaves)
	return leaves
}

func TestKeysCoverEveryLeaf(t *testing.T) {
	t.Parallel()
	keys := config.Keys()
	want := slices.Sorted(maps.Keys(defaultLeaves(t)))
	got := slices.Clone(keys)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Keys() =\n%q\nthe YAML form has\n%q", got, want)
	}
	if len(keys) < 50 {
		t.Fatalf("only %d keys", len(keys))
	}
	seen := map[string]string{}
	for _, k := range keys {
		name := config.EnvName(k)
		if other, dup := seen[name]; dup {
			t.Fatalf("keys %q and %q share the environment variable %s", other, k, name)
		}
		seen[name] = k
		if !strings.HasPrefix(name, config.EnvPrefix) || strings.ContainsAny(name, ".- ") || name != strings.ToUpper(name) {
			t.Fatalf("EnvName(%q) = %q is not a plain upper-case variable name", k, name)
		}
	}
}

// TestEveryKeyFromEnv sets every key, one at a time, to its default value
// written as text, through its environment variable: each must be accepted
// and leave the configuration unchanged.
func TestEveryKeyFromEnv(t *testing.T) {
	t.Parallel()
	for key, v := range defaultLeaves(t) {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			var text string
			switch v := v.(type) {
			case []any:
				parts := make([]string, len(v))
				for i, p := range v {
					parts[i] = fmt.Sprint(p)
				}
				text = strings.Join(parts, ",")
			case nil:
				text = ""
			default:
				text = fmt.Sprint(v)
			}
			name := config.EnvName(key)
			l, err := config.Load("", envOf(map[string]string{name: text}))
			if err != nil {
				t.Fatalf("%s=%q: %v", name, text, err)
			}
			want := config.Default()
			if !reflect.DeepEqual(normalizeEmpty(l.Config), normalizeEmpty(want)) {
				t.Fatalf("%s=%q changed the configuration:\n%+v\n%+v", name, text, l.Config, want)
			}
		})
	}
}

// normalizeEmpty makes empty and nil lists compare equal.
func normalizeEmpty(c *config.Config) *config.Config {
	cp := *c
	for _, p := range []*[]string{&cp.Redis.Addrs, &cp.API.Tokens, &cp.API.TokenSHA256, &cp.API.CORSOrigins} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return &cp
}
