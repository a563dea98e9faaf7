package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// Lease names the owner of a queue: the dispatcher's consumer name and the
// fencing epoch it got when it claimed the queue.
type Lease struct {
	Queue    string
	Consumer string
	Epoch    string
}

// Delivery is one stream entry handed to a dispatcher to call.
type Delivery struct {
	EntryID string
	TaskID  string
	Queue   string
	Spec    *task.Spec
	Seq     int64     // per-queue, grows with every delivery: the fencing token sent to targets
	Attempt int       // 1 for the first call (of this variable round)
	K       int64     // variable tasks: calls since added or reset
	Since   time.Time // when it became due again (variable rounds, retries); zero: see DueTime
	Err     error     // the stored spec could not be decoded
}

// ClaimStatus is the outcome of a claim.
type ClaimStatus string

// Claim outcomes; see lua/claim.lua.
const (
	ClaimOK     ClaimStatus = "ok"
	ClaimGone   ClaimStatus = "gone"
	ClaimPaused ClaimStatus = "paused"
	ClaimOwned  ClaimStatus = "owned"
	ClaimWait   ClaimStatus = "wait"
	ClaimEmpty  ClaimStatus = "empty"
)

// Claim is the result of trying to take a queue.
type Claim struct {
	Status     ClaimStatus
	Lease      Lease
	Config     task.QueueConfig
	Version    string
	Deliveries []Delivery
	Until      time.Time // ClaimWait: when to try again
}

// Claim tries to take ownership of a queue for consumer and deliver up to
// want entries.
func (s *Store) Claim(ctx context.Context, queue, consumer string, leaseTTL, grace time.Duration, want int) (*Claim, error) {
	k := s.keys.Queue(queue)
	v, err := s.run(ctx, "claim", []string{k.Meta, k.Stream, k.Lease, k.Ready, k.Epoch},
		k.Tag, queue, consumer, s.nowMs(), leaseTTL.Milliseconds(), grace.Milliseconds(), want)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", queue, err)
	}
	r, err := replyList(v)
	if err != nil || len(r) == 0 {
		return nil, fmt.Errorf("claim %s: unexpected reply %v", queue, v)
	}
	c := &Claim{Status: ClaimStatus(str(r[0]))}
	switch c.Status {
	case ClaimWait:
		c.Until = clock.FromMillis(i64(r[1]))
	case ClaimOK:
		if len(r) < 4 {
			return nil, fmt.Errorf("claim %s: short reply", queue)
		}
		c.Lease = Lease{Queue: queue, Consumer: consumer, Epoch: str(r[1])}
		if err := json.Unmarshal([]byte(str(r[2])), &c.Config); err != nil {
			return nil, fmt.Errorf("claim %s: decode config: %w", queue, err)
		}
		c.Version = str(r[3])
		c.Deliveries = decodeDeliveries(queue, r[4:])
	}
	return c, nil
}

// deliveryFields is the number of reply elements per delivery:
// eid, tid, spec, seq, attempt, k, since.
const deliveryFields = 7

func decodeDeliveries(queue string, r []any) []Delivery {
	out := make([]Delivery, 0, len(r)/deliveryFields)
	for i := 0; i+deliveryFields-1 < len(r); i += deliveryFields {
		d := Delivery{
			EntryID: str(r[i]), TaskID: str(r[i+1]), Queue: queue,
			Seq: i64(r[i+3]), Attempt: int(i64(r[i+4])), K: i64(r[i+5]),
		}
		if since := i64(r[i+6]); since > 0 {
			d.Since = clock.FromMillis(since)
		}
		_, d.Spec, d.Err = task.Decode(str(r[i+2]))
		out = append(out, d)
	}
	return out
}

// Outcome is what complete.lua does with a finished call.
type Outcome string

// Outcomes; see lua/complete.lua.
const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeDead      Outcome = "dead"
	OutcomeAgain     Outcome = "again"
	OutcomeRetry     Outcome = "retry"
	OutcomeHold      Outcome = "hold"
	OutcomeCancelled Outcome = "cancelled"
)

// Completion is the record of one finished call.
type Completion struct {
	Delivery   *Delivery
	Outcome    Outcome
	Retention  time.Duration // succeeded, dead, cancelled
	Due        time.Time     // again, retry, hold
	K          int64         // again: the variable task's new k
	SetK       bool
	Attempt    *AttemptRecord // nil: record nothing
	HistoryLen int
	Want       int  // entries to deliver next
	Extend     bool // extend the lease (every third of it is enough)
}

// AttemptRecord is one entry of a task's attempt history.
type AttemptRecord struct {
	At        int64  `json:"at"`         // start, Unix ms
	Attempt   int    `json:"attempt"`    // attempt number
	Status    int    `json:"status"`     // HTTP status, 0 when there was no response
	LatencyMs int64  `json:"latency_ms"` // call duration
	Error     string `json:"error,omitempty"`
	Body      string `json:"body,omitempty"` // first bytes of the response body
	Seq       int64  `json:"seq"`
}

// NextStatus says what complete.lua did after recording a call.
type NextStatus string

// Next statuses; see lua/complete.lua.
const (
	NextStale    NextStatus = "stale"
	NextEntries  NextStatus = "next"
	NextHeld     NextStatus = "held"
	NextIdle     NextStatus = "idle"
	NextReleased NextStatus = "released"
	NextRateWait NextStatus = "ratewait"
	NextPaused   NextStatus = "paused"
	NextGone     NextStatus = "gone"
	NextCanceled NextStatus = "cancelled"
)

// Next is the result of Complete and Reattempt.
type Next struct {
	Status     NextStatus
	Version    string
	Deliveries []Delivery
	Until      time.Time // NextRateWait
}

// Complete records a finished call and delivers the next entries, in one
// round trip.
func (s *Store) Complete(ctx context.Context, l Lease, leaseTTL time.Duration, c *Completion) (*Next, error) {
	k := s.keys.Queue(l.Queue)
	var when int64
	switch c.Outcome {
	case OutcomeSucceeded, OutcomeDead, OutcomeCancelled:
		when = c.Retention.Milliseconds()
	default:
		when = clock.Millis(c.Due)
		if c.Due.After(s.clock.Now()) {
			when = clock.Millis(clock.CeilMillis(c.Due)) // a later attempt never comes early
		}
	}
	kArg := ""
	if c.SetK {
		kArg = strconv.FormatInt(c.K, 10)
	}
	rec, status, errText := "", "", ""
	if c.Attempt != nil {
		b, err := json.Marshal(c.Attempt)
		if err != nil {
			return nil, fmt.Errorf("encode attempt: %w", err)
		}
		rec, status, errText = string(b), strconv.Itoa(c.Attempt.Status), c.Attempt.Error
	}
	v, err := s.runGrouped(ctx, "complete",
		[]string{k.Meta, k.Stream, k.Lease, k.Ready, k.Delayed, k.Timers, k.Dead},
		k.Tag, l.Queue, l.Consumer, l.Epoch, s.nowMs(), leaseTTL.Milliseconds(),
		c.Delivery.EntryID, c.Delivery.TaskID, string(c.Outcome), when, kArg, rec, c.HistoryLen, c.Want,
		s.keys.ScheduleChannel(), k.Partition, status, errText, boolArg(c.Extend))
	if err != nil {
		return nil, fmt.Errorf("complete %s: %w", l.Queue, err)
	}
	return parseNext(l.Queue, v)
}

func parseNext(queue string, v any) (*Next, error) {
	r, err := replyList(v)
	if err != nil || len(r) == 0 {
		return nil, fmt.Errorf("%s: unexpected reply %v", queue, v)
	}
	n := &Next{Status: NextStatus(str(r[0]))}
	if len(r) > 1 {
		n.Version = str(r[1])
	}
	switch n.Status {
	case NextEntries:
		n.Deliveries = decodeDeliveries(queue, r[2:])
	case NextRateWait:
		if len(r) > 2 {
			n.Until = clock.FromMillis(i64(r[2]))
		}
	}
	return n, nil
}

// Reattempt starts the next attempt of an entry a strict queue held. The
// attempt is a new call: under a rate limit it waits for a token
// (NextRateWait).
func (s *Store) Reattempt(ctx context.Context, l Lease, leaseTTL time.Duration, d *Delivery) (*Next, error) {
	return s.reattempt(ctx, l, leaseTTL, d, true)
}

// Reclaim claims afresh an entry delivered to the owner a while ago and not
// called yet, so that a later owner counts its call's timeout from now. Its
// rate token was spent when it was delivered.
func (s *Store) Reclaim(ctx context.Context, l Lease, leaseTTL time.Duration, d *Delivery) (*Next, error) {
	return s.reattempt(ctx, l, leaseTTL, d, false)
}

func (s *Store) reattempt(ctx context.Context, l Lease, leaseTTL time.Duration, d *Delivery, newCall bool) (*Next, error) {
	k := s.keys.Queue(l.Queue)
	v, err := s.run(ctx, "reattempt", []string{k.Meta, k.Stream, k.Lease, k.Ready},
		k.Tag, l.Queue, l.Consumer, l.Epoch, s.nowMs(), leaseTTL.Milliseconds(), d.EntryID, d.TaskID, boolArg(newCall))
	if err != nil {
		return nil, fmt.Errorf("reattempt %s: %w", l.Queue, err)
	}
	return parseNext(l.Queue, v)
}

// Renew extends a lease. It reports false when the lease was lost.
func (s *Store) Renew(ctx context.Context, l Lease, leaseTTL time.Duration) (bool, error) {
	k := s.keys.Queue(l.Queue)
	v, err := s.run(ctx, "renew", []string{k.Meta, k.Lease, k.Ready},
		l.Queue, l.Consumer, l.Epoch, s.nowMs(), leaseTTL.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("renew %s: %w", l.Queue, err)
	}
	return i64(v) == 1, nil
}

// Pull delivers more entries to the owner when it has no call to complete.
func (s *Store) Pull(ctx context.Context, l Lease, leaseTTL time.Duration, want int) (*Next, error) {
	k := s.keys.Queue(l.Queue)
	v, err := s.run(ctx, "pull", []string{k.Meta, k.Stream, k.Lease, k.Ready},
		k.Tag, l.Queue, l.Consumer, l.Epoch, s.nowMs(), leaseTTL.Milliseconds(), want)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", l.Queue, err)
	}
	return parseNext(l.Queue, v)
}

// Release hands a queue back. clean says that none of the caller's calls
// for it can still be running (so the next owner need not wait for them);
// hold, when set, keeps anyone from claiming it before then.
func (s *Store) Release(ctx context.Context, l Lease, hold time.Time, clean bool) (bool, error) {
	k := s.keys.Queue(l.Queue)
	var holdMs int64
	cleanArg := 0
	if clean {
		cleanArg = 1
	}
	if !hold.IsZero() {
		holdMs = clock.Millis(hold)
	}
	v, err := s.run(ctx, "release", []string{k.Meta, k.Stream, k.Lease, k.Ready},
		l.Queue, l.Consumer, l.Epoch, s.nowMs(), holdMs, s.keys.DispatchChannel(), k.Partition, cleanArg)
	if err != nil {
		return false, fmt.Errorf("release %s: %w", l.Queue, err)
	}
	return i64(v) == 1, nil
}

// ReadyQueue is a queue that may be claimed.
type ReadyQueue struct {
	Queue string
	Since time.Time // when it became claimable: older first is fair
}

// ReadyQueues returns, oldest first, up to perPartition queues per partition
// that may be claimed now.
func (s *Store) ReadyQueues(ctx context.Context, perPartition int) ([]ReadyQueue, error) {
	now := strconv.FormatInt(s.nowMs(), 10)
	p := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, task.Partitions)
	for i := range cmds {
		cmds[i] = p.ZRangeByScoreWithScores(ctx, s.keys.Ready(i), &redis.ZRangeBy{
			Min: "-inf", Max: now, Count: int64(perPartition),
		})
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read ready index: %w", err)
	}
	var out []ReadyQueue
	for _, c := range cmds {
		for _, z := range c.Val() {
			name, _ := z.Member.(string)
			out = append(out, ReadyQueue{Queue: name, Since: clock.FromMillis(int64(math.Round(z.Score)))})
		}
	}
	return out, nil
}

// SubscribeDispatch subscribes to the hints that an idle queue got work. Each
// message payload is "<partition>:<queue>"; see HintQueue.
func (s *Store) SubscribeDispatch(ctx context.Context) *redis.PubSub {
	return s.rdb.Subscribe(ctx, s.keys.DispatchChannel())
}

// HintQueue returns the queue named in a dispatch hint.
func HintQueue(payload string) (string, bool) {
	for i := 0; i < len(payload); i++ {
		if payload[i] == ':' {
			return payload[i+1:], true
		}
	}
	return "", false
}

// DueTime is when the delivered task became due: its latest round or retry
// time, else its run-at time, else its creation time.
func (d *Delivery) DueTime() time.Time {
	if !d.Since.IsZero() {
		return d.Since
	}
	if d.Spec == nil {
		return time.Time{}
	}
	return clock.FromMillis(max(d.Spec.RunAtMs, d.Spec.CreatedMs))
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
