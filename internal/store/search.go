package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/task"
)

// TaskFilter narrows a list of tasks. The zero value matches every task.
type TaskFilter struct {
	// ID, when set, is the one task wanted: it is looked up directly, and
	// Since and Until are not applied.
	ID string
	// URL, when set, is a substring the task's URL must contain.
	URL string
	// Code, when not 0, is the HTTP status the task's last answer must have.
	Code int
	// Since and Until (inclusive; zero: open) bound the time the list is
	// ordered by: the due time of scheduled tasks, the time a queued or
	// active task entered its queue's stream, the time of death of a dead
	// one.
	Since, Until time.Time
}

// Empty reports whether f matches every task.
func (f *TaskFilter) Empty() bool {
	return f.ID == "" && f.URL == "" && f.Code == 0 && f.Since.IsZero() && f.Until.IsZero()
}

// SearchBudget bounds how many index entries one search call examines:
// a search whose matches are rare returns a short (even empty) page with a
// next cursor rather than scanning a whole queue in one request.
const SearchBudget = 2000

// searchChunk is how many candidates one round trip examines.
const searchChunk = 250

// candidate is an index entry a search examines: a task id, the time the
// index orders it by (ms) and the cursor that resumes after it.
type candidate struct {
	id   string
	ms   int64
	next string
}

// SearchTasks lists a queue's tasks in one state that match f, up to
// limit, after a cursor (empty: from the start). State retrying lists the
// tasks held for their next attempt: at the head of a strict queue (all of
// them on the first page) and then those of a relaxed queue waiting in its
// delayed set. At most SearchBudget index entries are examined per call,
// so a page may hold fewer than limit tasks and still have a next cursor;
// the cursor is empty once the index is exhausted. Cursors have the forms
// ListTasks uses (a stream id for queued, an offset otherwise).
func (s *Store) SearchTasks(ctx context.Context, queue string, state task.State, f TaskFilter, cursor string, limit int) ([]*TaskInfo, string, error) {
	k := s.keys.Queue(queue)
	if n, err := s.rdb.Exists(ctx, k.Meta).Result(); err != nil {
		return nil, "", fmt.Errorf("search tasks: %w", err)
	} else if n == 0 {
		return nil, "", fmt.Errorf("%w: %q", task.ErrQueueNotFound, queue)
	}
	if f.ID != "" {
		ti, err := s.findOne(ctx, queue, state, &f)
		if err != nil || ti == nil {
			return nil, "", err
		}
		return []*TaskInfo{ti}, "", nil
	}
	var fetch func(cursor string, n int) ([]candidate, error)
	switch state {
	case task.StateScheduled, task.StateDead:
		key := k.Delayed
		if state == task.StateDead {
			key = k.Dead
		}
		fetch = func(cursor string, n int) ([]candidate, error) {
			return s.zsetCandidates(ctx, key, state == task.StateDead, &f, cursor, n)
		}
	case task.StateQueued:
		fetch = func(cursor string, n int) ([]candidate, error) { return s.queuedCandidates(ctx, k, &f, cursor, n) }
	case task.StateActive:
		fetch = func(cursor string, _ int) ([]candidate, error) {
			if cursor != "" {
				return nil, nil
			}
			return s.activeCandidates(ctx, k, &f)
		}
	case task.StateRetrying:
		fetch = func(cursor string, n int) ([]candidate, error) {
			var out []candidate
			if cursor == "" {
				act, err := s.activeCandidates(ctx, k, &f)
				if err != nil {
					return nil, err
				}
				for i := range act {
					act[i].next = "0" // resumes at the start of the delayed set
				}
				out = act
				cursor = "0"
			}
			more, err := s.zsetCandidates(ctx, k.Delayed, false, &f, cursor, n)
			return append(out, more...), err
		}
	default:
		return nil, "", fmt.Errorf("%w: state %q cannot be searched", task.ErrBadQueue, state)
	}
	return s.scan(ctx, state, &f, fetch, cursor, limit)
}

// scan examines candidates chunk by chunk until the page is full, the
// index ends or the budget is spent.
func (s *Store) scan(ctx context.Context, state task.State, f *TaskFilter, fetch func(string, int) ([]candidate, error), cursor string, limit int) ([]*TaskInfo, string, error) {
	var out []*TaskInfo
	examined := 0
	for examined < SearchBudget {
		n := min(searchChunk, SearchBudget-examined)
		if f.URL == "" && f.Code == 0 && state != task.StateRetrying {
			n = min(n, limit-len(out)) // every candidate matches
		}
		cands, err := fetch(cursor, n)
		if err != nil {
			return nil, "", err
		}
		examined += max(len(cands), 1)
		matched, err := s.matching(ctx, state, f, cands)
		if err != nil {
			return nil, "", err
		}
		var ids []string
		last := -1
		for i, c := range cands {
			if matched[i] {
				if len(out)+len(ids) == limit {
					break
				}
				ids = append(ids, c.id)
			}
			last = i
		}
		infos, err := s.tasks(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		out = append(out, infos...)
		if last >= 0 {
			cursor = cands[last].next
		}
		if last < len(cands)-1 { // page full before the chunk's end
			return out, cursor, nil
		}
		if len(cands) < n || cursor == "" { // the index ended
			return out, "", nil
		}
		if len(out) == limit {
			return out, cursor, nil
		}
	}
	return out, cursor, nil
}

// matching reads what f (and state retrying) needs of each candidate and
// says which match. Tasks gone meanwhile do not match.
func (s *Store) matching(ctx context.Context, state task.State, f *TaskFilter, cands []candidate) ([]bool, error) {
	ok := make([]bool, len(cands))
	needSpec, needState := f.URL != "", f.Code != 0 || state == task.StateRetrying
	if !needSpec && !needState {
		for i := range ok {
			ok[i] = true
		}
		return ok, nil
	}
	p := s.rdb.Pipeline()
	specs := make([]*redis.StringCmd, len(cands))
	states := make([]*redis.SliceCmd, len(cands))
	for i, c := range cands {
		part, err := task.IDPartition(c.id)
		if err != nil {
			continue
		}
		if needSpec {
			specs[i] = p.Get(ctx, s.keys.Spec(part, c.id))
		}
		if needState {
			states[i] = p.HMGet(ctx, s.keys.State(part, c.id), "st", "sc")
		}
	}
	if len(cands) > 0 {
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("search tasks: %w", err)
		}
	}
	for i := range cands {
		if (needSpec && specs[i] == nil) || (needState && states[i] == nil) {
			continue
		}
		if needSpec {
			raw, err := specs[i].Result()
			if err != nil {
				continue
			}
			_, spec, err := task.Decode(raw)
			if err != nil || !strings.Contains(spec.URL, f.URL) {
				continue
			}
		}
		if needState {
			v := states[i].Val()
			st, _ := v[0].(string)
			sc, _ := v[1].(string)
			if state == task.StateRetrying && st != string(task.StateRetrying) {
				continue
			}
			if f.Code != 0 && sc != strconv.Itoa(f.Code) {
				continue
			}
		}
		ok[i] = true
	}
	return ok, nil
}

// zsetCandidates reads up to n entries of a delayed or dead set within
// f's time bounds, after offset cursor (ascending, or descending: newest
// first).
func (s *Store) zsetCandidates(ctx context.Context, key string, desc bool, f *TaskFilter, cursor string, n int) ([]candidate, error) {
	off, _ := strconv.ParseInt(cursor, 10, 64)
	lo, hi := "-inf", "+inf"
	if !f.Since.IsZero() {
		lo = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	if !f.Until.IsZero() {
		hi = strconv.FormatInt(f.Until.UnixMilli(), 10)
	}
	a := redis.ZRangeArgs{Key: key, Start: lo, Stop: hi, ByScore: true, Rev: desc, Offset: off, Count: int64(n)}
	if desc {
		a.Start, a.Stop = hi, lo
	}
	zs, err := s.rdb.ZRangeArgsWithScores(ctx, a).Result()
	if err != nil {
		return nil, fmt.Errorf("search tasks: %w", err)
	}
	out := make([]candidate, len(zs))
	for i, z := range zs {
		id, _ := z.Member.(string)
		out[i] = candidate{id: id, ms: int64(z.Score), next: strconv.FormatInt(off+int64(i)+1, 10)}
	}
	return out, nil
}

// queuedCandidates reads up to n undelivered stream entries within f's
// time bounds, after stream id cursor.
func (s *Store) queuedCandidates(ctx context.Context, k QueueKeys, f *TaskFilter, cursor string, n int) ([]candidate, error) {
	start := "-"
	groups, err := s.rdb.XInfoGroups(ctx, k.Stream).Result()
	if err != nil && !isBenign(err) {
		return nil, fmt.Errorf("search tasks: %w", err)
	}
	for _, g := range groups {
		if g.Name == group && g.LastDeliveredID != "0-0" {
			start = "(" + g.LastDeliveredID
		}
	}
	if cursor != "" && (start == "-" || streamIDLess(start[1:], cursor)) {
		start = "(" + cursor
	}
	if !f.Since.IsZero() {
		since := strconv.FormatInt(max(0, f.Since.UnixMilli()), 10) + "-0"
		if start == "-" || streamIDLess(start[1:], since) {
			start = since
		}
	}
	end := "+"
	if !f.Until.IsZero() {
		if f.Until.UnixMilli() < 0 {
			return nil, nil
		}
		end = strconv.FormatInt(f.Until.UnixMilli(), 10)
	}
	msgs, err := s.rdb.XRangeN(ctx, k.Stream, start, end, int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("search tasks: %w", err)
	}
	out := make([]candidate, len(msgs))
	for i, m := range msgs {
		ms, _ := strconv.ParseInt(strings.SplitN(m.ID, "-", 2)[0], 10, 64)
		out[i] = candidate{id: fmt.Sprint(m.Values["t"]), ms: ms, next: m.ID}
	}
	return out, nil
}

// activeCandidates reads every delivered, unacknowledged entry (at most
// 1000: a queue's concurrency) within f's time bounds.
func (s *Store) activeCandidates(ctx context.Context, k QueueKeys, f *TaskFilter) ([]candidate, error) {
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: k.Stream, Group: group, Start: "-", End: "+", Count: 1000}).Result()
	if err != nil && !isBenign(err) {
		return nil, fmt.Errorf("search tasks: %w", err)
	}
	if len(pend) == 0 {
		return nil, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(pend))
	for i, e := range pend {
		cmds[i] = p.XRange(ctx, k.Stream, e.ID, e.ID)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("search tasks: %w", err)
	}
	var out []candidate
	for _, c := range cmds {
		for _, m := range c.Val() {
			ms, _ := strconv.ParseInt(strings.SplitN(m.ID, "-", 2)[0], 10, 64)
			if (!f.Since.IsZero() && ms < f.Since.UnixMilli()) || (!f.Until.IsZero() && ms > f.Until.UnixMilli()) {
				continue
			}
			out = append(out, candidate{id: fmt.Sprint(m.Values["t"]), ms: ms})
		}
	}
	return out, nil
}

// findOne looks one task up by id and returns it when it is in queue, in
// state (as the list of that state would show it) and has f.Code; else nil.
func (s *Store) findOne(ctx context.Context, queue string, state task.State, f *TaskFilter) (*TaskInfo, error) {
	ti, err := s.GetTask(ctx, f.ID)
	if errors.Is(err, task.ErrTaskNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ti.Queue != queue || (f.Code != 0 && ti.LastStatus != f.Code) {
		return nil, nil
	}
	if f.URL != "" && !strings.Contains(ti.Spec.URL, f.URL) {
		return nil, nil
	}
	k := s.keys.Queue(queue)
	switch state {
	case task.StateScheduled, task.StateDead:
		key := k.Delayed
		if state == task.StateDead {
			key = k.Dead
		}
		if err := s.rdb.ZScore(ctx, key, ti.ID).Err(); errors.Is(err, redis.Nil) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("search tasks: %w", err)
		}
		return ti, nil
	case task.StateRetrying:
		if ti.State == task.StateRetrying {
			return ti, nil
		}
	case task.StateActive:
		if ti.State == task.StateActive || ti.State == task.StateRetrying {
			// a relaxed queue's retrying task waits in the delayed set
			if err := s.rdb.ZScore(ctx, k.Delayed, ti.ID).Err(); errors.Is(err, redis.Nil) {
				return ti, nil
			} else if err != nil {
				return nil, fmt.Errorf("search tasks: %w", err)
			}
		}
	case task.StateQueued:
		if ti.State == task.StateQueued {
			return ti, nil
		}
	}
	return nil, nil
}
