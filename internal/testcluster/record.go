package testcluster

// Checking a target's record after faults: what the randomized fault test
// (test/fault TestRandomFaults) asserts, kept here, apart from the test's
// fault schedule, so that its rules can be tested on hand-made records.
//
// Every rule is judged from the target's side (when a call arrived, when it
// ended) and only in the direction that target-side times make sound: a
// call the target saw end before another arrived was certainly handed out
// before it, whatever the delays in between.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TaskRef names one task a test enqueued: its queue, the queue's generation
// (bumped by each delete and re-create) and its index within it. The test
// puts them in the task's URL as q, g and i.
type TaskRef struct {
	Queue      string
	Gen, Index int
}

func (r TaskRef) String() string { return fmt.Sprintf("%s/g%d/%d", r.Queue, r.Gen, r.Index) }

// RefOf reads a call's TaskRef from its URL's q, g and i.
func RefOf(c Call) (TaskRef, bool) {
	g, err1 := strconv.Atoi(c.Query.Get("g"))
	i, err2 := strconv.Atoi(c.Query.Get("i"))
	q := c.Query.Get("q")
	if q == "" || err1 != nil || err2 != nil {
		return TaskRef{}, false
	}
	return TaskRef{Queue: q, Gen: g, Index: i}, true
}

// Step is a queue setting from a time on (the time the change was answered).
type Step struct {
	At time.Time
	N  int
}

// QueueRules is what the checker must know of one queue name.
type QueueRules struct {
	// Concurrency over time, in order; the first step holds from the start.
	Concurrency []Step
	// Timeouts over time in ms, in order (each step recorded just before
	// the change was sent); the first step holds from the start. Used only
	// to tell a call held open by a frozen caller (heldOpen); nil: unknown.
	Timeouts []Step
	// Rate in calls per second (0: none) and Burst, fixed for the run.
	Rate  float64
	Burst int
	// Recurring: a task is called again by design (a variable queue), so
	// its later calls are not counted as repeats.
	Recurring bool
	// Ordered: each generation's tasks became due in index order, so their
	// first calls must start in index order (timed tasks are enqueued with
	// rising due times for this).
	Ordered bool
}

// Freeze is a process stopped (SIGSTOP) and continued; Held are the task
// ids it held delivered and unacknowledged when it was stopped.
type Freeze struct {
	Caller    string
	Stop, Con time.Time
	Held      map[string]bool
}

// Ledger is what the test did: every enqueue that got a success answer, the
// deletes, the queues' rules, the freezes and, with an AOF everysec Redis,
// the windows in which an accepted write may be lost.
type Ledger struct {
	Accepted map[TaskRef]time.Time // the time the success answer arrived
	// Deleted[q][g]: when generation g of queue q was deleted (the DELETE
	// was sent after every enqueue of it was answered).
	Deleted map[string]map[int]time.Time
	Rules   map[string]*QueueRules
	Freezes []Freeze
	// LossWindows: an accepted task not called is counted apart, not as
	// lost, when accepted within one (a Redis kill with appendfsync
	// everysec: the last second of writes may not be on disk).
	LossWindows [][2]time.Time
}

// CheckOptions are the checker's tolerances, each for a measurement limit,
// never for a weaker rule.
type CheckOptions struct {
	// RateWindow is the window over which starts are counted against
	// Burst + Rate × (RateWindow + RateJitter); RateJitter absorbs the
	// variation of the delay between a token being taken and the call
	// reaching the target.
	RateWindow, RateJitter time.Duration
}

// Findings is the checker's verdict. The slices of strings are violations;
// the counts describe the record.
type Findings struct {
	Calls, FirstCalls, Repeats, Accepted int
	// UnknownCalls: calls of tasks whose enqueue got no success answer (the
	// answer was lost while Redis restarted, yet the task was stored).
	UnknownCalls int
	// Excused: accepted tasks of a deleted generation, accepted before its
	// delete, never called.
	Excused int
	// StaleSends: calls a frozen process sent after it was continued, of
	// tasks it held when stopped (RELIABILITY.md, "a freeze between the
	// lease check and the send"); left out of the order, overlap,
	// concurrency, rate and sequence rules, and counted.
	StaleSends int
	StaleList  []string // the stale sends, described
	// HeldOpen: calls whose caller was stopped (Freeze) across their
	// deadline, so the connection stayed open at the target until it was
	// continued (RELIABILITY.md, "a freeze during a call"); not counted as
	// running past their latest possible deadline by the overlap and
	// concurrency rules, and listed.
	HeldOpen []string
	// LostInWindow: accepted within a LossWindow and never called.
	LostInWindow []string
	MaxRate      float64 // the highest starts / allowed ratio seen over the rate windows

	Lost        []string // accepted, never called, not excused
	Overlaps    []string // a serial queue with two calls at once
	Concurrency []string // more calls at once than the limit in force
	Disorder    []string // first calls out of index order
	Sequence    []string // a call whose X-HTQ-Sequence is not above one that ended before it arrived
	Rate        []string // more starts in a window than the bucket allows
}

// Failed reports whether any rule was broken.
func (f Findings) Failed() bool {
	return len(f.Lost)+len(f.Overlaps)+len(f.Concurrency)+len(f.Disorder)+len(f.Sequence)+len(f.Rate) > 0
}

func (f Findings) String() string {
	return fmt.Sprintf("accepted %d, calls %d (first %d, repeats %d, of unacknowledged enqueues %d), lost %d (in a loss window %d, excused by a delete %d), overlaps %d, concurrency exceeded %d, order violations %d, sequence violations %d, rate exceeded %d (max %.2f of the allowance), stale sends %d, held open by a frozen caller %d",
		f.Accepted, f.Calls, f.FirstCalls, f.Repeats, f.UnknownCalls, len(f.Lost), len(f.LostInWindow), f.Excused,
		len(f.Overlaps), len(f.Concurrency), len(f.Disorder), len(f.Sequence), len(f.Rate), f.MaxRate, f.StaleSends, len(f.HeldOpen))
}

type recCall struct {
	Call
	ref   TaskRef
	seq   int64
	first bool // the task's first call
}

// CheckRecord judges a target's record against the ledger.
//
//   - Lost: an accepted task never called, unless its generation was deleted
//     (it was accepted before the delete by construction) or it was
//     accepted within a loss window (counted apart).
//   - Overlaps and Concurrency: at the arrival of each call, the calls of
//     its queue generation still in progress, itself included, are at most
//     the concurrency in force (1 for a serial queue). A lowered limit
//     binds from the queue's first call to end after the change (the owner
//     learns a change with its next result); a raised one from the change.
//   - Disorder: in an Ordered queue, each generation's first calls (a
//     task's first call; a later one is a retry or the redelivery of a call
//     in flight at a fault) in order of X-HTQ-Sequence, the order in which
//     they were handed out, have rising indexes; and, for a serial queue,
//     in order of arrival too.
//   - Sequence: for one queue name, across its generations, a call carries
//     a larger X-HTQ-Sequence than every call that ended before it arrived
//     (docs/api.md, "What a target may assume of X-HTQ-Sequence").
//   - Rate: over every window of RateWindow from a call's arrival, the
//     starts of a queue generation are at most Burst + Rate × (RateWindow +
//     RateJitter).
//
// Stale sends of a continued process (Freeze) are left out of all but the
// loss rule and counted.
func CheckRecord(calls []Call, l *Ledger, o CheckOptions) Findings {
	var f Findings
	f.Calls = len(calls)
	f.Accepted = len(l.Accepted)
	called := map[TaskRef]bool{}
	byGen := map[TaskRef][]recCall{} // Index unused: the queue generation
	byName := map[string][]recCall{}
	firstOf := map[string]bool{}
	ordered := append([]Call(nil), calls...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Start.Before(ordered[j].Start) })
	for _, c := range ordered {
		ref, ok := RefOf(c)
		if !ok {
			continue
		}
		called[ref] = true
		if _, ok := l.Accepted[ref]; !ok {
			f.UnknownCalls++
		}
		if firstOf[c.TaskID] {
			if r := l.Rules[ref.Queue]; r == nil || !r.Recurring {
				f.Repeats++
			}
		} else {
			f.FirstCalls++
		}
		if stale(c, l.Freezes) {
			f.StaleSends++
			f.StaleList = append(f.StaleList, fmt.Sprintf("%s by %s arrived %s, ended %s, attempt %s", ref, c.Caller, c.Start.Format("15:04:05.000"), c.End.Format("15:04:05.000"), c.Attempt))
			firstOf[c.TaskID] = true
			continue
		}
		seq, _ := strconv.ParseInt(c.Seq, 10, 64)
		rc := recCall{Call: c, ref: ref, seq: seq, first: !firstOf[c.TaskID]}
		firstOf[c.TaskID] = true
		gen := TaskRef{Queue: ref.Queue, Gen: ref.Gen}
		byGen[gen] = append(byGen[gen], rc)
		byName[ref.Queue] = append(byName[ref.Queue], rc)
	}
	for ref, at := range l.Accepted {
		if called[ref] {
			continue
		}
		switch {
		case !l.Deleted[ref.Queue][ref.Gen].IsZero():
			f.Excused++
		case within(at, l.LossWindows):
			f.LostInWindow = append(f.LostInWindow, ref.String()+" accepted at "+at.Format("15:04:05.000"))
		default:
			f.Lost = append(f.Lost, ref.String()+" accepted at "+at.Format("15:04:05.000"))
		}
	}
	for gen, cs := range byGen {
		rules := l.Rules[gen.Queue]
		if rules == nil {
			continue
		}
		checkConcurrency(&f, gen, cs, rules, l.Freezes)
		if rules.Ordered {
			checkOrder(&f, gen, cs, rules)
		}
		if rules.Rate > 0 {
			checkRate(&f, gen, cs, rules, o)
		}
	}
	for q, cs := range byName {
		checkSequence(&f, q, cs, l.Rules[q])
	}
	for _, s := range [][]string{f.Lost, f.LostInWindow, f.Overlaps, f.Concurrency, f.Disorder, f.Sequence, f.Rate} {
		sort.Strings(s)
	}
	return f
}

// stale: a call a frozen process sent after it was continued, of a task it
// held, handed out before the freeze: its X-HTQ-Sequence is below the
// process's clock at the freeze (a sequence is at least the handing-out
// dispatcher's clock in Unix ms × 1000; 100 ms absorbs the counter running
// ahead of the clock, far less than a freeze lasts). A call of a held task
// the process hands out afresh after the thaw (it claims the queue again)
// is not stale.
func stale(c Call, freezes []Freeze) bool {
	seq, _ := strconv.ParseInt(c.Seq, 10, 64)
	for _, z := range freezes {
		if c.Caller == z.Caller && !c.Start.Before(z.Con) && z.Held[c.TaskID] && seq < (z.Stop.UnixMilli()+100)*1000 {
			return true
		}
	}
	return false
}

// describe says everything the record knows of a call.
func (c recCall) describe() string {
	return fmt.Sprintf("[task %s id %s attempt %s seq %d by %q %s..%s]", c.ref, c.TaskID, c.Attempt, c.seq, c.Caller,
		c.Start.Format("15:04:05.000000"), c.End.Format("15:04:05.000000"))
}

func within(t time.Time, windows [][2]time.Time) bool {
	for _, w := range windows {
		if !t.Before(w[0]) && !t.After(w[1]) {
			return true
		}
	}
	return false
}

// limitAt is the concurrency a call arriving at t may count against: the
// larger of the limit by the changes' times and the limit with each
// decrease deferred to the queue's first call end after it.
func limitAt(t time.Time, steps []Step, cs []recCall) int {
	plain, deferred := 0, 0
	prev := 0
	for i, s := range steps {
		at := s.At
		if i > 0 && s.N < prev {
			for _, c := range cs {
				if c.End.After(s.At) && (at.Equal(s.At) || c.End.Before(at)) {
					at = c.End
				}
			}
		}
		if i == 0 || !s.At.After(t) {
			plain = s.N
		}
		if i == 0 || !at.After(t) {
			deferred = s.N
		}
		prev = s.N
	}
	return max(plain, deferred, 1)
}

// TimeoutsAround returns the lowest and highest timeouts in force at any
// time in the 2 s before at (a call handed out then may carry either: the
// hand-out precedes the arrival, and a step is recorded just before the
// change is sent); both 0 when Timeouts is unknown (or r is nil).
func (r *QueueRules) TimeoutsAround(at time.Time) (lo, hi time.Duration) {
	if r == nil {
		return 0, 0
	}
	for i, s := range r.Timeouts {
		next := time.Time{}
		if i+1 < len(r.Timeouts) {
			next = r.Timeouts[i+1].At
		}
		// the step is in force over [s.At, next): count it if that meets [at-2s, at]
		if !s.At.After(at) && (next.IsZero() || next.After(at.Add(-2*time.Second))) {
			d := time.Duration(s.N) * time.Millisecond
			if lo == 0 || d < lo {
				lo = d
			}
			hi = max(hi, d)
		}
	}
	return lo, hi
}

// heldOpen reports whether call c, still open at the target when b
// arrived, was held open by a frozen caller: its caller was stopped across
// the latest deadline c can have had (its start plus the highest timeout
// in force in the 2 s before it: the hand-out precedes the arrival, and a
// step is recorded before it takes effect), b arrived after that deadline,
// and c ended within a second of the caller being continued (it closed the
// connection then). HTQ's side of such a call ended at its deadline; a
// stopped process cannot close its socket. A call that b overlaps before
// its deadline is never excused.
func heldOpen(c, b recCall, rules *QueueRules, freezes []Freeze) bool {
	_, hi := rules.TimeoutsAround(c.Start)
	if hi == 0 {
		return false
	}
	deadline := c.Start.Add(hi)
	if b.Start.Before(deadline) {
		return false
	}
	for _, z := range freezes {
		if z.Caller == c.Caller && !z.Stop.After(deadline) && !z.Con.Before(deadline) && !c.End.After(z.Con.Add(time.Second)) {
			return true
		}
	}
	return false
}

func checkConcurrency(f *Findings, gen TaskRef, cs []recCall, rules *QueueRules, freezes []Freeze) {
	for i, b := range cs { // by arrival
		n := 1
		var with []string
		for _, c := range cs[:i] {
			if !c.End.After(b.Start) {
				continue
			}
			if heldOpen(c, b, rules, freezes) {
				f.HeldOpen = append(f.HeldOpen, fmt.Sprintf("%s/g%d: %s held open by its frozen caller when %s arrived",
					gen.Queue, gen.Gen, c.describe(), b.describe()))
				continue
			}
			n++
			with = append(with, c.describe())
		}
		limit := limitAt(b.Start, rules.Concurrency, cs)
		if n <= limit {
			continue
		}
		msg := fmt.Sprintf("%s/g%d: %d calls at once (limit %d): %s arrived during %s",
			gen.Queue, gen.Gen, n, limit, b.describe(), strings.Join(with, ", "))
		if isSerial(rules) {
			f.Overlaps = append(f.Overlaps, msg)
		} else {
			f.Concurrency = append(f.Concurrency, msg)
		}
	}
}

func checkOrder(f *Findings, gen TaskRef, cs []recCall, rules *QueueRules) {
	var firsts []recCall
	for _, c := range cs {
		if c.first {
			firsts = append(firsts, c)
		}
	}
	check := func(how string, list []recCall) {
		for k := 1; k < len(list); k++ {
			if list[k].ref.Index < list[k-1].ref.Index {
				f.Disorder = append(f.Disorder, fmt.Sprintf("%s/g%d: by %s, task %d's first call came after task %d's: %s after %s",
					gen.Queue, gen.Gen, how, list[k].ref.Index, list[k-1].ref.Index, list[k].describe(), list[k-1].describe()))
				return
			}
		}
	}
	if isSerial(rules) {
		check("arrival", firsts)
	}
	bySeq := append([]recCall(nil), firsts...)
	sort.SliceStable(bySeq, func(i, j int) bool { return bySeq[i].seq < bySeq[j].seq })
	check("sequence", bySeq)
}

// isSerial: the queue's concurrency was 1 throughout.
func isSerial(rules *QueueRules) bool {
	for _, s := range rules.Concurrency {
		if s.N > 1 {
			return false
		}
	}
	return true
}

func checkRate(f *Findings, gen TaskRef, cs []recCall, rules *QueueRules, o CheckOptions) {
	allowed := float64(rules.Burst) + rules.Rate*(o.RateWindow+o.RateJitter).Seconds()
	for i, a := range cs {
		n := 0
		var in []string
		for _, c := range cs[i:] {
			if c.Start.Sub(a.Start) >= o.RateWindow {
				break
			}
			n++
			in = append(in, c.describe())
		}
		f.MaxRate = max(f.MaxRate, float64(n)/allowed)
		if float64(n) > allowed {
			f.Rate = append(f.Rate, fmt.Sprintf("%s/g%d: %d calls in %v (allowed %.1f): %s",
				gen.Queue, gen.Gen, n, o.RateWindow, allowed, strings.Join(in, ", ")))
		}
	}
}

// checkSequence: a call B handed out after a call A carries a larger
// sequence. The target sees A end before B arrives; with concurrency > 1, B
// may still have been handed out before A (its request overtaken on the
// way), but then B held a slot all along: at most limit - 1 calls with a
// larger sequence than B's can have ended before B arrived.
func checkSequence(f *Findings, q string, cs []recCall, rules *QueueRules) {
	for i, b := range cs { // by arrival
		if b.seq <= 0 {
			f.Sequence = append(f.Sequence, fmt.Sprintf("%s: task %s (g%d) arrived at %s with sequence %q", q, b.Query.Get("i"), b.ref.Gen, b.Start.Format("15:04:05.000"), b.Seq))
			continue
		}
		limit := 1
		if rules != nil {
			limit = limitAt(b.Start, rules.Concurrency, cs)
		}
		var above []recCall
		for j, a := range cs {
			if j != i && !a.End.After(b.Start) && a.seq >= b.seq {
				above = append(above, a)
			}
		}
		if len(above) > limit-1 {
			top := above[0]
			for _, a := range above {
				if a.seq > top.seq {
					top = a
				}
			}
			f.Sequence = append(f.Sequence, fmt.Sprintf("%s: task %s (g%d) arrived at %s with sequence %d, below %d calls that ended before (limit %d), e.g. %d of task %s (g%d), ended at %s",
				q, b.Query.Get("i"), b.ref.Gen, b.Start.Format("15:04:05.000"), b.seq, len(above), limit, top.seq, top.Query.Get("i"), top.ref.Gen, top.End.Format("15:04:05.000")))
		}
	}
}
