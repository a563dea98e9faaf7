package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// TaskInfo is what is known of one task.
type TaskInfo struct {
	ID              string
	Queue           string
	State           task.State
	Spec            *task.Spec
	Attempts        int   // attempts in the current run
	K               int64 // variable tasks: calls since added or reset
	RunAt           time.Time
	LastStatus      int
	LastError       string
	History         []AttemptRecord
	Updated         time.Time
	Finished        time.Time
	CancelRequested bool
}

type taskReads struct {
	spec  *redis.StringCmd
	state *redis.MapStringStringCmd
}

func (s *Store) readTask(ctx context.Context, p redis.Pipeliner, id string) (*taskReads, error) {
	part, err := task.IDPartition(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", task.ErrTaskNotFound, err)
	}
	return &taskReads{spec: p.Get(ctx, s.keys.Spec(part, id)), state: p.HGetAll(ctx, s.keys.State(part, id))}, nil
}

func (r *taskReads) info(id string) (*TaskInfo, error) {
	raw, err := r.spec.Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", task.ErrTaskNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	q, spec, err := task.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	ti := &TaskInfo{ID: id, Queue: q, Spec: spec}
	m := r.state.Val()
	ti.State = task.State(m["st"])
	ti.Attempts, _ = strconv.Atoi(m["a"])
	if k, ok := m["k"]; ok {
		ti.K, _ = strconv.ParseInt(k, 10, 64)
	} else {
		ti.K = spec.StartK // no call yet: the count it was created with
	}
	ti.LastStatus, _ = strconv.Atoi(m["sc"])
	ti.LastError = m["err"]
	ti.CancelRequested = m["cx"] == "1"
	ti.RunAt = msTime(m["rt"])
	ti.Updated = msTime(m["ts"])
	ti.Finished = msTime(m["fin"])
	for line := range strings.SplitSeq(m["h"], "\n") {
		if line == "" {
			continue
		}
		var a AttemptRecord
		if jsonUnmarshal(line, &a) == nil {
			ti.History = append(ti.History, a)
		}
	}
	return ti, nil
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return clock.FromMillis(ms)
}

// GetTask returns one task.
func (s *Store) GetTask(ctx context.Context, id string) (*TaskInfo, error) {
	infos, err := s.tasks(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("%w: %s", task.ErrTaskNotFound, id)
	}
	return infos[0], nil
}

// tasks reads several tasks, skipping those that no longer exist, and
// settles the state of tasks that have no state hash yet (never called):
// scheduled when in their queue's delayed set, else queued.
func (s *Store) tasks(ctx context.Context, ids []string) ([]*TaskInfo, error) {
	p := s.rdb.Pipeline()
	reads := make([]*taskReads, len(ids))
	for i, id := range ids {
		r, err := s.readTask(ctx, p, id)
		if err != nil {
			if len(ids) == 1 {
				return nil, err
			}
			continue
		}
		reads[i] = r
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get tasks: %w", err)
	}
	out := make([]*TaskInfo, 0, len(ids))
	var unsettled []*TaskInfo
	for i, id := range ids {
		if reads[i] == nil {
			continue
		}
		ti, err := reads[i].info(id)
		if errors.Is(err, task.ErrTaskNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ti.State == "" {
			unsettled = append(unsettled, ti)
		}
		out = append(out, ti)
	}
	if len(unsettled) > 0 {
		p := s.rdb.Pipeline()
		scores := make([]*redis.FloatCmd, len(unsettled))
		for i, ti := range unsettled {
			scores[i] = p.ZScore(ctx, s.keys.Queue(ti.Queue).Delayed, ti.ID)
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("get tasks: %w", err)
		}
		for i, ti := range unsettled {
			if due, err := scores[i].Result(); err == nil {
				ti.State, ti.RunAt = task.StateScheduled, clock.FromMillis(int64(due))
			} else {
				ti.State = task.StateQueued
			}
		}
	}
	return out, nil
}

// CancelResult says what CancelTask did.
type CancelResult string

// Cancel results; see lua/cancel.lua.
const (
	Cancelled  CancelResult = "cancelled"  // it will never run
	Cancelling CancelResult = "cancelling" // it is running; it will not run again
	Discarded  CancelResult = "deleted"    // a dead task was deleted
)

// CancelTask cancels a waiting or running task, or deletes a dead one.
// A cancelled task is kept for its queue's retention (retention is the
// fallback). Finished tasks give ErrTaskFinished.
func (s *Store) CancelTask(ctx context.Context, id string, retention time.Duration) (CancelResult, error) {
	part, err := task.IDPartition(id)
	if err != nil {
		return "", fmt.Errorf("%w: %w", task.ErrTaskNotFound, err)
	}
	v, err := s.run(ctx, s.sc.cancel, part, []string{s.keys.Spec(part, id), s.keys.State(part, id)},
		s.keys.Part(part), id, s.nowMs(), retention.Milliseconds())
	if err != nil {
		return "", err
	}
	rd := newReader("cancel", v)
	res := rd.str()
	var st string
	if res == "final" {
		st = rd.str()
	}
	if rd.err != nil {
		return "", rd.err
	}
	switch CancelResult(res) {
	case "notfound":
		return "", fmt.Errorf("%w: %s", task.ErrTaskNotFound, id)
	case "final":
		return "", fmt.Errorf("%w: %s is %s", task.ErrTaskFinished, id, st)
	case Cancelled, Cancelling, Discarded:
		return CancelResult(res), nil
	}
	return "", badReply("cancel status", res)
}

// ListTasks lists a queue's tasks in one state, up to limit, after a
// cursor (empty: from the start). It returns the next cursor, empty at the
// end. Queued and active tasks are listed in queue order, scheduled ones by
// due time, dead ones newest first.
func (s *Store) ListTasks(ctx context.Context, queue string, state task.State, cursor string, limit int) ([]*TaskInfo, string, error) {
	k := s.keys.Queue(queue)
	if n, err := s.rdb.Exists(ctx, k.Meta).Result(); err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	} else if n == 0 {
		return nil, "", fmt.Errorf("%w: %q", task.ErrQueueNotFound, queue)
	}
	var ids []string
	next := ""
	switch state {
	case task.StateScheduled, task.StateDead:
		off, _ := strconv.ParseInt(cursor, 10, 64)
		var err error
		if state == task.StateScheduled {
			ids, err = s.rdb.ZRange(ctx, k.Delayed, off, off+int64(limit)-1).Result()
		} else {
			ids, err = s.rdb.ZRevRange(ctx, k.Dead, off, off+int64(limit)-1).Result()
		}
		if err != nil {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		if len(ids) == limit {
			next = strconv.FormatInt(off+int64(limit), 10)
		}
	case task.StateActive:
		pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: k.Stream, Group: group, Start: "-", End: "+", Count: 1000}).Result()
		if err != nil && !isBenign(err) {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		p := s.rdb.Pipeline()
		cmds := make([]*redis.XMessageSliceCmd, len(pend))
		for i, e := range pend {
			cmds[i] = p.XRange(ctx, k.Stream, e.ID, e.ID)
		}
		if len(pend) > 0 {
			if _, err := p.Exec(ctx); err != nil {
				return nil, "", fmt.Errorf("list tasks: %w", err)
			}
		}
		for _, c := range cmds {
			for _, m := range c.Val() {
				ids = append(ids, fmt.Sprint(m.Values["t"]))
			}
		}
		ids = ids[:min(len(ids), limit)] // at most the queue's concurrency: one page
	case task.StateQueued:
		start := "-"
		groups, err := s.rdb.XInfoGroups(ctx, k.Stream).Result()
		if err != nil && !isBenign(err) {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		for _, g := range groups {
			if g.Name == group && g.LastDeliveredID != "0-0" {
				start = "(" + g.LastDeliveredID
			}
		}
		if cursor != "" && (start == "-" || streamIDLess(start[1:], cursor)) {
			start = "(" + cursor
		}
		msgs, err := s.rdb.XRangeN(ctx, k.Stream, start, "+", int64(limit)).Result()
		if err != nil {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		for _, m := range msgs {
			ids = append(ids, fmt.Sprint(m.Values["t"]))
		}
		if len(msgs) == limit {
			next = msgs[len(msgs)-1].ID
		}
	default:
		return nil, "", fmt.Errorf("%w: state %q cannot be listed", task.ErrBadQueue, state)
	}
	infos, err := s.tasks(ctx, ids)
	return infos, next, err
}

// streamIDLess compares two stream ids "ms-seq".
func streamIDLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	ami, _ := strconv.ParseUint(am, 10, 64)
	bmi, _ := strconv.ParseUint(bm, 10, 64)
	if ami != bmi {
		return ami < bmi
	}
	asi, _ := strconv.ParseUint(as, 10, 64)
	bsi, _ := strconv.ParseUint(bs, 10, 64)
	return asi < bsi
}

// RetryTask puts a dead or cancelled task back at the tail of its queue.
func (s *Store) RetryTask(ctx context.Context, id string) error {
	part, err := task.IDPartition(id)
	if err != nil {
		return fmt.Errorf("%w: %w", task.ErrTaskNotFound, err)
	}
	v, err := s.run(ctx, s.sc.retry, part, []string{s.keys.Spec(part, id), s.keys.State(part, id)},
		s.keys.Part(part), id, s.nowMs())
	if err != nil {
		return err
	}
	rd := newReader("retry", v)
	res := rd.str()
	var st string
	if res == "state" {
		st = rd.str()
	}
	if rd.err != nil {
		return rd.err
	}
	switch res {
	case "ok":
		return nil
	case "notfound":
		return fmt.Errorf("%w: %s", task.ErrTaskNotFound, id)
	case "noqueue":
		return fmt.Errorf("%w: the queue of task %s was deleted", task.ErrQueueNotFound, id)
	case "state":
		return fmt.Errorf("%w: %s is %s", task.ErrTaskNotDead, id, st)
	}
	return badReply("retry status", res)
}
