package metrics

import (
	"context"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// InstrumentRedis exports the client's pool statistics and counts Redis
// errors (htq_redis_errors_total; a missing key is not an error).
func InstrumentRedis(reg prometheus.Registerer, c redis.UniversalClient) {
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "htq_redis_errors_total", Help: "Redis commands and pipelines that failed (missing keys and NOSCRIPT, answered by loading the script, excluded).",
	})
	reg.MustRegister(errs, &poolCollector{c: c})
	c.AddHook(errorHook{errs: errs})
}

type errorHook struct{ errs prometheus.Counter }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.errs.Inc()
		}
		return conn, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if counts(err) {
			h.errs.Inc()
		}
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if counts(err) {
			h.errs.Inc()
		}
		return err
	}
}

// counts reports whether an error is a Redis failure worth counting: not a
// missing key, and not NOSCRIPT (the script cache was flushed, as after a
// restart; the client loads the script again at once).
func counts(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !redis.HasErrorPrefix(err, "NOSCRIPT")
}

var (
	poolHits     = prometheus.NewDesc("htq_redis_pool_hits_total", "Times a free connection was found in the pool.", nil, nil)
	poolMisses   = prometheus.NewDesc("htq_redis_pool_misses_total", "Times no free connection was in the pool.", nil, nil)
	poolTimeouts = prometheus.NewDesc("htq_redis_pool_timeouts_total", "Times waiting for a connection timed out.", nil, nil)
	poolConns    = prometheus.NewDesc("htq_redis_pool_connections", "Connections in the pool, by state.", []string{"state"}, nil)
)

type poolCollector struct{ c redis.UniversalClient }

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolHits
	ch <- poolMisses
	ch <- poolTimeouts
	ch <- poolConns
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.c.PoolStats()
	ch <- prometheus.MustNewConstMetric(poolHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(poolMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(poolTimeouts, prometheus.CounterValue, float64(s.Timeouts))
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.TotalConns), "total")
}
