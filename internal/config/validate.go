package config

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/htq/htq/internal/task"
)

// Validate checks every key and returns an error naming the first wrong one.
func (c *Config) Validate() error {
	bad := func(key, rule string, v any) error {
		return fmt.Errorf("%w: %s (%s): %v: %s", ErrInvalid, key, EnvName(key), v, rule)
	}
	r := &c.Redis
	switch r.Mode {
	case "standalone", "":
		if r.URL == "" && len(r.Addrs) != 1 {
			return bad("redis.url", "set redis.url, or exactly one address in redis.addrs", r.URL)
		}
	case "cluster":
		if len(r.Addrs) == 0 {
			return bad("redis.addrs", "cluster mode needs at least one seed address", r.Addrs)
		}
	case "sentinel":
		if len(r.Addrs) == 0 {
			return bad("redis.addrs", "sentinel mode needs the sentinels' addresses", r.Addrs)
		}
		if r.MasterName == "" {
			return bad("redis.master_name", "sentinel mode needs the primary's name", `""`)
		}
	default:
		return bad("redis.mode", `want "standalone", "cluster" or "sentinel"`, r.Mode)
	}
	for _, a := range r.Addrs {
		if !hostPort(a, 1) {
			return bad("redis.addrs", "want host:port, port 1 to 65535", a)
		}
	}
	if strings.ContainsAny(r.KeyPrefix, "{}") {
		return bad("redis.key_prefix", "must not contain { or } (HTQ adds its own hash tags)", r.KeyPrefix)
	}
	if r.DB < 0 {
		return bad("redis.db", "want 0 or more", r.DB)
	}
	if r.PoolSize < 0 {
		return bad("redis.pool_size", "want 0 (the client's default) or more", r.PoolSize)
	}
	for key, d := range map[string]Duration{"redis.dial_timeout": r.DialTimeout, "redis.read_timeout": r.ReadTimeout, "redis.write_timeout": r.WriteTimeout} {
		if d <= 0 {
			return bad(key, "want more than 0", d.Std())
		}
	}

	a := &c.API
	for key, addr := range map[string]string{"api.listen": a.Listen, "dispatcher.listen": c.Dispatcher.Listen, "scheduler.listen": c.Scheduler.Listen} {
		if !hostPort(addr, 0) {
			return bad(key, "want host:port, port 0 to 65535 (0 picks a free one)", addr)
		}
	}
	if a.MetricsListen != "" {
		if !hostPort(a.MetricsListen, 0) {
			return bad("api.metrics_listen", "want host:port, or empty to serve /metrics on api.listen", a.MetricsListen)
		}
	}
	for _, h := range a.TokenSHA256 {
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return bad("api.token_sha256", "want 64 hex digits (sha256 of a token)", h)
		}
	}
	for _, t := range a.Tokens {
		if len(t) < 16 {
			return bad("api.tokens", "tokens must be at least 16 characters", "(hidden)")
		}
	}
	full := make(map[string]bool, len(a.Tokens))
	for _, t := range a.Tokens {
		full[t] = true
	}
	for _, t := range a.ReadOnlyTokens {
		if len(t) < 16 {
			return bad("api.read_only_tokens", "tokens must be at least 16 characters", "(hidden)")
		}
		if full[t] || (t == a.LegacyAppToken && t != "") {
			return bad("api.read_only_tokens", "a read-only token must not also be in api.tokens or be api.legacy_app_token", "(hidden)")
		}
	}
	if (a.LegacyAppKey == "") != (a.LegacyAppToken == "") {
		return bad("api.legacy_app_key", "set both api.legacy_app_key and api.legacy_app_token, or neither", "(one of them is empty)")
	}
	if err := validateCORS(a); err != nil {
		return bad(err.key, err.rule, err.value)
	}
	for _, h := range a.AllowedHosts {
		if !validHostName(h) {
			return bad("api.allowed_hosts", "want host names or IP addresses without scheme or port, such as htq.internal", h)
		}
	}
	if _, err := a.Zone(); err != nil {
		return bad("api.time_zone", "want an IANA zone such as Asia/Shanghai, UTC or Local", a.TimeZone)
	}
	for key, n := range map[string]int{"api.max_body_bytes": a.MaxBodyBytes, "api.max_url_bytes": a.MaxURLBytes, "api.max_header_bytes": a.MaxHeaderBytes, "api.max_batch": a.MaxBatch} {
		if n < 1 {
			return bad(key, "want at least 1", n)
		}
	}
	for key, d := range map[string]Duration{"api.read_header_timeout": a.ReadHeaderTimeout, "api.read_timeout": a.ReadTimeout, "api.write_timeout": a.WriteTimeout, "api.idle_timeout": a.IdleTimeout} {
		if d <= 0 {
			return bad(key, "want more than 0", d.Std())
		}
	}

	d := &c.Dispatcher
	switch {
	case d.MaxQueues < 1:
		return bad("dispatcher.max_queues", "want at least 1", d.MaxQueues)
	case d.LeaseTTL.Std() < 100*time.Millisecond:
		return bad("dispatcher.lease_ttl", "want at least 100ms", d.LeaseTTL.Std())
	case d.RecoveryGrace < 0:
		return bad("dispatcher.recovery_grace", "want 0 or more", d.RecoveryGrace.Std())
	case d.ShutdownGrace < 0:
		return bad("dispatcher.shutdown_grace", "want 0 or more", d.ShutdownGrace.Std())
	case d.PollMin <= 0:
		return bad("dispatcher.poll_min", "want more than 0", d.PollMin.Std())
	case d.PollMax < d.PollMin:
		return bad("dispatcher.poll_max", "want at least dispatcher.poll_min", d.PollMax.Std())
	case d.MaxResponseBytes < 16:
		return bad("dispatcher.max_response_bytes", "want at least 16", d.MaxResponseBytes)
	case d.History < 0 || d.History > 1000:
		return bad("dispatcher.history", "want 0 to 1000", d.History)
	}
	if strings.ContainsAny(d.ID, ": \t\n") {
		return bad("dispatcher.id", "must not contain ':' or spaces", d.ID)
	}

	s := &c.Scheduler
	switch {
	case s.LockTTL.Std() < 500*time.Millisecond:
		return bad("scheduler.lock_ttl", "want at least 500ms", s.LockTTL.Std())
	case s.PollInterval <= 0:
		return bad("scheduler.poll_interval", "want more than 0", s.PollInterval.Std())
	case s.PromoteBatch < 1 || s.PromoteBatch > 100_000:
		return bad("scheduler.promote_batch", "want 1 to 100000", s.PromoteBatch)
	case s.JanitorInterval <= 0:
		return bad("scheduler.janitor_interval", "want more than 0", s.JanitorInterval.Std())
	case s.BacklogInterval.Std() < time.Second:
		return bad("scheduler.backlog_interval", "want at least 1s", s.BacklogInterval.Std())
	case s.BacklogTopQueues < 0 || s.BacklogTopQueues > 1000:
		return bad("scheduler.backlog_top_queues", "want 0 to 1000 (each queue adds 4 series)", s.BacklogTopQueues)
	case s.MissedGrace.Std() < 100*time.Millisecond || s.MissedGrace.Std() > time.Hour:
		return bad("scheduler.missed_grace", "want 100ms to 1h", s.MissedGrace.Std())
	}

	qs := &c.Queues
	switch {
	case qs.Timeout <= 0 || qs.Timeout.Std() > task.MaxTimeout:
		return bad("queues.timeout", "want more than 0 and at most 24h", qs.Timeout.Std())
	case qs.MaxAttempts < 1 || qs.MaxAttempts > task.MaxAttemptsLimit:
		return bad("queues.max_attempts", fmt.Sprintf("want 1 to %d", task.MaxAttemptsLimit), qs.MaxAttempts)
	case qs.MinBackoff > qs.MaxBackoff:
		return bad("queues.min_backoff", "must not exceed queues.max_backoff", qs.MinBackoff.Std())
	case qs.MaxBacklog < 1:
		return bad("queues.max_backlog", "want at least 1", qs.MaxBacklog)
	}
	q := c.QueueDefaults()
	if err := q.Validate(); err != nil { // a backstop: the checks above name the keys
		return fmt.Errorf("%w: queues: %w", ErrInvalid, err)
	}
	switch l := &c.Legacy; {
	case l.MaxAttempts < 1 || l.MaxAttempts > task.MaxAttemptsLimit:
		return bad("legacy.max_attempts", fmt.Sprintf("want 1 to %d", task.MaxAttemptsLimit), l.MaxAttempts)
	case l.MinGap.Std() < time.Millisecond || l.MinGap.Std() > task.MaxTimeout:
		return bad("legacy.min_gap", "want 1ms to 24h (a variable queue must never call back to back)", l.MinGap.Std())
	}
	if c.Queues.IdempotencyWindow.Std() < time.Second {
		return bad("queues.idempotency_window", "want at least 1s", c.Queues.IdempotencyWindow.Std())
	}
	if g := c.Queues.MinVariableGap; g <= 0 || g.Std() > time.Hour {
		return bad("queues.min_variable_gap", "want more than 0 and at most 1h", g.Std())
	}
	for key, sec := range map[string]string{"signing.secret": c.Signing.Secret, "signing.previous_secret": c.Signing.PreviousSecret} {
		if sec == "" {
			continue
		}
		if k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_")); err != nil || len(k) < 16 {
			return bad(key, "want whsec_ followed by the base64 of at least 16 random bytes", "(hidden)")
		}
	}
	if c.Signing.PreviousSecret != "" && c.Signing.Secret == "" {
		return bad("signing.previous_secret", "set signing.secret too (the previous secret only signs alongside it)", "(hidden)")
	}
	for key, list := range map[string][]string{"egress.deny": c.Egress.Deny, "egress.allow": c.Egress.Allow} {
		for _, cidr := range list {
			if _, err := netip.ParsePrefix(cidr); err != nil {
				if _, err := netip.ParseAddr(cidr); err != nil {
					return bad(key, "want CIDRs such as 10.0.0.0/8 or addresses", cidr)
				}
			}
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", `want "debug", "info", "warn" or "error"`, c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return bad("log.format", `want "json" or "text"`, c.Log.Format)
	}
	return nil
}

// keyError is a bad value of one key.
type keyError struct {
	key, rule string
	value     any
}

// validateCORS checks the CORS keys: each origin is "*" or
// scheme://host[:port] as a browser sends it; credentials are never allowed
// with "*" (any page could then read answers meant for the user), and "*"
// is refused without authentication (any page could then drive the API).
func validateCORS(a *API) *keyError {
	wildcard := false
	for _, o := range a.CORSOrigins {
		if o == "*" {
			wildcard = true
			continue
		}
		if !validOrigin(o) {
			return &keyError{"api.cors_origins", `want "*" or origins such as https://console.example.com (scheme, host and port only, no path)`, o}
		}
	}
	switch {
	case a.CORSCredentials && wildcard:
		return &keyError{"api.cors_credentials", `never with "*" in api.cors_origins: list the origins that may send credentials`, true}
	case a.CORSCredentials && len(a.CORSOrigins) == 0:
		return &keyError{"api.cors_credentials", "set api.cors_origins too: without origins there is no cross-origin access to allow credentials for", true}
	case wildcard && a.InsecureNoAuth:
		return &keyError{"api.cors_origins", `"*" is refused with api.insecure_no_auth: any web page could create and delete queues and tasks`, "*"}
	}
	return nil
}

// validOrigin reports whether o is a serialized origin: http or https,
// a host, an optional port, nothing else.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !validHostName(u.Hostname()) {
		return false
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return u.Scheme+"://"+u.Host == o
}

// validHostName reports whether h is an IP address or a DNS name (letters,
// digits, hyphens and dots, labels of 1 to 63 bytes).
func validHostName(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// hostPort reports whether addr is host:port with a numeric port from
// minPort to 65535. (net.SplitHostPort alone accepts ":99999" or ":http",
// which would fail only later, at listen or dial time, without naming the key.)
func hostPort(addr string, minPort int) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if port == "" {
		return minPort == 0 // "host:" listens on a free port, as "host:0" does
	}
	if len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= minPort && n <= 65535
}

// BearerHashes returns the SHA-256 of every accepted bearer token: those
// configured as plain tokens or hashes, and, when the configuration is a
// legacy config.json (which has no other token), its app_token.
func (c *Config) BearerHashes() [][sha256.Size]byte {
	var out [][sha256.Size]byte
	for _, t := range c.API.Tokens {
		out = append(out, sha256.Sum256([]byte(t)))
	}
	if c.LegacyFile && c.API.LegacyAppToken != "" {
		out = append(out, sha256.Sum256([]byte(c.API.LegacyAppToken)))
	}
	for _, h := range c.API.TokenSHA256 {
		var b [sha256.Size]byte
		if n, err := hex.Decode(b[:], []byte(h)); err == nil && n == sha256.Size {
			out = append(out, b)
		}
	}
	return out
}

// ReadOnlyHashes returns the SHA-256 of every read-only bearer token
// (api.read_only_tokens): such a token may call every GET of /v1 and
// nothing else.
func (c *Config) ReadOnlyHashes() [][sha256.Size]byte {
	out := make([][sha256.Size]byte, 0, len(c.API.ReadOnlyTokens))
	for _, t := range c.API.ReadOnlyTokens {
		out = append(out, sha256.Sum256([]byte(t)))
	}
	return out
}

// CheckAuth refuses an API that would accept anyone by accident.
func (c *Config) CheckAuth() error {
	// Legacy credentials alone are enough: REST then refuses every request.
	if len(c.BearerHashes()) == 0 && len(c.API.ReadOnlyTokens) == 0 && c.API.LegacyAppToken == "" && !c.API.InsecureNoAuth {
		return fmt.Errorf("%w: api.tokens (%s): no token configured: set api.tokens, api.token_sha256 or api.legacy_app_token, or api.insecure_no_auth: true to run without authentication",
			ErrInvalid, EnvName("api.tokens"))
	}
	return nil
}
