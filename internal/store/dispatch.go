package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// Lease names the owner of a queue: the dispatcher's consumer name and the
// fencing token "<consumer>:<epoch>" it got when it claimed the queue. The
// token is unique across dispatcher runs and epoch-counter rewinds, since
// the consumer name is unique to one run.
type Lease struct {
	Queue    string
	Consumer string
	Token    string
}

// Delivery is one stream entry handed to a dispatcher to call.
type Delivery struct {
	EntryID string
	TaskID  string
	Queue   string
	Spec    *task.Spec
	Seq     int64         // X-HTQ-Sequence: rises with every delivery of the queue's name (see docs/api.md)
	Attempt int           // 1 for the first call (of this variable round)
	K       int64         // variable tasks: calls since added or reset
	Since   time.Time     // when it became due again (variable rounds, retries); zero: see DueTime
	Timeout time.Duration // the call's timeout, as stamped in the task's state when it was handed out
	Err     error         // the stored spec could not be decoded
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

// ClaimOptions tune a claim.
type ClaimOptions struct {
	TTL   time.Duration // the lease
	Grace time.Duration // added to a dead owner's call deadline before its entry is recovered
	Want  int           // entries to deliver (0: the queue's concurrency)
	// WakeChannel is the owner's channel for "work arrived while your calls
	// run" (Keys.OwnerChannel); empty: never told.
	WakeChannel string
}

// Claim is the result of trying to take a queue.
type Claim struct {
	Status     ClaimStatus
	Owned      *Owned // ClaimOK: the queue, held
	Config     task.QueueConfig
	Version    string
	Deliveries []Delivery
	Until      time.Time // ClaimWait: when to try again
}

// Owned is a queue a dispatcher holds: its lease with the fencing token,
// the lease's TTL and the queue's keys. Every write of the owner goes
// through it, so a token can never travel with another queue's keys or
// another TTL.
type Owned struct {
	st    *Store
	k     QueueKeys
	lease Lease
	ttl   time.Duration
	wake  string
}

// Lease returns the lease the queue is held by.
func (o *Owned) Lease() Lease { return o.lease }

// Queue returns the queue's name.
func (o *Owned) Queue() string { return o.lease.Queue }

// TTL returns the lease's time to live.
func (o *Owned) TTL() time.Duration { return o.ttl }

// Claim tries to take ownership of a queue for consumer and deliver its
// first entries. Concurrent claims share pipelines (a dispatcher claims the
// queues of a burst of hints at once).
func (s *Store) Claim(ctx context.Context, queue, consumer string, opt ClaimOptions) (*Claim, error) {
	k := s.keys.Queue(queue)
	v, err := s.runGrouped(ctx, s.sc.claim, k.Partition, []string{k.Meta, k.Stream, k.Lease, k.Ready, k.Epoch},
		k.Tag, queue, consumer, s.nowMs(), opt.TTL.Milliseconds(), opt.Grace.Milliseconds(), opt.Want, opt.WakeChannel)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", queue, err)
	}
	rd := newReader("claim", v)
	c := &Claim{Status: ClaimStatus(rd.str())}
	switch c.Status {
	case ClaimWait:
		c.Until = clock.FromMillis(rd.int())
	case ClaimOwned:
		rd.int()
	case ClaimOK:
		token := rd.str()
		cfg := rd.str()
		c.Version = rd.str()
		if rd.err == nil {
			if !strings.HasPrefix(token, consumer+":") {
				return nil, fmt.Errorf("claim %s: %w: token %q is not %s's", queue, ErrBadReply, token, consumer)
			}
			if c.Config, err = s.cfgs.decode(cfg); err != nil {
				return nil, fmt.Errorf("claim %s: decode config: %w", queue, err)
			}
		}
		c.Deliveries = readDeliveries(rd, queue)
		c.Owned = &Owned{st: s, k: k, lease: Lease{Queue: queue, Consumer: consumer, Token: token}, ttl: opt.TTL, wake: opt.WakeChannel}
	case ClaimGone, ClaimPaused, ClaimEmpty:
	default:
		if rd.err == nil {
			return nil, fmt.Errorf("claim %s: %w: status %q", queue, ErrBadReply, c.Status)
		}
	}
	if rd.err != nil {
		return nil, fmt.Errorf("claim %s: %w", queue, rd.err)
	}
	return c, nil
}

// deliveryFields is the number of reply elements per delivery:
// eid, tid, spec, seq, attempt, k, since, timeout.
const deliveryFields = 8

func readDeliveries(rd *reader, queue string) []Delivery {
	if rd.left()%deliveryFields != 0 {
		rd.err = fmt.Errorf("%w: %s: %d elements left for deliveries of %d", ErrBadReply, rd.what, rd.left(), deliveryFields)
		return nil
	}
	out := make([]Delivery, 0, rd.left()/deliveryFields)
	for rd.left() > 0 {
		d := Delivery{EntryID: rd.str(), TaskID: rd.str(), Queue: queue}
		spec := rd.str()
		d.Seq, d.Attempt, d.K = rd.int(), int(rd.int()), rd.int()
		if since := rd.int(); since > 0 {
			d.Since = clock.FromMillis(since)
		}
		d.Timeout = time.Duration(rd.int()) * time.Millisecond
		_, d.Spec, d.Err = task.Decode(spec)
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
	// Redirects lists the redirects followed ("<status> <location>"), for
	// the legacy protocol's queues, which follow them for every method.
	Redirects []string `json:"redirects,omitempty"`
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

// Next is the result of Complete, Pull, Reattempt and Reclaim.
type Next struct {
	Status     NextStatus
	Version    string
	Deliveries []Delivery
	Until      time.Time // NextRateWait
}

// Complete records a finished call and delivers the next entries, in one
// round trip.
func (o *Owned) Complete(ctx context.Context, c *Completion) (*Next, error) {
	s, k, l := o.st, o.k, o.lease
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
	v, err := s.runGrouped(ctx, s.sc.complete, k.Partition,
		[]string{k.Meta, k.Stream, k.Lease, k.Ready, k.Delayed, k.Timers, k.Dead},
		k.Tag, l.Queue, l.Consumer, l.Token, s.nowMs(), o.ttl.Milliseconds(),
		c.Delivery.EntryID, c.Delivery.TaskID, string(c.Outcome), when, kArg, rec, c.HistoryLen, c.Want,
		s.keys.ScheduleChannel(), k.Partition, status, errText, boolArg(c.Extend), o.wake)
	if err != nil {
		return nil, fmt.Errorf("complete %s: %w", l.Queue, err)
	}
	n, err := parseNext(l.Queue, v)
	if err == nil && n.Status != NextStale {
		s.countOutcome(c.Outcome, s.nowMs())
	}
	return n, err
}

func parseNext(queue string, v any) (*Next, error) {
	rd := newReader("next", v)
	n := &Next{Status: NextStatus(rd.str())}
	switch n.Status {
	case NextStale, NextGone, NextCanceled, NextPaused:
	case NextEntries:
		n.Version = rd.str()
		n.Deliveries = readDeliveries(rd, queue)
	case NextRateWait:
		n.Version = rd.str()
		n.Until = clock.FromMillis(rd.int())
	case NextHeld, NextIdle, NextReleased:
		n.Version = rd.str()
	default:
		if rd.err == nil {
			return nil, fmt.Errorf("%s: %w: status %q", queue, ErrBadReply, n.Status)
		}
	}
	if rd.err != nil {
		return nil, fmt.Errorf("%s: %w", queue, rd.err)
	}
	return n, nil
}

// Reattempt starts the next attempt of an entry a strict queue held. The
// attempt is a new call: under a rate limit it waits for a token
// (NextRateWait).
func (o *Owned) Reattempt(ctx context.Context, d *Delivery) (*Next, error) {
	return o.reattempt(ctx, d, true)
}

// Reclaim claims afresh an entry delivered to the owner a while ago and not
// called yet, so that a later owner counts its call's timeout from now. Its
// rate token was spent when it was delivered.
func (o *Owned) Reclaim(ctx context.Context, d *Delivery) (*Next, error) {
	return o.reattempt(ctx, d, false)
}

func (o *Owned) reattempt(ctx context.Context, d *Delivery, newCall bool) (*Next, error) {
	s, k, l := o.st, o.k, o.lease
	v, err := s.run(ctx, s.sc.reattempt, k.Partition, []string{k.Meta, k.Stream, k.Lease, k.Ready},
		k.Tag, l.Queue, l.Consumer, l.Token, s.nowMs(), o.ttl.Milliseconds(), d.EntryID, d.TaskID, boolArg(newCall))
	if err != nil {
		return nil, fmt.Errorf("reattempt %s: %w", l.Queue, err)
	}
	return parseNext(l.Queue, v)
}

// Renew extends the lease. It reports false when the lease was lost.
func (o *Owned) Renew(ctx context.Context) (bool, error) {
	s, k, l := o.st, o.k, o.lease
	v, err := s.run(ctx, s.sc.renew, k.Partition, []string{k.Meta, k.Lease, k.Ready},
		l.Queue, l.Token, s.nowMs(), o.ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("renew %s: %w", l.Queue, err)
	}
	n, err := asInt(v)
	if err != nil {
		return false, fmt.Errorf("renew %s: %w", l.Queue, err)
	}
	return n == 1, nil
}

// RenewResult is the outcome of one lease of a RenewAll.
type RenewResult struct {
	Held bool  // the lease was extended
	Err  error // Redis did not answer for it: unknown
}

// RenewAll extends many leases in one pipeline (one round trip per Redis
// node rather than one per queue).
func (s *Store) RenewAll(ctx context.Context, owned []*Owned) []RenewResult {
	out := make([]RenewResult, len(owned))
	if len(owned) == 0 {
		return out
	}
	now := s.nowMs()
	p := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(owned))
	for i, o := range owned {
		k, l := o.k, o.lease
		cmds[i] = s.variant(s.sc.renew).EvalSha(ctx, p, []string{k.Meta, k.Lease, k.Ready}, l.Queue, l.Token, now, o.ttl.Milliseconds())
	}
	_, _ = p.Exec(ctx)
	for i, c := range cmds {
		v, err := c.Result()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			held, rerr := owned[i].Renew(ctx) // loads the script again
			out[i] = RenewResult{Held: held, Err: rerr}
			continue
		}
		body, err := s.reply(s.sc.renew, owned[i].k.Partition, v, err)
		if err == nil {
			var n int64
			if n, err = asInt(body); err == nil {
				out[i].Held = n == 1
			}
		}
		if err != nil {
			out[i].Err = fmt.Errorf("renew %s: %w", owned[i].lease.Queue, err)
		}
	}
	return out
}

// Pull delivers more entries to the owner when it has no call to complete.
func (o *Owned) Pull(ctx context.Context, want int) (*Next, error) {
	s, k, l := o.st, o.k, o.lease
	v, err := s.run(ctx, s.sc.pull, k.Partition, []string{k.Meta, k.Stream, k.Lease, k.Ready},
		k.Tag, l.Queue, l.Consumer, l.Token, s.nowMs(), o.ttl.Milliseconds(), want, o.wake)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", l.Queue, err)
	}
	return parseNext(l.Queue, v)
}

// Release hands the queue back. clean says that none of the caller's calls
// for it can still be running (so the next owner need not wait for them);
// hold, when set, keeps anyone from claiming it before then. It reports
// false when the lease had already been lost.
func (o *Owned) Release(ctx context.Context, hold time.Time, clean bool) (bool, error) {
	s, k, l := o.st, o.k, o.lease
	var holdMs int64
	if !hold.IsZero() {
		holdMs = clock.Millis(clock.CeilMillis(hold))
	}
	v, err := s.run(ctx, s.sc.release, k.Partition, []string{k.Meta, k.Stream, k.Lease, k.Ready},
		k.Tag, l.Queue, l.Consumer, l.Token, s.nowMs(), holdMs, boolArg(clean))
	if err != nil {
		return false, fmt.Errorf("release %s: %w", l.Queue, err)
	}
	n, err := asInt(v)
	if err != nil {
		return false, fmt.Errorf("release %s: %w", l.Queue, err)
	}
	return n == 1, nil
}

// ReadyQueue is a queue that may be claimed.
type ReadyQueue struct {
	Queue string
	Since time.Time // when it became claimable: older first is fair
}

// HintGrace is how long the pollers leave alone a queue whose wake-up hint
// reached a dispatcher (HINT_GRACE in lua/common.lua): its ready-index entry,
// and the partition's due entry, are set that far ahead. The dispatcher that
// heard the hint claims the queue at once or calls Unhint; the grace only
// delays the safety net for a hint lost after Redis sent it (a subscriber's
// full buffer or lost connection, which signal Hints.Resync: a poller then
// looks HintGrace ahead; or a dispatcher that died before its claim).
const HintGrace = 2 * time.Second

// Unhint gives a queue whose hint this dispatcher heard but could not act on
// back to the pollers at once (see lua/unhint.lua). The due index shows it
// when Unhint returns (its mark is not left to the asynchronous rounds), so
// a poller poked after it finds the queue.
func (s *Store) Unhint(ctx context.Context, queue string) error {
	k := s.keys.Queue(queue)
	if _, err := s.runMarkedNow(ctx, s.sc.unhint, k.Partition, []string{k.Ready, k.Lease}, queue, s.nowMs()); err != nil {
		return fmt.Errorf("unhint %s: %w", queue, err)
	}
	return nil
}

// ReadyIn returns, oldest first, up to limit queues of partition p that may
// be claimed now, or by ahead from now (ahead > 0: a queue whose hint may
// have been lost waits up to HintGrace).
func (s *Store) ReadyIn(ctx context.Context, p, limit int, ahead time.Duration) ([]ReadyQueue, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.keys.Ready(p), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.nowMs()+ahead.Milliseconds(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read ready index of partition %d: %w", p, err)
	}
	out := make([]ReadyQueue, 0, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		out = append(out, ReadyQueue{Queue: name, Since: clock.FromMillis(int64(math.Round(z.Score)))})
	}
	return out, nil
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
