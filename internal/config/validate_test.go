package config_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/config"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *config.Config)
		key  string // "" means valid
	}{
		{name: "defaults", edit: func(*config.Config) {}},
		{name: "standalone by addrs", edit: func(c *config.Config) { c.Redis.URL, c.Redis.Addrs = "", []string{"h:6379"} }},
		{name: "empty mode is standalone", edit: func(c *config.Config) { c.Redis.Mode = "" }},
		{name: "cluster", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:1", "b:2"} }},
		{name: "sentinel", edit: func(c *config.Config) {
			c.Redis.Mode, c.Redis.Addrs, c.Redis.MasterName = "sentinel", []string{"[::1]:26379"}, "mymaster"
		}},
		{name: "key prefix with colon", edit: func(c *config.Config) { c.Redis.KeyPrefix = "a:b:" }},
		{name: "empty key prefix", edit: func(c *config.Config) { c.Redis.KeyPrefix = "" }},
		{name: "listen on ipv6", edit: func(c *config.Config) { c.API.Listen = "[::1]:5999" }},
		{name: "listen on port 0", edit: func(c *config.Config) { c.Dispatcher.Listen = "127.0.0.1:0" }},
		{name: "listen on empty port", edit: func(c *config.Config) { c.Dispatcher.Listen = "127.0.0.1:" }},
		{name: "listen on port 65535", edit: func(c *config.Config) { c.API.Listen = ":65535" }},
		{name: "listen on a name", edit: func(c *config.Config) { c.Scheduler.Listen = "localhost:9000" }},
		{name: "metrics listen", edit: func(c *config.Config) { c.API.MetricsListen = ":9090" }},
		{name: "token of 16", edit: func(c *config.Config) { c.API.Tokens = []string{strings.Repeat("x", 16)} }},
		{name: "token hash upper case", edit: func(c *config.Config) { c.API.TokenSHA256 = []string{strings.Repeat("AB", 32)} }},
		{name: "legacy pair", edit: func(c *config.Config) { c.API.LegacyAppKey, c.API.LegacyAppToken = "k", "t" }},
		{name: "zone UTC", edit: func(c *config.Config) { c.API.TimeZone = "UTC" }},
		{name: "zone Shanghai", edit: func(c *config.Config) { c.API.TimeZone = "Asia/Shanghai" }},
		{name: "lease ttl 100ms", edit: func(c *config.Config) { c.Dispatcher.LeaseTTL = d(100 * time.Millisecond) }},
		{name: "poll equal", edit: func(c *config.Config) { c.Dispatcher.PollMax = c.Dispatcher.PollMin }},
		{name: "log level any case", edit: func(c *config.Config) { c.Log.Level = "WARN" }},
		{name: "history 0", edit: func(c *config.Config) { c.Dispatcher.History = 0 }},
		{name: "dispatcher id", edit: func(c *config.Config) { c.Dispatcher.ID = "worker-1.example" }},

		{name: "unknown redis mode", edit: func(c *config.Config) { c.Redis.Mode = "replica" }, key: "redis.mode"},
		{name: "standalone without url or addr", edit: func(c *config.Config) { c.Redis.URL = "" }, key: "redis.url"},
		{name: "standalone with two addrs", edit: func(c *config.Config) { c.Redis.URL, c.Redis.Addrs = "", []string{"a:1", "b:2"} }, key: "redis.url"},
		{name: "cluster without addrs", edit: func(c *config.Config) { c.Redis.Mode = "cluster" }, key: "redis.addrs"},
		{name: "sentinel without addrs", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.MasterName = "sentinel", "m" }, key: "redis.addrs"},
		{name: "sentinel without master_name", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "sentinel", []string{"a:26379"} }, key: "redis.master_name"},
		{name: "addr without port", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:1", "nohost"} }, key: "redis.addrs"},
		{name: "addr with bad port", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:port"} }, key: "redis.addrs"},
		{name: "addr with port 0", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:0"} }, key: "redis.addrs"},
		{name: "addr with empty port", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:"} }, key: "redis.addrs"},
		{name: "addr with signed port", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:+80"} }, key: "redis.addrs"},
		{name: "addr with port too big", edit: func(c *config.Config) { c.Redis.Mode, c.Redis.Addrs = "cluster", []string{"a:65536"} }, key: "redis.addrs"},
		{name: "key prefix with {", edit: func(c *config.Config) { c.Redis.KeyPrefix = "htq{" }, key: "redis.key_prefix"},
		{name: "key prefix with }", edit: func(c *config.Config) { c.Redis.KeyPrefix = "}htq" }, key: "redis.key_prefix"},
		{name: "key prefix with hash tag", edit: func(c *config.Config) { c.Redis.KeyPrefix = "{htq}:" }, key: "redis.key_prefix"},
		{name: "negative db", edit: func(c *config.Config) { c.Redis.DB = -1 }, key: "redis.db"},
		{name: "negative pool", edit: func(c *config.Config) { c.Redis.PoolSize = -1 }, key: "redis.pool_size"},
		{name: "zero dial timeout", edit: func(c *config.Config) { c.Redis.DialTimeout = 0 }, key: "redis.dial_timeout"},
		{name: "zero read timeout", edit: func(c *config.Config) { c.Redis.ReadTimeout = 0 }, key: "redis.read_timeout"},
		{name: "zero write timeout", edit: func(c *config.Config) { c.Redis.WriteTimeout = 0 }, key: "redis.write_timeout"},
		{name: "listen port only", edit: func(c *config.Config) { c.API.Listen = "5999" }, key: "api.listen"},
		{name: "listen host only", edit: func(c *config.Config) { c.API.Listen = "localhost" }, key: "api.listen"},
		{name: "listen empty", edit: func(c *config.Config) { c.API.Listen = "" }, key: "api.listen"},
		{name: "listen bare ipv6", edit: func(c *config.Config) { c.API.Listen = "::1:5999" }, key: "api.listen"},
		{name: "listen port too big", edit: func(c *config.Config) { c.API.Listen = ":99999" }, key: "api.listen"},
		{name: "listen negative port", edit: func(c *config.Config) { c.API.Listen = ":-1" }, key: "api.listen"},
		{name: "listen port word", edit: func(c *config.Config) { c.API.Listen = ":port" }, key: "api.listen"},
		{name: "listen url", edit: func(c *config.Config) { c.API.Listen = "http://0.0.0.0:5999" }, key: "api.listen"},
		{name: "dispatcher listen", edit: func(c *config.Config) { c.Dispatcher.Listen = "nope" }, key: "dispatcher.listen"},
		{name: "scheduler listen", edit: func(c *config.Config) { c.Scheduler.Listen = "127.0.0.1:70000" }, key: "scheduler.listen"},
		{name: "metrics listen", edit: func(c *config.Config) { c.API.MetricsListen = "9090" }, key: "api.metrics_listen"},
		{name: "token hash short", edit: func(c *config.Config) { c.API.TokenSHA256 = []string{"abcd"} }, key: "api.token_sha256"},
		{name: "token hash not hex", edit: func(c *config.Config) { c.API.TokenSHA256 = []string{strings.Repeat("zz", 32)} }, key: "api.token_sha256"},
		{name: "token shorter than 16", edit: func(c *config.Config) { c.API.Tokens = []string{strings.Repeat("x", 15)} }, key: "api.tokens"},
		{name: "one short token among good", edit: func(c *config.Config) { c.API.Tokens = []string{token1, "short"} }, key: "api.tokens"},
		{name: "read-only token shorter than 16", edit: func(c *config.Config) { c.API.ReadOnlyTokens = []string{"short"} }, key: "api.read_only_tokens"},
		{name: "read-only token also a full token", edit: func(c *config.Config) {
			c.API.Tokens, c.API.ReadOnlyTokens = []string{token1}, []string{token1}
		}, key: "api.read_only_tokens"},
		{name: "read-only token is the legacy app token", edit: func(c *config.Config) {
			c.API.LegacyAppKey, c.API.LegacyAppToken, c.API.ReadOnlyTokens = "k", token2, []string{token2}
		}, key: "api.read_only_tokens"},
		{name: "legacy key without token", edit: func(c *config.Config) { c.API.LegacyAppKey = "k" }, key: "api.legacy_app_key"},
		{name: "legacy token without key", edit: func(c *config.Config) { c.API.LegacyAppToken = "t" }, key: "api.legacy_app_key"},
		{name: "bad time zone", edit: func(c *config.Config) { c.API.TimeZone = "Mars/Olympus_Mons" }, key: "api.time_zone"},
		{name: "time zone offset", edit: func(c *config.Config) { c.API.TimeZone = "+08:00" }, key: "api.time_zone"},
		{name: "zero max body", edit: func(c *config.Config) { c.API.MaxBodyBytes = 0 }, key: "api.max_body_bytes"},
		{name: "zero max url", edit: func(c *config.Config) { c.API.MaxURLBytes = 0 }, key: "api.max_url_bytes"},
		{name: "zero max header", edit: func(c *config.Config) { c.API.MaxHeaderBytes = -1 }, key: "api.max_header_bytes"},
		{name: "zero max batch", edit: func(c *config.Config) { c.API.MaxBatch = 0 }, key: "api.max_batch"},
		{name: "zero read header timeout", edit: func(c *config.Config) { c.API.ReadHeaderTimeout = 0 }, key: "api.read_header_timeout"},
		{name: "zero api read timeout", edit: func(c *config.Config) { c.API.ReadTimeout = 0 }, key: "api.read_timeout"},
		{name: "zero api write timeout", edit: func(c *config.Config) { c.API.WriteTimeout = 0 }, key: "api.write_timeout"},
		{name: "zero idle timeout", edit: func(c *config.Config) { c.API.IdleTimeout = 0 }, key: "api.idle_timeout"},
		{name: "zero max queues", edit: func(c *config.Config) { c.Dispatcher.MaxQueues = 0 }, key: "dispatcher.max_queues"},
		{name: "lease ttl too small", edit: func(c *config.Config) { c.Dispatcher.LeaseTTL = d(99 * time.Millisecond) }, key: "dispatcher.lease_ttl"},
		{name: "negative recovery grace", edit: func(c *config.Config) { c.Dispatcher.RecoveryGrace = -1 }, key: "dispatcher.recovery_grace"},
		{name: "negative shutdown grace", edit: func(c *config.Config) { c.Dispatcher.ShutdownGrace = -1 }, key: "dispatcher.shutdown_grace"},
		{name: "zero poll min", edit: func(c *config.Config) { c.Dispatcher.PollMin = 0 }, key: "dispatcher.poll_min"},
		{name: "poll max below poll min", edit: func(c *config.Config) {
			c.Dispatcher.PollMin, c.Dispatcher.PollMax = d(time.Second), d(500*time.Millisecond)
		}, key: "dispatcher.poll_max"},
		{name: "tiny max response", edit: func(c *config.Config) { c.Dispatcher.MaxResponseBytes = 15 }, key: "dispatcher.max_response_bytes"},
		{name: "negative history", edit: func(c *config.Config) { c.Dispatcher.History = -1 }, key: "dispatcher.history"},
		{name: "huge history", edit: func(c *config.Config) { c.Dispatcher.History = 1001 }, key: "dispatcher.history"},
		{name: "dispatcher id with colon", edit: func(c *config.Config) { c.Dispatcher.ID = "a:b" }, key: "dispatcher.id"},
		{name: "dispatcher id with space", edit: func(c *config.Config) { c.Dispatcher.ID = "a b" }, key: "dispatcher.id"},
		{name: "lock ttl too small", edit: func(c *config.Config) { c.Scheduler.LockTTL = d(499 * time.Millisecond) }, key: "scheduler.lock_ttl"},
		{name: "zero scheduler poll", edit: func(c *config.Config) { c.Scheduler.PollInterval = 0 }, key: "scheduler.poll_interval"},
		{name: "zero promote batch", edit: func(c *config.Config) { c.Scheduler.PromoteBatch = 0 }, key: "scheduler.promote_batch"},
		{name: "huge promote batch", edit: func(c *config.Config) { c.Scheduler.PromoteBatch = 100_001 }, key: "scheduler.promote_batch"},
		{name: "zero janitor", edit: func(c *config.Config) { c.Scheduler.JanitorInterval = 0 }, key: "scheduler.janitor_interval"},
		{name: "zero missed grace", edit: func(c *config.Config) { c.Scheduler.MissedGrace = 0 }, key: "scheduler.missed_grace"},
		{name: "missed grace over 1h", edit: func(c *config.Config) { c.Scheduler.MissedGrace = config.Duration(2 * time.Hour) }, key: "scheduler.missed_grace"},
		{name: "zero queue timeout", edit: func(c *config.Config) { c.Queues.Timeout = 0 }, key: "queues.timeout"},
		{name: "huge queue timeout", edit: func(c *config.Config) { c.Queues.Timeout = d(25 * time.Hour) }, key: "queues.timeout"},
		{name: "zero max attempts", edit: func(c *config.Config) { c.Queues.MaxAttempts = 0 }, key: "queues.max_attempts"},
		{name: "too many attempts", edit: func(c *config.Config) { c.Queues.MaxAttempts = 1001 }, key: "queues.max_attempts"},
		{name: "zero legacy attempts", edit: func(c *config.Config) { c.Legacy.MaxAttempts = 0 }, key: "legacy.max_attempts"},
		{name: "zero legacy min gap", edit: func(c *config.Config) { c.Legacy.MinGap = 0 }, key: "legacy.min_gap"},
		{name: "min backoff over max", edit: func(c *config.Config) {
			c.Queues.MinBackoff, c.Queues.MaxBackoff = d(time.Hour), d(time.Minute)
		}, key: "queues.min_backoff"},
		{name: "zero max backlog", edit: func(c *config.Config) { c.Queues.MaxBacklog = 0 }, key: "queues.max_backlog"},
		{name: "short idempotency window", edit: func(c *config.Config) { c.Queues.IdempotencyWindow = d(999 * time.Millisecond) }, key: "queues.idempotency_window"},
		{name: "unknown log level", edit: func(c *config.Config) { c.Log.Level = "trace" }, key: "log.level"},
		{name: "empty log level", edit: func(c *config.Config) { c.Log.Level = "" }, key: "log.level"},
		{name: "unknown log format", edit: func(c *config.Config) { c.Log.Format = "xml" }, key: "log.format"},
		{name: "log format case", edit: func(c *config.Config) { c.Log.Format = "JSON" }, key: "log.format"},
		{name: "signing secret", edit: func(c *config.Config) { c.Signing.Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }},
		{name: "signing secret without prefix", edit: func(c *config.Config) { c.Signing.Secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }},
		{name: "signing secret not base64", edit: func(c *config.Config) { c.Signing.Secret = "whsec_!!!" }, key: "signing.secret"},
		{name: "signing secret too short", edit: func(c *config.Config) { c.Signing.Secret = "whsec_c2hvcnQ=" }, key: "signing.secret"},
		{name: "previous secret alone", edit: func(c *config.Config) { c.Signing.PreviousSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, key: "signing.previous_secret"},
		{name: "egress lists", edit: func(c *config.Config) {
			c.Egress.Deny, c.Egress.Allow = []string{"10.0.0.0/8", "::1"}, []string{"192.168.0.0/16"}
		}},
		{name: "cors origins", edit: func(c *config.Config) {
			c.API.CORSOrigins, c.API.CORSCredentials = []string{"https://console.example", "http://localhost:3000", "http://[::1]:8080"}, true
		}},
		{name: "cors wildcard without credentials", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"*"} }},
		{name: "cors wildcard with credentials", edit: func(c *config.Config) {
			c.API.CORSOrigins, c.API.CORSCredentials = []string{"https://a.example", "*"}, true
		}, key: "api.cors_credentials"},
		{name: "cors credentials without origins", edit: func(c *config.Config) { c.API.CORSCredentials = true }, key: "api.cors_credentials"},
		{name: "cors wildcard without auth", edit: func(c *config.Config) {
			c.API.CORSOrigins, c.API.InsecureNoAuth = []string{"*"}, true
		}, key: "api.cors_origins"},
		{name: "cors origin with path", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"https://a.example/"} }, key: "api.cors_origins"},
		{name: "cors origin without scheme", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"a.example"} }, key: "api.cors_origins"},
		{name: "cors origin ftp", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"ftp://a.example"} }, key: "api.cors_origins"},
		{name: "cors origin with user", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"https://u@a.example"} }, key: "api.cors_origins"},
		{name: "cors origin with bad port", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"https://a.example:99999"} }, key: "api.cors_origins"},
		{name: "cors origin pattern", edit: func(c *config.Config) { c.API.CORSOrigins = []string{"https://*.example.com"} }, key: "api.cors_origins"},
		{name: "allowed hosts", edit: func(c *config.Config) {
			c.API.AllowedHosts = []string{"htq.internal", "10.0.0.7", "::1", "htq-api.default.svc."}
		}},
		{name: "allowed host with port", edit: func(c *config.Config) { c.API.AllowedHosts = []string{"htq.internal:5999"} }, key: "api.allowed_hosts"},
		{name: "allowed host url", edit: func(c *config.Config) { c.API.AllowedHosts = []string{"http://htq.internal"} }, key: "api.allowed_hosts"},
		{name: "allowed host wildcard", edit: func(c *config.Config) { c.API.AllowedHosts = []string{"*"} }, key: "api.allowed_hosts"},
		{name: "allowed host empty", edit: func(c *config.Config) { c.API.AllowedHosts = []string{""} }, key: "api.allowed_hosts"},
		{name: "min variable gap 1ms", edit: func(c *config.Config) { c.Queues.MinVariableGap = d(time.Millisecond) }},
		{name: "zero min variable gap", edit: func(c *config.Config) { c.Queues.MinVariableGap = 0 }, key: "queues.min_variable_gap"},
		{name: "huge min variable gap", edit: func(c *config.Config) { c.Queues.MinVariableGap = d(2 * time.Hour) }, key: "queues.min_variable_gap"},
		{name: "egress deny not a CIDR", edit: func(c *config.Config) { c.Egress.Deny = []string{"10.0.0.0/33"} }, key: "egress.deny"},
		{name: "egress allow not a CIDR", edit: func(c *config.Config) { c.Egress.Allow = []string{"example.com"} }, key: "egress.allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.edit(c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantErr(t, err, tt.key, config.EnvName(tt.key))
		})
	}
}

func TestValidateHidesSecrets(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.API.Tokens = []string{"short-secret"}
	err := c.Validate()
	wantErr(t, err, "api.tokens")
	if strings.Contains(err.Error(), "short-secret") {
		t.Fatalf("error %q shows the token", err)
	}
}

func TestCheckAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *config.Config)
		ok   bool
	}{
		{name: "nothing configured", edit: func(*config.Config) {}},
		{name: "insecure", edit: func(c *config.Config) { c.API.InsecureNoAuth = true }, ok: true},
		{name: "token", edit: func(c *config.Config) { c.API.Tokens = []string{token1} }, ok: true},
		{name: "hash", edit: func(c *config.Config) { c.API.TokenSHA256 = []string{strings.Repeat("ab", 32)} }, ok: true},
		{name: "invalid hash only", edit: func(c *config.Config) { c.API.TokenSHA256 = []string{"nothex"} }},
		{name: "legacy token", edit: func(c *config.Config) { c.API.LegacyAppKey, c.API.LegacyAppToken = "k", "t" }, ok: true},
		{name: "legacy key only", edit: func(c *config.Config) { c.API.LegacyAppKey = "k" }},
		{name: "read-only token only", edit: func(c *config.Config) { c.API.ReadOnlyTokens = []string{token1} }, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.edit(c)
			err := c.CheckAuth()
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckAuth: %v", err)
				}
				return
			}
			wantErr(t, err, "api.tokens", "HTQ_API_TOKENS", "insecure_no_auth")
		})
	}
}

func TestBearerHashes(t *testing.T) {
	t.Parallel()
	hashOf := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	configured := hashOf("configured-by-hash")
	c := config.Default()
	c.API.Tokens = []string{token1, token2}
	c.API.LegacyAppToken = "legacy-token"
	c.LegacyFile = true // read from a config.json: the app_token is a bearer token too
	c.API.TokenSHA256 = []string{
		hex.EncodeToString(configured[:]),
		strings.ToUpper(hex.EncodeToString(configured[:])),
		"not-hex",
		"abcd",
	}
	got := c.BearerHashes()
	want := [][sha256.Size]byte{hashOf(token1), hashOf(token2), hashOf("legacy-token"), configured, configured}
	if !slices.Equal(got, want) {
		t.Fatalf("BearerHashes = %x\nwant %x", got, want)
	}
	if n := len(config.Default().BearerHashes()); n != 0 {
		t.Fatalf("defaults have %d bearer hashes", n)
	}
}

func TestLegacyTokenIsABearerOnlyFromConfigJSON(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.API.LegacyAppKey, c.API.LegacyAppToken = "k", "legacy-token"
	if n := len(c.BearerHashes()); n != 0 {
		t.Fatalf("a YAML legacy token gave %d bearer tokens, want 0", n)
	}
	if err := c.CheckAuth(); err != nil {
		t.Fatalf("legacy credentials alone: %v", err)
	}
	c.LegacyFile = true
	if hs := c.BearerHashes(); len(hs) != 1 || hs[0] != sha256.Sum256([]byte("legacy-token")) {
		t.Fatalf("config.json legacy token: %v", hs)
	}
}

// TestSecureDefaults: by default no origin gets cross-origin access and no
// credentials are allowed (the original sent "*" with credentials), and a
// variable queue may not step below one second.
func TestSecureDefaults(t *testing.T) {
	t.Parallel()
	c := config.Default()
	if len(c.API.CORSOrigins) != 0 || c.API.CORSCredentials || len(c.API.AllowedHosts) != 0 {
		t.Errorf("cors_origins %q, cors_credentials %v, allowed_hosts %q: want none, false, none",
			c.API.CORSOrigins, c.API.CORSCredentials, c.API.AllowedHosts)
	}
	if c.Queues.MinVariableGap.Std() != time.Second {
		t.Errorf("min_variable_gap = %v, want 1s", c.Queues.MinVariableGap.Std())
	}
}
