package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Modes of connecting to Redis.
const (
	ModeStandalone = "standalone"
	ModeCluster    = "cluster"
	ModeSentinel   = "sentinel"
)

// Options say how to reach Redis.
type Options struct {
	Mode             string   // standalone (default), cluster or sentinel
	URL              string   // standalone: redis://[user:pass@]host:port/db (rediss:// for TLS)
	Addrs            []string // standalone: one address; cluster: seed nodes; sentinel: the sentinels
	Username         string
	Password         string
	DB               int
	MasterName       string // sentinel
	SentinelUsername string
	SentinelPassword string
	TLS              bool
	PoolSize         int
	DialTimeout      time.Duration
	ReadTimeout      time.Duration
	WriteTimeout     time.Duration
}

// noRetries turns off go-redis's own resending of failed commands. A
// script whose reply was lost may have run: sending it again blindly could
// store a task twice. HTQ retries itself where it is safe (every script the
// dispatcher and scheduler repeat is idempotent) and the API tells its
// caller whether a change may have been applied (NotApplied).
const noRetries = -1

// resp2 is the protocol HTQ speaks: RESP3 would make go-redis look for push
// notifications on the connection before every command (a system call per
// command on the hot path), for a feature HTQ does not use.
const resp2 = 2

// NotApplied reports whether a failed command certainly changed nothing:
// it was never sent (no connection), or Redis answered with an error (it
// refuses before running a script: LOADING, OOM…). Any other failure — a
// timeout or a connection lost after sending — leaves the outcome unknown.
// On a Redis Cluster an error reply proves nothing: the cluster client
// follows redirects and retries after a lost connection by itself, so the
// error it returns (CLUSTERDOWN…) may come after an attempt that ran.
func (s *Store) NotApplied(err error) bool {
	var rerr redis.Error
	var op *net.OpError
	_, cluster := s.rdb.(*redis.ClusterClient)
	switch {
	case err == nil:
		return false
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed):
		return true
	case errors.As(err, &op) && op.Op == "dial":
		return true
	case errors.As(err, &rerr) && !errors.Is(err, redis.Nil):
		return !cluster
	}
	return false
}

// Unavailable reports whether err is a failure to use Redis: no connection,
// a timeout, a connection lost, or an error reply (LOADING, OOM,
// READONLY…). The API answers these with 503; anything else a store call
// returns is either a domain outcome (a sentinel error) or a bug.
func Unavailable(err error) bool {
	var rerr redis.Error
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &ne), errors.As(err, &rerr):
		return true
	}
	return false
}

// ErrBadOptions reports Redis options that cannot work.
var ErrBadOptions = errors.New("invalid redis options")

// NewClient connects to Redis as the options say. It does not wait for Redis
// to answer: readiness probes and the first command do.
func NewClient(o Options) (redis.UniversalClient, error) {
	var tlsConf *tls.Config
	if o.TLS {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch o.Mode {
	case "", ModeStandalone:
		// One address in Addrs wins over URL (which has a default).
		var opt *redis.Options
		switch {
		case len(o.Addrs) == 1:
			opt = &redis.Options{Addr: o.Addrs[0], DB: o.DB}
		case len(o.Addrs) > 1:
			return nil, fmt.Errorf("%w: redis.addrs: standalone mode takes one address, got %d (set redis.mode for cluster or sentinel)", ErrBadOptions, len(o.Addrs))
		case o.URL != "":
			u, err := redis.ParseURL(o.URL)
			if err != nil {
				return nil, fmt.Errorf("%w: redis.url: %w", ErrBadOptions, err)
			}
			opt = u
		default:
			return nil, fmt.Errorf("%w: set redis.url or redis.addrs", ErrBadOptions)
		}
		if o.Username != "" {
			opt.Username = o.Username
		}
		if o.Password != "" {
			opt.Password = o.Password
		}
		if tlsConf != nil && opt.TLSConfig == nil {
			opt.TLSConfig = tlsConf
		}
		opt.PoolSize, opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.PoolSize, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
		opt.DisableIdentity = true // CLIENT SETINFO fails on Redis < 7.2, for nothing we need
		opt.MaxRetries = noRetries
		opt.Protocol = resp2
		return redis.NewClient(opt), nil
	case ModeCluster:
		if len(o.Addrs) == 0 {
			return nil, fmt.Errorf("%w: redis.addrs: cluster mode needs at least one seed address", ErrBadOptions)
		}
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.Addrs, Username: o.Username, Password: o.Password, TLSConfig: tlsConf,
			PoolSize: o.PoolSize, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			DisableIdentity: true, MaxRetries: noRetries, Protocol: resp2,
		}), nil
	case ModeSentinel:
		if len(o.Addrs) == 0 || o.MasterName == "" {
			return nil, fmt.Errorf("%w: sentinel mode needs redis.addrs (the sentinels) and redis.master_name", ErrBadOptions)
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.MasterName, SentinelAddrs: o.Addrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: tlsConf,
			PoolSize: o.PoolSize, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			DisableIdentity: true, MaxRetries: noRetries, Protocol: resp2,
		}), nil
	default:
		return nil, fmt.Errorf("%w: redis.mode: %q: want standalone, cluster or sentinel", ErrBadOptions, o.Mode)
	}
}
