// Package store is HTQ's only door to Redis: key builders, the Lua scripts
// that make every multi-key change atomic, and typed operations on queues and
// tasks for the API, the scheduler and the dispatcher. Time enters every
// script as an argument, from the injected clock.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// Store runs HTQ's operations on Redis.
type Store struct {
	rdb    redis.UniversalClient
	keys   *Keys
	sc     *scripts
	clock  clock.Clock
	loaded atomic.Bool
	group  *batcher // the hot scripts, sent together when called together
	due    *dueMarker
	stats  *minuteCounter // per-minute outcome counters (stats.go)
	listen *listenWatch   // whether the scripts publish task events (listeners.go)
	young  youngNames     // the young queues this store has listed (queues.go)
	cfgs   configCache    // decoded queue configurations (configs.go)
}

// New returns a store over a Redis client. Call Init before use, Close
// after.
func New(rdb redis.UniversalClient, keyPrefix string, clk clock.Clock) (*Store, error) {
	sc, err := loadScripts()
	if err != nil {
		return nil, err
	}
	keys := NewKeys(keyPrefix)
	st := &Store{rdb: rdb, keys: keys, sc: sc, clock: clk, due: newDueMarker(rdb, keys, clk), stats: newMinuteCounter(rdb, keys),
		listen: newListenWatch(rdb, keys.Listeners())}
	st.group = &batcher{rdb: rdb, onErr: st.Init}
	return st, nil
}

// Init loads the scripts into Redis.
func (s *Store) Init(ctx context.Context) error {
	if err := s.sc.load(ctx, s.rdb); err != nil {
		return err
	}
	s.loaded.Store(true)
	return nil
}

// Ready reports whether Redis answers and the scripts have been loaded.
func (s *Store) Ready(ctx context.Context) error {
	if !s.loaded.Load() {
		if err := s.Init(ctx); err != nil {
			return err
		}
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Client returns the Redis client, for the leader lock and pool metrics.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Keys returns the key builder.
func (s *Store) Keys() *Keys { return s.keys }

// Close applies the due-index marks still pending (for up to two seconds)
// and closes the Redis client.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.due.close(ctx)
	s.stats.close(ctx)
	s.listen.close()
	return s.rdb.Close()
}

// FlushDue waits until the due-index marks of every script run so far are
// applied (tests, and a graceful shutdown, use it).
func (s *Store) FlushDue(ctx context.Context) error { return s.due.flush(ctx) }

func (s *Store) nowMs() int64 { return clock.Millis(s.clock.Now()) }

// run runs a script of partition part (-1: a script that marks nothing) and
// returns the body of its reply, after recording its marks.
func (s *Store) run(ctx context.Context, sc *script, part int, keys []string, args ...any) (any, error) {
	v, err := s.variant(sc).Run(ctx, s.rdb, keys, args...).Result()
	return s.reply(sc, part, v, err)
}

// runMarkedNow is run for a script whose marks must be in the due index
// when it returns.
func (s *Store) runMarkedNow(ctx context.Context, sc *script, part int, keys []string, args ...any) (any, error) {
	v, err := s.variant(sc).Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", sc.name, err)
	}
	mk, body, err := unwrap(v)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", sc.name, err)
	}
	return body, s.due.applyNow(ctx, part, mk)
}

// runGrouped runs a hot script (enqueue, complete, claim) through the batcher, so
// concurrent calls share a pipeline.
func (s *Store) runGrouped(ctx context.Context, sc *script, part int, keys []string, args ...any) (any, error) {
	v, err := s.group.run(ctx, s.variant(sc), keys, args)
	return s.reply(sc, part, v, err)
}

func (s *Store) reply(sc *script, part int, v any, err error) (any, error) {
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", sc.name, err)
	}
	mk, body, err := unwrap(v)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", sc.name, err)
	}
	if part >= 0 {
		s.due.add(part, mk)
	}
	return body, nil
}

func partHex(p int) string { return fmt.Sprintf("%02x", p) }

// metaFields are the queue meta fields a configuration sets; the scripts
// read the scalar ones, the API and dispatcher the JSON one.
func metaFields(cfg *task.QueueConfig) ([]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode queue config: %w", err)
	}
	return []any{
		"type", string(cfg.Type),
		"cfg", string(b),
		"conc", cfg.Concurrency,
		"maxbl", cfg.MaxBacklog,
		"tmo", cfg.Timeout.Millis(),
		"rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64),
		"burst", cfg.EffectiveBurst(),
		"ret", cfg.Retention.Std().Milliseconds(),
		"dret", cfg.DeadRetention.Std().Milliseconds(),
	}, nil
}

// PutMode says what PutQueue may do.
type PutMode string

// Put modes.
const (
	PutCreate PutMode = "create" // only create; an existing queue is ErrQueueExists
	PutUpdate PutMode = "update" // only update; a missing queue is ErrQueueNotFound
	PutUpsert PutMode = "upsert"
)

// PutQueue creates or updates a queue. It reports whether it created it.
func (s *Store) PutQueue(ctx context.Context, name string, cfg *task.QueueConfig, mode PutMode) (bool, error) {
	k := s.keys.Queue(name)
	fields, err := metaFields(cfg)
	if err != nil {
		return false, err
	}
	args := append([]any{k.Tag, name, s.nowMs(), string(mode)}, fields...)
	v, err := s.run(ctx, s.sc.queuePut, k.Partition, []string{k.Meta, k.Stream, k.Registry}, args...)
	if err != nil {
		return false, err
	}
	res, _ := v.(string)
	switch res {
	case "created":
		_ = s.addName(ctx, name) // best effort (addName)
		return true, nil
	case "updated":
		return false, nil
	case "exists":
		return false, fmt.Errorf("%w: %q", task.ErrQueueExists, name)
	case "missing":
		return false, fmt.Errorf("%w: %q", task.ErrQueueNotFound, name)
	}
	return false, fmt.Errorf("queue_put: unexpected reply %v", v)
}

// NewTask is one task to enqueue.
type NewTask struct {
	Spec           *task.Spec
	Due            time.Time // zero or not after now: run as soon as the queue is free
	IdempotencyKey string
}

// Enqueued is the result for one enqueued task.
type Enqueued struct {
	ID        string
	Existed   bool // an idempotency key matched an earlier task
	Scheduled bool // it waits for its due time
}

// EnqueueOptions tune an enqueue.
type EnqueueOptions struct {
	// CreateQueue, when set, creates a missing queue with this configuration
	// (the legacy API's behaviour); otherwise a missing queue is
	// ErrQueueNotFound.
	CreateQueue *task.QueueConfig
	// IdempotencyWindow is how long an idempotency key is remembered.
	IdempotencyWindow time.Duration
}

// EnqueueResult is the result of an enqueue.
type EnqueueResult struct {
	Kind  task.Kind // the queue's kind
	Tasks []Enqueued
}

// Enqueue adds tasks to a queue, all or nothing, in order.
func (s *Store) Enqueue(ctx context.Context, queue string, tasks []NewTask, o EnqueueOptions) (*EnqueueResult, error) {
	k := s.keys.Queue(queue)
	now := s.nowMs()
	args := make([]any, 0, 9+3*len(tasks)+16)
	window := o.IdempotencyWindow.Milliseconds()
	if window <= 0 {
		window = 1
	}
	args = append(args, k.Tag, queue, now, partHex(k.Partition),
		k.Partition, s.keys.ScheduleChannel(), window)
	if o.CreateQueue != nil {
		fields, err := metaFields(o.CreateQueue)
		if err != nil {
			return nil, err
		}
		args = append(args, len(fields)/2)
		args = append(args, fields...)
	} else {
		args = append(args, 0)
	}
	args = append(args, len(tasks))
	scheduled := make([]bool, len(tasks))
	for i, t := range tasks {
		due := int64(0)
		if !t.Due.IsZero() && clock.Millis(t.Due) > now {
			due = clock.Millis(t.Due)
			scheduled[i] = true
		}
		b, err := json.Marshal(t.Spec)
		if err != nil {
			return nil, fmt.Errorf("encode spec: %w", err)
		}
		args = append(args, due, string(b), t.IdempotencyKey)
	}
	v, err := s.runGrouped(ctx, s.sc.enqueue, k.Partition,
		[]string{k.Meta, k.Stream, k.Delayed, k.Timers, k.Ready, k.Registry, k.Seq, k.Lease}, args...)
	if err != nil {
		return nil, err
	}
	rd := newReader("enqueue", v)
	switch st := rd.str(); st {
	case "noqueue":
		return nil, fmt.Errorf("%w: %q", task.ErrQueueNotFound, queue)
	case "full":
		qf := &task.QueueFullError{Queue: queue, Backlog: rd.int(), Max: rd.int(), Adding: int(rd.int())}
		if rd.err != nil {
			return nil, rd.err
		}
		return nil, qf
	case "ok":
	default:
		if rd.err != nil {
			return nil, rd.err
		}
		return nil, badReply("enqueue status", st)
	}
	out := &EnqueueResult{Kind: task.Kind(rd.str()), Tasks: make([]Enqueued, len(tasks))}
	young := rd.int() // the creation time of a queue created by this call or a moment ago, else 0
	if rd.err == nil && rd.left() != 2*len(tasks) {
		return nil, fmt.Errorf("%w: enqueue: %d values for %d tasks", ErrBadReply, rd.left(), len(tasks))
	}
	for i := range tasks {
		out.Tasks[i] = Enqueued{ID: rd.str(), Existed: rd.int() == 1, Scheduled: scheduled[i]}
	}
	if rd.err != nil {
		return nil, rd.err
	}
	if young != 0 {
		s.listYoung(ctx, queue, young)
	}
	return out, nil
}
