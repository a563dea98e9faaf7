// Package config loads HTQ's configuration: a YAML file (or the legacy
// config.json as it is), then HTQ_* environment variables over it, then
// validation that names the offending key.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/htq/htq/internal/task"
)

// Defaults, documented in the README's configuration table.
const (
	DefaultRedisMode         = "standalone"
	DefaultRedisURL          = "redis://127.0.0.1:6379/0"
	DefaultKeyPrefix         = "htq:"
	DefaultAPIListen         = ":5999"
	DefaultRoleListen        = "127.0.0.1:0"
	DefaultTimeZone          = "Local"
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxURLBytes       = 8 << 10
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBatch          = 1000
	DefaultUI                = true // the browser console at /ui/
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxQueues         = 1024
	DefaultLeaseTTL          = 10 * time.Second
	DefaultRecoveryGrace     = 5 * time.Second
	DefaultShutdownGrace     = 25 * time.Second
	DefaultPollMin           = 20 * time.Millisecond
	DefaultPollMax           = time.Second
	DefaultMaxResponseBytes  = 64 << 10
	DefaultHistory           = 10
	DefaultLockTTL           = 10 * time.Second
	DefaultSchedulerPoll     = time.Second
	DefaultPromoteBatch      = 1000
	DefaultJanitorInterval   = 5 * time.Minute
	DefaultMissedGrace       = time.Second
	DefaultBacklogInterval   = 15 * time.Second
	DefaultBacklogTopQueues  = 20
	DefaultIdempotencyWindow = 24 * time.Hour
	DefaultLegacyMaxAttempts = 1
	DefaultLegacyMinGap      = time.Second
	DefaultMinVariableGap    = time.Second
	DefaultDialTimeout       = 5 * time.Second
	DefaultRedisReadTimeout  = 3 * time.Second
	DefaultRedisWriteTimeout = 3 * time.Second
	DefaultEgressDefaultDeny = true
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "json"
)

// Config is the whole configuration; every role reads the sections it needs.
type Config struct {
	Redis      Redis      `yaml:"redis"`
	API        API        `yaml:"api"`
	Dispatcher Dispatcher `yaml:"dispatcher"`
	Scheduler  Scheduler  `yaml:"scheduler"`
	Queues     Queues     `yaml:"queues"`
	Legacy     Legacy     `yaml:"legacy"`
	Signing    Signing    `yaml:"signing"`
	Egress     Egress     `yaml:"egress"`
	Log        Log        `yaml:"log"`
	Debug      Debug      `yaml:"debug"`

	// LegacyFile is set when the configuration came from a legacy
	// config.json: its app_token is then also a REST bearer token.
	LegacyFile bool `yaml:"-"`
}

// Signing configures the Standard Webhooks signature of calls.
type Signing struct {
	Secret         string `yaml:"secret" secret:"true"`          // "whsec_<base64>"; empty: calls are not signed
	PreviousSecret string `yaml:"previous_secret" secret:"true"` // during a rotation: also signed with this one
}

// Egress configures which addresses calls may connect to.
type Egress struct {
	DefaultDeny  bool     `yaml:"default_deny"`  // deny link-local, "this network" and cloud metadata addresses
	Deny         []string `yaml:"deny"`          // more CIDRs to deny
	Allow        []string `yaml:"allow"`         // when set, only these CIDRs may be called
	DenyLoopback bool     `yaml:"deny_loopback"` // loopback is allowed unless this is set
}

// Redis says how to reach Redis.
type Redis struct {
	Mode             string   `yaml:"mode"` // standalone, cluster, sentinel
	URL              string   `yaml:"url"`
	Addrs            []string `yaml:"addrs"`
	Username         string   `yaml:"username"`
	Password         string   `yaml:"password" secret:"true"`
	DB               int      `yaml:"db"`
	MasterName       string   `yaml:"master_name"`
	SentinelUsername string   `yaml:"sentinel_username"`
	SentinelPassword string   `yaml:"sentinel_password" secret:"true"`
	TLS              bool     `yaml:"tls"`
	KeyPrefix        string   `yaml:"key_prefix"`
	PoolSize         int      `yaml:"pool_size"`
	DialTimeout      Duration `yaml:"dial_timeout"`
	ReadTimeout      Duration `yaml:"read_timeout"`
	WriteTimeout     Duration `yaml:"write_timeout"`
}

// API configures the API role.
type API struct {
	Listen            string   `yaml:"listen"`
	MetricsListen     string   `yaml:"metrics_listen"` // empty: /metrics on Listen
	Tokens            []string `yaml:"tokens" secret:"true"`
	TokenSHA256       []string `yaml:"token_sha256"`
	ReadOnlyTokens    []string `yaml:"read_only_tokens" secret:"true"` // may call every GET, nothing else
	InsecureNoAuth    bool     `yaml:"insecure_no_auth"`
	LegacyAppKey      string   `yaml:"legacy_app_key"`
	LegacyAppToken    string   `yaml:"legacy_app_token" secret:"true"`
	TimeZone          string   `yaml:"time_zone"`
	CORSOrigins       []string `yaml:"cors_origins"`     // origins allowed cross-origin access; empty: none
	CORSCredentials   bool     `yaml:"cors_credentials"` // Access-Control-Allow-Credentials; never with "*"
	AllowedHosts      []string `yaml:"allowed_hosts"`    // with insecure_no_auth: Host names /v1 answers besides loopback
	AutoCreateQueues  bool     `yaml:"auto_create_queues"`
	MaxBodyBytes      int      `yaml:"max_body_bytes"`
	MaxURLBytes       int      `yaml:"max_url_bytes"`
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
	MaxBatch          int      `yaml:"max_batch"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	// UI serves the browser console at /ui/ on Listen (DefaultUI: on). The
	// console's files are public; every call it makes needs a token.
	UI bool `yaml:"ui"`
}

// Dispatcher configures the dispatcher role.
type Dispatcher struct {
	Listen           string   `yaml:"listen"`
	ID               string   `yaml:"id"`
	MaxQueues        int      `yaml:"max_queues"`
	LeaseTTL         Duration `yaml:"lease_ttl"`
	RecoveryGrace    Duration `yaml:"recovery_grace"`
	ShutdownGrace    Duration `yaml:"shutdown_grace"`
	PollMin          Duration `yaml:"poll_min"`
	PollMax          Duration `yaml:"poll_max"`
	MaxResponseBytes int      `yaml:"max_response_bytes"`
	History          int      `yaml:"history"`
}

// Scheduler configures the scheduler role.
type Scheduler struct {
	Listen           string   `yaml:"listen"`
	LockTTL          Duration `yaml:"lock_ttl"`
	PollInterval     Duration `yaml:"poll_interval"`
	PromoteBatch     int      `yaml:"promote_batch"`
	JanitorInterval  Duration `yaml:"janitor_interval"`
	BacklogInterval  Duration `yaml:"backlog_interval"`
	BacklogTopQueues int      `yaml:"backlog_top_queues"`
	MissedGrace      Duration `yaml:"missed_grace"`
}

// Queues holds the defaults of new queues and task-wide settings.
type Queues struct {
	Timeout           Duration `yaml:"timeout"`
	MaxAttempts       int      `yaml:"max_attempts"`
	MinBackoff        Duration `yaml:"min_backoff"`
	MaxBackoff        Duration `yaml:"max_backoff"`
	MaxBacklog        int64    `yaml:"max_backlog"`
	Retention         Duration `yaml:"retention"`
	DeadRetention     Duration `yaml:"dead_retention"`
	IdempotencyWindow Duration `yaml:"idempotency_window"`
	// MinVariableGap is the shortest gap a variable queue may settle on
	// (its stepping_time and max_time_interval), for queues created or
	// changed through either API: none may call its target back to back.
	MinVariableGap Duration `yaml:"min_variable_gap"`
}

// Legacy configures what queues and tasks created through the legacy API
// (/api/*) do differently from REST ones, to keep the original's semantics.
type Legacy struct {
	// MaxAttempts is retry.max_attempts of the one-shot queues the legacy
	// API creates: 1, as the original called each task once (its users
	// enqueue again themselves when their step failed).
	MaxAttempts int `yaml:"max_attempts"`
	// MinGap is the floor of a legacy variable queue's gaps: a stepping_time
	// of 0 becomes it, a max_time_interval below it is raised to it.
	MinGap Duration `yaml:"min_gap"`
	// StrictExecuteTime refuses an execute_time HTQ does not understand
	// (1005) instead of running the task at once, as the original did.
	StrictExecuteTime bool `yaml:"strict_execute_time"`
}

// Debug configures diagnostics.
type Debug struct {
	// PProf serves Go's profiler at /debug/pprof/ next to /metrics (for the
	// API, only on api.metrics_listen, never on its public port). The
	// profiles reveal nothing secret, but they cost CPU while taken: keep
	// the metrics port off the internet.
	PProf bool `yaml:"pprof"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Default returns the configuration used when nothing is set.
func Default() *Config {
	q := task.DefaultQueueConfig()
	return &Config{
		Redis: Redis{
			Mode: DefaultRedisMode, URL: DefaultRedisURL, KeyPrefix: DefaultKeyPrefix,
			DialTimeout: Duration(DefaultDialTimeout), ReadTimeout: Duration(DefaultRedisReadTimeout),
			WriteTimeout: Duration(DefaultRedisWriteTimeout),
		},
		API: API{
			Listen: DefaultAPIListen, TimeZone: DefaultTimeZone,
			MaxBodyBytes: DefaultMaxBodyBytes, MaxURLBytes: DefaultMaxURLBytes,
			MaxHeaderBytes: DefaultMaxHeaderBytes, MaxBatch: DefaultMaxBatch,
			ReadHeaderTimeout: Duration(DefaultReadHeaderTimeout), ReadTimeout: Duration(DefaultReadTimeout),
			WriteTimeout: Duration(DefaultWriteTimeout), IdleTimeout: Duration(DefaultIdleTimeout),
			UI: DefaultUI,
		},
		Dispatcher: Dispatcher{
			Listen: DefaultRoleListen, MaxQueues: DefaultMaxQueues,
			LeaseTTL: Duration(DefaultLeaseTTL), RecoveryGrace: Duration(DefaultRecoveryGrace),
			ShutdownGrace: Duration(DefaultShutdownGrace), PollMin: Duration(DefaultPollMin),
			PollMax: Duration(DefaultPollMax), MaxResponseBytes: DefaultMaxResponseBytes, History: DefaultHistory,
		},
		Scheduler: Scheduler{
			Listen: DefaultRoleListen, LockTTL: Duration(DefaultLockTTL),
			PollInterval: Duration(DefaultSchedulerPoll), PromoteBatch: DefaultPromoteBatch,
			JanitorInterval: Duration(DefaultJanitorInterval), BacklogInterval: Duration(DefaultBacklogInterval),
			BacklogTopQueues: DefaultBacklogTopQueues, MissedGrace: Duration(DefaultMissedGrace),
		},
		Queues: Queues{
			Timeout: Duration(q.Timeout), MaxAttempts: q.Retry.MaxAttempts, MinBackoff: Duration(q.Retry.MinBackoff),
			MaxBackoff: Duration(q.Retry.MaxBackoff), MaxBacklog: q.MaxBacklog, Retention: Duration(q.Retention),
			DeadRetention: Duration(q.DeadRetention), IdempotencyWindow: Duration(DefaultIdempotencyWindow),
			MinVariableGap: Duration(DefaultMinVariableGap),
		},
		Legacy: Legacy{MaxAttempts: DefaultLegacyMaxAttempts, MinGap: Duration(DefaultLegacyMinGap)},
		Egress: Egress{DefaultDeny: DefaultEgressDefaultDeny},
		Log:    Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
	}
}

// QueueDefaults returns the configuration a new queue gets.
func (c *Config) QueueDefaults() task.QueueConfig {
	q := task.DefaultQueueConfig()
	q.Timeout = task.Duration(c.Queues.Timeout)
	q.Retry = task.RetryPolicy{
		MaxAttempts: c.Queues.MaxAttempts,
		MinBackoff:  task.Duration(c.Queues.MinBackoff),
		MaxBackoff:  task.Duration(c.Queues.MaxBackoff),
	}
	q.MaxBacklog = c.Queues.MaxBacklog
	q.Retention = task.Duration(c.Queues.Retention)
	q.DeadRetention = task.Duration(c.Queues.DeadRetention)
	return q
}

// TaskLimits returns the bounds of a task (api.max_url_bytes,
// api.max_header_bytes, api.max_body_bytes).
func (c *Config) TaskLimits() task.Limits {
	return task.Limits{
		MaxURLBytes:    c.API.MaxURLBytes,
		MaxHeaderBytes: c.API.MaxHeaderBytes,
		MaxBodyBytes:   c.API.MaxBodyBytes,
	}
}

// Zone returns the zone api.time_zone names.
func (a *API) Zone() (*time.Location, error) {
	loc, err := time.LoadLocation(a.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("api.time_zone: %w", err)
	}
	return loc, nil
}

// ConsumerName returns dispatcher.id, or when it is empty its default: a
// name of this process, host-pid-random, new at every call.
func (d *Dispatcher) ConsumerName() string {
	if d.ID != "" {
		return d.ID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "htq"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("invalid configuration")
