package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/task"
)

// ErrBadCursor reports a cursor no page can have returned.
var ErrBadCursor = errors.New("bad cursor")

// deadCursor is a position in the list of dead letters across queues:
// queues go by partition, then by name; letters within a queue newest
// first, off being the offset into the queue's dead set (within the
// filter's time bounds).
type deadCursor struct {
	part  int
	queue string
	off   int64
}

// String encodes c as "<partition>.<offset>.<base64url queue>".
func (c deadCursor) String() string {
	return strconv.Itoa(c.part) + "." + strconv.FormatInt(c.off, 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(c.queue))
}

func parseDeadCursor(s string) (deadCursor, error) {
	if s == "" {
		return deadCursor{}, nil
	}
	ps, rest, ok1 := strings.Cut(s, ".")
	os, qs, ok2 := strings.Cut(rest, ".")
	p, err1 := strconv.Atoi(ps)
	off, err2 := strconv.ParseInt(os, 10, 64)
	q, err3 := base64.RawURLEncoding.DecodeString(qs)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil || p < 0 || p >= task.Partitions || off < 0 || task.ValidateQueueName(string(q)) != nil {
		return deadCursor{}, fmt.Errorf("%w: %q", ErrBadCursor, s)
	}
	return deadCursor{part: p, queue: string(q), off: off}, nil
}

// CheckDeadCursor reports whether s can be a cursor of ListDead across
// queues.
func CheckDeadCursor(s string) error {
	_, err := parseDeadCursor(s)
	return err
}

// deadQueues returns the names of the queues of partition p that may hold
// dead letters (its deadq index), sorted.
func (s *Store) deadQueues(ctx context.Context, p int) ([]string, error) {
	qs, err := s.rdb.ZRange(ctx, s.keys.DeadQueues(p), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	slices.Sort(qs)
	return qs, nil
}

// busyPartitions returns the partitions, from first on, whose deadq index
// is not empty: one round trip for all of them.
func (s *Store) busyPartitions(ctx context.Context, first int) ([]int, error) {
	p := s.rdb.Pipeline()
	cards := make([]*redis.IntCmd, task.Partitions)
	for i := first; i < task.Partitions; i++ {
		cards[i] = p.ZCard(ctx, s.keys.DeadQueues(i))
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []int
	for i := first; i < task.Partitions; i++ {
		if cards[i].Val() > 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// ListDead lists dead letters matching f, up to limit, after cursor: of
// one queue (queue set: the cursor is that of SearchTasks) or across all
// queues (grouped by queue; the cursor is opaque, see deadCursor). Like
// SearchTasks it examines at most SearchBudget letters per call, so a page
// may be short and still have a next cursor.
func (s *Store) ListDead(ctx context.Context, queue string, f TaskFilter, cursor string, limit int) ([]*TaskInfo, string, error) {
	if queue != "" {
		return s.SearchTasks(ctx, queue, task.StateDead, f, cursor, limit)
	}
	cur, err := parseDeadCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if f.ID != "" {
		ti, err := s.GetTask(ctx, f.ID)
		if errors.Is(err, task.ErrTaskNotFound) || (err == nil && ti.State != task.StateDead) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		return s.ListDead(ctx, ti.Queue, f, "", limit)
	}
	parts, err := s.busyPartitions(ctx, cur.part)
	if err != nil {
		return nil, "", err
	}
	var out []*TaskInfo
	examined := 0
	for _, p := range parts {
		qs, err := s.deadQueues(ctx, p)
		if err != nil {
			return nil, "", err
		}
		for _, q := range qs {
			if p == cur.part && q < cur.queue {
				continue
			}
			off := int64(0)
			if p == cur.part && q == cur.queue {
				off = cur.off
			}
			k := s.keys.Queue(q)
			for examined < SearchBudget && len(out) < limit {
				n := min(searchChunk, SearchBudget-examined)
				if f.URL == "" && f.Code == 0 {
					n = min(n, limit-len(out))
				}
				cands, err := s.zsetCandidates(ctx, k.Dead, true, &f, strconv.FormatInt(off, 10), n)
				if err != nil {
					return nil, "", err
				}
				examined += max(len(cands), 1)
				matched, err := s.matching(ctx, task.StateDead, &f, cands)
				if err != nil {
					return nil, "", err
				}
				var ids []string
				for i, c := range cands {
					if matched[i] {
						if len(out)+len(ids) == limit {
							break
						}
						ids = append(ids, c.id)
					}
					off++
				}
				infos, err := s.tasks(ctx, ids)
				if err != nil {
					return nil, "", err
				}
				out = append(out, infos...)
				if len(cands) < n {
					break // this queue's letters ended
				}
			}
			if examined >= SearchBudget || len(out) == limit {
				return out, deadCursor{part: p, queue: q, off: off}.String(), nil
			}
		}
	}
	return out, "", nil
}

// CountBudget bounds the letters a count with a URL or status filter
// examines; past it the count is a lower bound.
const CountBudget = 50000

// CountDead counts dead letters matching f, of one queue or of all. With
// only time bounds it is exact and costs one command per queue that holds
// dead letters; with a URL or status filter it reads the letters, at most
// CountBudget of them, and exact is false when it stopped there.
func (s *Store) CountDead(ctx context.Context, queue string, f TaskFilter) (n int64, exact bool, err error) {
	if f.ID != "" {
		ts, _, err := s.ListDead(ctx, queue, f, "", 1)
		return int64(len(ts)), true, err
	}
	var queues []string
	if queue != "" {
		if n, err := s.rdb.Exists(ctx, s.keys.Queue(queue).Meta).Result(); err != nil {
			return 0, false, fmt.Errorf("count dead letters: %w", err)
		} else if n == 0 {
			return 0, false, fmt.Errorf("%w: %q", task.ErrQueueNotFound, queue)
		}
		queues = []string{queue}
	} else {
		parts, err := s.busyPartitions(ctx, 0)
		if err != nil {
			return 0, false, err
		}
		p := s.rdb.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(parts))
		for i, part := range parts {
			cmds[i] = p.ZRange(ctx, s.keys.DeadQueues(part), 0, -1)
		}
		if len(parts) > 0 {
			if _, err := p.Exec(ctx); err != nil {
				return 0, false, fmt.Errorf("count dead letters: %w", err)
			}
		}
		for _, c := range cmds {
			queues = append(queues, c.Val()...)
		}
	}
	lo, hi := "-inf", "+inf"
	if !f.Since.IsZero() {
		lo = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	if !f.Until.IsZero() {
		hi = strconv.FormatInt(f.Until.UnixMilli(), 10)
	}
	if f.URL == "" && f.Code == 0 {
		p := s.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(queues))
		for i, q := range queues {
			cmds[i] = p.ZCount(ctx, s.keys.Queue(q).Dead, lo, hi)
		}
		if len(queues) > 0 {
			if _, err := p.Exec(ctx); err != nil {
				return 0, false, fmt.Errorf("count dead letters: %w", err)
			}
		}
		for _, c := range cmds {
			n += c.Val()
		}
		return n, true, nil
	}
	examined := 0
	for _, q := range queues {
		key := s.keys.Queue(q).Dead
		for off := int64(0); ; {
			if examined >= CountBudget {
				return n, false, nil
			}
			cands, err := s.zsetCandidates(ctx, key, true, &f, strconv.FormatInt(off, 10), 1000)
			if err != nil {
				return 0, false, err
			}
			matched, err := s.matching(ctx, task.StateDead, &f, cands)
			if err != nil {
				return 0, false, err
			}
			for _, m := range matched {
				if m {
					n++
				}
			}
			examined += len(cands)
			off += int64(len(cands))
			if len(cands) < 1000 {
				break
			}
		}
	}
	return n, true, nil
}

// DeadAction is what a bulk call does to each dead letter.
type DeadAction int

// Bulk actions on dead letters.
const (
	DeadRetry  DeadAction = iota // run it again (RetryTask)
	DeadDelete                   // delete it (CancelTask on a dead task)
)

// bulkWorkers is how many scripts a bulk action runs at once.
const bulkWorkers = 8

// DeadBulk applies act to each of ids and returns how many were dead
// letters (matched) and how many it retried or deleted (done). Ids that are
// not dead letters, or gone, are skipped.
func (s *Store) DeadBulk(ctx context.Context, act DeadAction, ids []string) (matched, done int, err error) {
	infos, err := s.tasks(ctx, ids)
	if err != nil {
		return 0, 0, err
	}
	var dead []string
	for _, ti := range infos {
		if ti.State == task.StateDead {
			dead = append(dead, ti.ID)
		}
	}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan string)
	for range min(bulkWorkers, len(dead)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				var err error
				if act == DeadRetry {
					err = s.RetryTask(ctx, id)
				} else {
					_, err = s.CancelTask(ctx, id, 0)
				}
				mu.Lock()
				switch {
				case err == nil:
					done++
				case errors.Is(err, task.ErrTaskNotFound), errors.Is(err, task.ErrTaskNotDead),
					errors.Is(err, task.ErrTaskFinished), errors.Is(err, task.ErrQueueNotFound):
					// changed meanwhile: not done, not an error
				case firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range dead {
		next <- id
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return len(dead), done, fmt.Errorf("dead letters: %w", firstErr)
	}
	return len(dead), done, nil
}

// DeadBulkFilter applies act to up to limit dead letters matching f (of
// one queue or of all), and returns how many it found, how many it
// retried or deleted and how many matching letters remain (a lower bound
// when exact is false, see CountDead). Unlike a listing it is not bounded
// by SearchBudget: it reads on until it has found limit letters or read
// them all, so that repeated calls make progress.
func (s *Store) DeadBulkFilter(ctx context.Context, act DeadAction, queue string, f TaskFilter, limit int) (matched, done int, remaining int64, exact bool, err error) {
	var ids []string
	cursor := ""
	for len(ids) < limit {
		ts, next, err := s.ListDead(ctx, queue, f, cursor, limit-len(ids))
		if err != nil {
			return 0, 0, 0, false, err
		}
		for _, t := range ts {
			ids = append(ids, t.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	matched, done, err = s.DeadBulk(ctx, act, ids)
	if err != nil {
		return matched, done, 0, false, err
	}
	remaining, exact, err = s.CountDead(ctx, queue, f)
	return matched, done, remaining, exact, err
}
