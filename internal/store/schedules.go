package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/task"
)

// Schedule errors.
var (
	// ErrScheduleNotFound: no schedule of that name.
	ErrScheduleNotFound = errors.New("schedule not found")
	// ErrScheduleChanged: the schedule changed between a read and a write
	// that depended on it; read it again.
	ErrScheduleChanged = errors.New("schedule changed meanwhile")
)

// ScheduleState is a stored schedule: its definition and where it stands.
type ScheduleState struct {
	Def      *recur.Schedule
	Version  int64
	Next     time.Time // zero: ended (or never fires)
	NextMs   string    // Next as stored ("" when none), for FireSchedule's compare and set
	LastTask string    // the last task it created
	LastAt   time.Time // that task's occurrence
}

// nameMember is a schedule's member of the global names index.
func nameMember(name, queue string) string { return name + "\n" + queue }

// scheduleQueue finds the queue a schedule lives in.
func (s *Store) scheduleQueue(ctx context.Context, name string) (string, error) {
	v, err := s.rdb.ZRangeByLex(ctx, s.keys.ScheduleNames(), &redis.ZRangeBy{
		Min: "[" + name + "\n", Max: "(" + name + "\x0b", Count: 1,
	}).Result()
	if err != nil {
		return "", fmt.Errorf("find schedule %s: %w", name, err)
	}
	if len(v) == 0 {
		return "", fmt.Errorf("%w: %q", ErrScheduleNotFound, name)
	}
	_, q, _ := strings.Cut(v[0], "\n")
	return q, nil
}

// PutSchedule creates or updates a schedule whose next instant is next
// (zero: none), in its queue's partition. expect is the version the change
// is based on (0: any); another gives ErrScheduleChanged. A schedule moved
// to another queue is removed from its old queue's partition first (so it
// can never fire twice; a crash in between leaves it absent, and the
// caller's error says to try again). It reports whether it created the
// schedule.
func (s *Store) PutSchedule(ctx context.Context, def *recur.Schedule, next time.Time, expect int64) (bool, error) {
	b, err := json.Marshal(def)
	if err != nil {
		return false, fmt.Errorf("encode schedule: %w", err)
	}
	old, err := s.scheduleQueue(ctx, def.Name)
	switch {
	case errors.Is(err, ErrScheduleNotFound):
		old = ""
	case err != nil:
		return false, err
	}
	k := s.keys.Queue(def.Queue)
	if old != "" && old != def.Queue {
		if expect != 0 {
			return false, fmt.Errorf("%w: %q moved queues", ErrScheduleChanged, def.Name)
		}
		// The queue must exist before the old copy goes.
		if n, err := s.rdb.Exists(ctx, k.Meta).Result(); err != nil {
			return false, fmt.Errorf("put schedule %s: %w", def.Name, err)
		} else if n == 0 {
			return false, fmt.Errorf("%w: %q", task.ErrQueueNotFound, def.Queue)
		}
		if err := s.deleteIn(ctx, def.Name, old); err != nil {
			return false, err
		}
	}
	nextArg, want, paused := "", "", "0"
	if !next.IsZero() {
		nextArg = strconv.FormatInt(clock.Millis(next), 10)
	}
	if expect != 0 {
		want = strconv.FormatInt(expect, 10)
	}
	if def.Paused {
		paused = "1"
	}
	v, err := s.run(ctx, s.sc.schedulePut, k.Partition,
		[]string{s.keys.Schedule(k.Partition, def.Name), s.keys.Schedules(k.Partition), k.Meta},
		def.Name, string(b), nextArg, paused, want, s.keys.ScheduleChannel(), k.Partition)
	if err != nil {
		return false, fmt.Errorf("put schedule %s: %w", def.Name, err)
	}
	rd := newReader("schedule_put", v)
	st := rd.str()
	switch st {
	case "noqueue":
		return false, fmt.Errorf("%w: %q", task.ErrQueueNotFound, def.Queue)
	case "stale":
		return false, fmt.Errorf("%w: %q", ErrScheduleChanged, def.Name)
	case "created", "updated":
	default:
		if rd.err != nil {
			return false, fmt.Errorf("put schedule %s: %w", def.Name, rd.err)
		}
		return false, badReply("schedule_put status", st)
	}
	if old != def.Queue {
		if err := s.rdb.ZAdd(ctx, s.keys.ScheduleNames(), redis.Z{Member: nameMember(def.Name, def.Queue)}).Err(); err != nil {
			return false, fmt.Errorf("index schedule %s: %w", def.Name, err)
		}
	}
	return st == "created" && old == "", nil
}

// deleteIn removes a schedule from queue's partition and the names index.
func (s *Store) deleteIn(ctx context.Context, name, queue string) error {
	p := task.Partition(queue)
	if _, err := s.run(ctx, s.sc.scheduleDelete, p, []string{s.keys.Schedule(p, name), s.keys.Schedules(p)}, name); err != nil {
		return fmt.Errorf("delete schedule %s: %w", name, err)
	}
	if err := s.rdb.ZRem(ctx, s.keys.ScheduleNames(), nameMember(name, queue)).Err(); err != nil {
		return fmt.Errorf("unindex schedule %s: %w", name, err)
	}
	return nil
}

// DeleteSchedule removes a schedule. The tasks it created stay.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	q, err := s.scheduleQueue(ctx, name)
	if err != nil {
		return err
	}
	return s.deleteIn(ctx, name, q)
}

var scheduleFields = []string{"def", "ver", "next", "lt", "la"}

// scheduleState reads an HMGET of scheduleFields; nil when the hash is gone.
func scheduleState(vals []any) (*ScheduleState, error) {
	def, _ := vals[0].(string)
	if def == "" {
		return nil, nil
	}
	st := &ScheduleState{Def: new(recur.Schedule)}
	if err := json.Unmarshal([]byte(def), st.Def); err != nil {
		return nil, fmt.Errorf("decode schedule: %w", err)
	}
	str := func(i int) string { v, _ := vals[i].(string); return v }
	st.Version, _ = strconv.ParseInt(str(1), 10, 64)
	st.NextMs = str(2)
	st.Next = msTime(st.NextMs)
	st.LastTask = str(3)
	st.LastAt = msTime(str(4))
	return st, nil
}

// GetSchedule reads a schedule.
func (s *Store) GetSchedule(ctx context.Context, name string) (*ScheduleState, error) {
	q, err := s.scheduleQueue(ctx, name)
	if err != nil {
		return nil, err
	}
	p := task.Partition(q)
	vals, err := s.rdb.HMGet(ctx, s.keys.Schedule(p, name), scheduleFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", name, err)
	}
	st, err := scheduleState(vals)
	if err != nil {
		return nil, fmt.Errorf("schedule %s: %w", name, err)
	}
	if st == nil {
		return nil, fmt.Errorf("%w: %q", ErrScheduleNotFound, name)
	}
	return st, nil
}

// ListSchedules returns up to limit schedules whose names sort after
// after, and whether more follow.
func (s *Store) ListSchedules(ctx context.Context, after string, limit int) ([]*ScheduleState, bool, error) {
	lo := "-"
	if after != "" {
		lo = "[" + after + "\x0b"
	}
	members, err := s.rdb.ZRangeByLex(ctx, s.keys.ScheduleNames(), &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(limit + 1)}).Result()
	if err != nil {
		return nil, false, fmt.Errorf("list schedules: %w", err)
	}
	more := len(members) > limit
	if more {
		members = members[:limit]
	}
	if len(members) == 0 {
		return nil, false, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(members))
	for i, m := range members {
		name, q, _ := strings.Cut(m, "\n")
		cmds[i] = pipe.HMGet(ctx, s.keys.Schedule(task.Partition(q), name), scheduleFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("list schedules: %w", err)
	}
	out := make([]*ScheduleState, 0, len(members))
	for _, c := range cmds {
		st, err := scheduleState(c.Val())
		if err != nil {
			return nil, false, err
		}
		if st != nil { // deleted meanwhile
			out = append(out, st)
		}
	}
	return out, more, nil
}

// DueBatch is what DueSchedules read of one partition.
type DueBatch struct {
	Partition int
	States    []*ScheduleState // by next instant, earliest first
	Err       error            // the partition could not be read: fire none of it
}

// DueSchedules reads, for each partition of parts, up to limit schedules
// whose next instant is at or before now plus ahead (the scheduler reads
// the schedules coming due a little ahead of their instant, to fire them
// at it), in one round trip for the partitions' indexes and one for the
// schedules. A partition that cannot be read has its Err set; err is set
// only when nothing could be read.
func (s *Store) DueSchedules(ctx context.Context, parts []int, limit int, ahead time.Duration) ([]DueBatch, error) {
	out := make([]DueBatch, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	upTo := strconv.FormatInt(s.nowMs()+ahead.Milliseconds(), 10)
	pipe := s.rdb.Pipeline()
	idx := make([]*redis.StringSliceCmd, len(parts))
	for i, p := range parts {
		out[i].Partition = p
		idx[i] = pipe.ZRangeByScore(ctx, s.keys.Schedules(p), &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil && allFailed(idx) {
		return nil, fmt.Errorf("read schedule indexes: %w", err)
	}
	pipe = s.rdb.Pipeline()
	cmds := make([][]*redis.SliceCmd, len(parts))
	for i, p := range parts {
		names, err := idx[i].Result()
		if err != nil {
			out[i].Err = fmt.Errorf("read schedule index of partition %d: %w", p, err)
			continue
		}
		for _, name := range names {
			cmds[i] = append(cmds[i], pipe.HMGet(ctx, s.keys.Schedule(p, name), scheduleFields...))
		}
	}
	if pipe.Len() == 0 {
		return out, nil
	}
	_, _ = pipe.Exec(ctx) // each command's error is its partition's
	for i, p := range parts {
		for _, c := range cmds[i] {
			vals, err := c.Result()
			var st *ScheduleState
			if err == nil {
				st, err = scheduleState(vals)
			}
			if err != nil {
				out[i].States, out[i].Err = nil, fmt.Errorf("read due schedules of partition %d: %w", p, err)
				break
			}
			if st != nil { // deleted meanwhile
				out[i].States = append(out[i].States, st)
			}
		}
	}
	return out, nil
}

// allFailed reports whether every command of a pipeline failed.
func allFailed[C interface{ Err() error }](cmds []C) bool {
	for _, c := range cmds {
		if c.Err() == nil {
			return false
		}
	}
	return true
}

// Occurrence is one run of a schedule to create.
type Occurrence struct {
	At   time.Time  // the scheduled instant
	Due  time.Time  // when the task may run (At, or later with jitter)
	Spec *task.Spec // the task
	Key  string     // its idempotency key
}

// Fire asks FireSchedule to create the tasks of a schedule's occurrences.
type Fire struct {
	State   *ScheduleState // as read; its version and next instant must still hold
	Trigger bool           // a manual run: no compare and set, the next instant stays
	NewNext time.Time      // the next instant after these (zero: the schedule has ended)
	Occ     []Occurrence
	Window  time.Duration // how long the occurrences' idempotency keys are kept
}

// Fire outcomes, one per occurrence.
const (
	FireFired   = "fired"   // a task was created
	FireExisted = "existed" // an earlier fire of this occurrence created its task
	FireSkipped = "skipped" // overlap skip: the last task still waits or runs
	FireFull    = "full"    // the queue's backlog is full
	FireNoQueue = "noqueue" // the queue is gone
)

// FireOutcome is what became of one occurrence.
type FireOutcome struct {
	Outcome string
	TaskID  string
}

// FireSchedule runs lua/schedule_fire.lua: it creates the occurrences'
// tasks and advances the schedule, in one script. ErrScheduleChanged means
// another scheduler fired it, or it was changed, since it was read;
// ErrScheduleNotFound that it was deleted.
func (s *Store) FireSchedule(ctx context.Context, f *Fire) ([]FireOutcome, error) {
	c, err := s.PrepareFire(f)
	if err != nil {
		return nil, err
	}
	r := s.FireMany(ctx, []*FireCall{c})[0]
	return r.Outcomes, r.Err
}

// FireCall is a call of lua/schedule_fire.lua prepared ahead of its time
// (PrepareFire): everything is encoded but the time of the call, which
// FireMany takes when it sends it.
type FireCall struct {
	name string
	part int
	occ  int
	keys []string
	args []any // args[fireNowArg] is set by FireMany
}

// fireNowArg is the index of "now" in a FireCall's arguments (ARGV[3]).
const fireNowArg = 2

// PrepareFire encodes a FireSchedule call, to be sent by FireMany.
func (s *Store) PrepareFire(f *Fire) (*FireCall, error) {
	def := f.State.Def
	k := s.keys.Queue(def.Queue)
	window := max(f.Window.Milliseconds(), 1)
	wantVer, newNext := "", ""
	if !f.Trigger {
		wantVer = strconv.FormatInt(f.State.Version, 10)
		if !f.NewNext.IsZero() {
			newNext = strconv.FormatInt(clock.Millis(f.NewNext), 10)
		}
	}
	args := make([]any, 0, 13+4*len(f.Occ))
	args = append(args, k.Tag, def.Queue, nil, partHex(k.Partition), k.Partition, s.keys.ScheduleChannel(), window,
		def.Name, wantVer, f.State.NextMs, newNext, def.Overlap, len(f.Occ))
	for _, o := range f.Occ {
		b, err := json.Marshal(o.Spec)
		if err != nil {
			return nil, fmt.Errorf("encode spec of schedule %s: %w", def.Name, err)
		}
		args = append(args, clock.Millis(o.At), clock.Millis(o.Due), string(b), o.Key)
	}
	return &FireCall{
		name: def.Name, part: k.Partition, occ: len(f.Occ), args: args,
		keys: []string{s.keys.Schedule(k.Partition, def.Name), s.keys.Schedules(k.Partition), k.Meta, k.Stream,
			k.Delayed, k.Timers, k.Ready, k.Seq, k.Lease},
	}, nil
}

// FireResult is what became of one FireCall: an outcome per occurrence, or
// the error FireSchedule would have returned.
type FireResult struct {
	Outcomes []FireOutcome
	Err      error
}

// FireMany sends prepared fire calls in one pipeline (so that many
// schedules due at one instant cost one round trip, not one each), with
// the time taken now: an occurrence whose due time is not yet reached by
// then is delayed, not queued. Each call succeeds or fails on its own.
func (s *Store) FireMany(ctx context.Context, calls []*FireCall) []FireResult {
	now := s.nowMs()
	batch := make([]*batchCall, len(calls))
	for i, c := range calls {
		args := slices.Clone(c.args)
		args[fireNowArg] = now
		batch[i] = &batchCall{ctx: ctx, script: s.variant(s.sc.scheduleFire), keys: c.keys, args: args}
	}
	s.group.exec(batch)
	out := make([]FireResult, len(calls))
	for i, c := range calls {
		v, err := s.reply(s.sc.scheduleFire, c.part, batch[i].res, batch[i].err)
		if err != nil {
			out[i].Err = fmt.Errorf("fire schedule %s: %w", c.name, err)
			continue
		}
		out[i].Outcomes, out[i].Err = fireOutcomes(c, v)
	}
	return out
}

// fireOutcomes reads the reply of one fire call.
func fireOutcomes(c *FireCall, v any) ([]FireOutcome, error) {
	rd := newReader("schedule_fire", v)
	switch st := rd.str(); st {
	case "stale":
		return nil, fmt.Errorf("%w: %q", ErrScheduleChanged, c.name)
	case "gone":
		return nil, fmt.Errorf("%w: %q", ErrScheduleNotFound, c.name)
	case "ok":
	default:
		if rd.err != nil {
			return nil, fmt.Errorf("fire schedule %s: %w", c.name, rd.err)
		}
		return nil, badReply("schedule_fire status", st)
	}
	if rd.err == nil && rd.left() != 2*c.occ {
		return nil, fmt.Errorf("%w: schedule_fire: %d values for %d occurrences", ErrBadReply, rd.left(), c.occ)
	}
	out := make([]FireOutcome, c.occ)
	for i := range out {
		out[i] = FireOutcome{Outcome: rd.str(), TaskID: rd.str()}
	}
	if rd.err != nil {
		return nil, fmt.Errorf("fire schedule %s: %w", c.name, rd.err)
	}
	return out, nil
}
