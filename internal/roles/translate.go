package roles

import (
	"fmt"
	"time"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/buildinfo"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/console"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
)

// The translations of the configuration into each component's own: one
// field per line, no default and no computation of their own (config has
// the defaults and the derived values; the components refuse what they
// cannot use). TestEveryKeyIsTranslated keeps them complete.

// storeOptions translates redis.* but key_prefix (store.New's argument).
func storeOptions(r *config.Redis) store.Options {
	return store.Options{
		Mode:             r.Mode,
		URL:              r.URL,
		Addrs:            r.Addrs,
		Username:         r.Username,
		Password:         r.Password,
		DB:               r.DB,
		MasterName:       r.MasterName,
		SentinelUsername: r.SentinelUsername,
		SentinelPassword: r.SentinelPassword,
		TLS:              r.TLS,
		PoolSize:         r.PoolSize,
		DialTimeout:      r.DialTimeout.Std(),
		ReadTimeout:      r.ReadTimeout.Std(),
		WriteTimeout:     r.WriteTimeout.Std(),
	}
}

// APIConfig translates api.*, queues.* and legacy.* but the listeners.
func APIConfig(cfg *config.Config) (api.Config, error) {
	a := &cfg.API
	zone, err := a.Zone()
	if err != nil {
		return api.Config{}, err
	}
	c := api.Config{
		Tokens:            cfg.BearerHashes(),
		ReadOnlyTokens:    cfg.ReadOnlyHashes(),
		InsecureNoAuth:    a.InsecureNoAuth,
		Legacy:            legacySettings(cfg, a, zone),
		CORSOrigins:       a.CORSOrigins,
		CORSCredentials:   a.CORSCredentials,
		AllowedHosts:      a.AllowedHosts,
		MinVariableGap:    cfg.Queues.MinVariableGap.Std(),
		AutoCreateQueues:  a.AutoCreateQueues,
		MaxBodyBytes:      a.MaxBodyBytes,
		MaxBatch:          a.MaxBatch,
		Limits:            cfg.TaskLimits(),
		QueueDefaults:     cfg.QueueDefaults(),
		IdempotencyWindow: cfg.Queues.IdempotencyWindow.Std(),
		ReadHeaderTimeout: a.ReadHeaderTimeout.Std(),
		ReadTimeout:       a.ReadTimeout.Std(),
		WriteTimeout:      a.WriteTimeout.Std(),
		IdleTimeout:       a.IdleTimeout.Std(),
		Version:           buildinfo.Version,
	}
	if a.UI {
		c.UI = console.Handler()
	}
	return c, nil
}

// legacySettings translates legacy.* and the legacy credentials.
func legacySettings(cfg *config.Config, a *config.API, zone *time.Location) legacy.Settings {
	return legacy.Settings{
		AppKey:            a.LegacyAppKey,
		AppToken:          a.LegacyAppToken,
		MaxAttempts:       cfg.Legacy.MaxAttempts,
		MinGap:            cfg.Legacy.MinGap.Std(),
		StrictExecuteTime: cfg.Legacy.StrictExecuteTime,
		TimeZone:          zone,
	}
}

// schedulerConfig translates scheduler.* but listen and backlog_top_queues
// (metrics.NewBacklog's argument).
func schedulerConfig(s *config.Scheduler) schedule.Config {
	return schedule.Config{
		LockTTL:         s.LockTTL.Std(),
		PollInterval:    s.PollInterval.Std(),
		PromoteBatch:    s.PromoteBatch,
		JanitorInterval: s.JanitorInterval.Std(),
		BacklogInterval: s.BacklogInterval.Std(),
		MissedGrace:     s.MissedGrace.Std(),
	}
}

// dispatcherConfig translates dispatcher.* but listen and
// max_response_bytes (deliverOptions).
func dispatcherConfig(d *config.Dispatcher) dispatch.Config {
	return dispatch.Config{
		ID:            d.ConsumerName(),
		MaxQueues:     d.MaxQueues,
		LeaseTTL:      d.LeaseTTL.Std(),
		RecoveryGrace: d.RecoveryGrace.Std(),
		ShutdownGrace: d.ShutdownGrace.Std(),
		PollMin:       d.PollMin.Std(),
		PollMax:       d.PollMax.Std(),
		History:       d.History,
	}
}

// deliverOptions translates what the dispatcher's calls need: signing.*,
// egress.* and dispatcher.max_response_bytes.
func deliverOptions(cfg *config.Config) (deliver.Options, error) {
	signer, err := deliver.NewSigner(cfg.Signing.Secret, cfg.Signing.PreviousSecret)
	if err != nil {
		return deliver.Options{}, fmt.Errorf("signing.secret: %w", err)
	}
	e := &cfg.Egress
	var deny []string
	if e.DefaultDeny {
		deny = append(deny, deliver.DefaultDeny...)
	}
	guard, err := deliver.NewGuard(append(deny, e.Deny...), e.Allow, e.DenyLoopback)
	if err != nil {
		return deliver.Options{}, fmt.Errorf("egress: %w", err)
	}
	return deliver.Options{
		UserAgent:           buildinfo.UserAgent(),
		MaxResponseBytes:    cfg.Dispatcher.MaxResponseBytes,
		MaxIdleConnsPerHost: cfg.Dispatcher.MaxQueues, // a connection per queue it may own
		Guard:               guard,
		Signer:              signer,
	}, nil
}
