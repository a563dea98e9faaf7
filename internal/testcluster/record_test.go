package testcluster

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// call makes a recorded call of task (q, g, i) from a to b ms with a sequence.
func call(q string, g, i, a, b int, seq int64) Call {
	return Call{
		Queue: q, Query: url.Values{"q": {q}, "g": {fmt.Sprint(g)}, "i": {fmt.Sprint(i)}},
		TaskID: fmt.Sprintf("%s-%d-%d", q, g, i), Seq: fmt.Sprint(seq), Start: ms(a), End: ms(b), Caller: "d0",
	}
}

func ledger(rules map[string]*QueueRules, refs ...TaskRef) *Ledger {
	l := &Ledger{Accepted: map[TaskRef]time.Time{}, Deleted: map[string]map[int]time.Time{}, Rules: rules}
	for _, r := range refs {
		l.Accepted[r] = ms(0)
	}
	return l
}

func serial() *QueueRules {
	return &QueueRules{Concurrency: []Step{{N: 1}}, Ordered: true}
}

var opts = CheckOptions{RateWindow: time.Second, RateJitter: 0}

func TestCheckRecordRules(t *testing.T) {
	t.Parallel()
	s := serial()
	three := &QueueRules{Concurrency: []Step{{N: 3}}, Ordered: true}
	rated := &QueueRules{Concurrency: []Step{{N: 3}}, Rate: 2, Burst: 1}
	lowered := &QueueRules{Concurrency: []Step{{N: 3}, {At: ms(50), N: 1}}}
	a := TaskRef{"a", 0, 0}
	b := TaskRef{"a", 0, 1}
	c := TaskRef{"a", 0, 2}
	for _, tc := range []struct {
		name  string
		calls []Call
		l     *Ledger
		want  string // the field that must have a finding; "" for none
	}{
		{"clean serial", []Call{call("a", 0, 0, 0, 10, 1), call("a", 0, 1, 10, 20, 2), call("a", 0, 2, 20, 30, 3)}, ledger(map[string]*QueueRules{"a": s}, a, b, c), ""},
		{"lost", []Call{call("a", 0, 0, 0, 10, 1), call("a", 0, 2, 20, 30, 3)}, ledger(map[string]*QueueRules{"a": s}, a, b, c), "Lost"},
		{"overlap", []Call{call("a", 0, 0, 0, 10, 1), call("a", 0, 1, 9, 20, 2)}, ledger(map[string]*QueueRules{"a": s}, a, b), "Overlaps"},
		{"disorder by arrival", []Call{call("a", 0, 1, 0, 10, 1), call("a", 0, 0, 10, 20, 2)}, ledger(map[string]*QueueRules{"a": s}, a, b), "Disorder"},
		{"disorder by sequence", []Call{call("a", 0, 1, 0, 10, 5), call("a", 0, 0, 1, 10, 6)}, ledger(map[string]*QueueRules{"a": three}, a, b), "Disorder"},
		{"concurrency 3 swapped arrivals are fine", []Call{call("a", 0, 1, 0, 10, 6), call("a", 0, 0, 1, 10, 5), call("a", 0, 2, 2, 10, 7)}, ledger(map[string]*QueueRules{"a": three}, a, b, c), ""},
		{"concurrency exceeded", []Call{call("a", 0, 0, 0, 10, 1), call("a", 0, 1, 1, 10, 2), call("a", 0, 2, 2, 10, 3), call("a", 0, 3, 3, 10, 4)}, ledger(map[string]*QueueRules{"a": three}), "Concurrency"},
		{"sequence back", []Call{call("a", 0, 0, 0, 10, 7), call("a", 0, 1, 10, 20, 7)}, ledger(map[string]*QueueRules{"a": s}, a, b), "Sequence"},
		{"sequence back across generations", []Call{call("a", 0, 0, 0, 10, 7), call("a", 1, 0, 20, 30, 1)}, ledger(map[string]*QueueRules{"a": s}), "Sequence"},
		// 5 and 6 handed out together; 6's request overtook 5's and ended first.
		{"concurrency 3 overtaken request", []Call{call("a", 0, 1, 0, 2, 6), call("a", 0, 0, 3, 10, 5)}, ledger(map[string]*QueueRules{"a": three}), ""},
		{"concurrency 3 sequence back", []Call{call("a", 0, 1, 0, 2, 6), call("a", 0, 2, 2, 3, 7), call("a", 0, 3, 3, 4, 8), call("a", 0, 0, 5, 10, 5)}, ledger(map[string]*QueueRules{"a": three}), "Sequence"},
		{"no sequence", []Call{call("a", 0, 0, 0, 10, 0)}, ledger(map[string]*QueueRules{"a": s}), "Sequence"},
		{"rate kept", []Call{call("a", 0, 0, 0, 1, 1), call("a", 0, 1, 10, 11, 2), call("a", 0, 2, 500, 501, 3), call("a", 0, 3, 1000, 1001, 4)}, ledger(map[string]*QueueRules{"a": rated}), ""},
		{"rate exceeded", []Call{call("a", 0, 0, 0, 1, 1), call("a", 0, 1, 10, 11, 2), call("a", 0, 2, 20, 21, 3), call("a", 0, 3, 30, 31, 4)}, ledger(map[string]*QueueRules{"a": rated}), "Rate"},
		// Lowered to 1 at 50 ms: binds only from the first end after it (60).
		{"lowered limit binds after the next result", []Call{call("a", 0, 0, 0, 60, 1), call("a", 0, 1, 1, 100, 2), call("a", 0, 2, 55, 100, 3)}, ledger(map[string]*QueueRules{"a": lowered}), ""},
		{"lowered limit binds", []Call{call("a", 0, 0, 0, 60, 1), call("a", 0, 1, 1, 100, 2), call("a", 0, 2, 70, 100, 3)}, ledger(map[string]*QueueRules{"a": lowered}), "Concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := CheckRecord(tc.calls, tc.l, opts)
			got := map[string]int{"Lost": len(f.Lost), "Overlaps": len(f.Overlaps), "Concurrency": len(f.Concurrency),
				"Disorder": len(f.Disorder), "Sequence": len(f.Sequence), "Rate": len(f.Rate)}
			for k, n := range got {
				if (k == tc.want) != (n > 0) {
					t.Errorf("%s: %d findings, want them only in %q: %v", k, n, tc.want, f)
				}
			}
			if f.Failed() != (tc.want != "") {
				t.Errorf("Failed() = %v", f.Failed())
			}
		})
	}
}

// TestCheckRecordExcuses: what is excused is excused exactly: a deleted
// generation's tasks, a loss window's (counted apart), a thawed process's
// stale sends of the tasks it held, and repeats in the order rule.
func TestCheckRecordExcuses(t *testing.T) {
	t.Parallel()
	rules := map[string]*QueueRules{"a": serial()}
	l := ledger(rules, TaskRef{"a", 0, 0}, TaskRef{"a", 0, 1}, TaskRef{"a", 1, 0}, TaskRef{"a", 1, 1})
	l.Deleted["a"] = map[int]time.Time{0: ms(100)}
	l.Accepted[TaskRef{"a", 1, 1}] = ms(500)
	l.LossWindows = [][2]time.Time{{ms(400), ms(600)}}
	stale := call("a", 1, 0, 300, 310, 5)
	stale.Seq = fmt.Sprint(ms(140).UnixMilli() * 1000) // handed out before the freeze
	stale.Caller = "frozen"
	l.Freezes = []Freeze{{Caller: "frozen", Stop: ms(150), Con: ms(290), Held: map[string]bool{stale.TaskID: true}}}
	calls := []Call{
		call("a", 0, 0, 0, 10, 1),
		call("a", 1, 0, 200, 210, ms(200).UnixMilli()*1000), // the new owner's redelivery
		stale, // the thawed process's late call: overlaps nothing, sequence goes back
		call("a", 1, 0, 305, 320, ms(305).UnixMilli()*1000), // a repeat overlapping the stale send
		call("a", 1, 2, 330, 340, ms(330).UnixMilli()*1000), // unknown: its enqueue had no success answer
	}
	f := CheckRecord(calls, l, opts)
	if f.Failed() {
		t.Fatalf("excused record failed: %v %v %v %v %v", f, f.Lost, f.Overlaps, f.Sequence, f.Disorder)
	}
	if f.Excused != 1 || len(f.LostInWindow) != 1 || f.StaleSends != 1 || f.UnknownCalls != 1 || f.Repeats != 2 {
		t.Errorf("counts: %v", f)
	}
	// A call of a held task the thawed process handed out afresh (its
	// sequence is after the freeze) is judged: here it overlaps.
	calls[2].Seq = fmt.Sprint(ms(300).UnixMilli() * 1000)
	if f := CheckRecord(calls, l, opts); len(f.Overlaps) == 0 || f.StaleSends != 0 {
		t.Errorf("a fresh call of a held task after the thaw was excused: %v", f)
	}
	// The same stale call by another process is not excused.
	calls[2].Seq = fmt.Sprint(ms(140).UnixMilli() * 1000)
	calls[2].Caller = "d0"
	if f := CheckRecord(calls, l, opts); len(f.Sequence) == 0 || !strings.Contains(f.Sequence[0], "below 1 calls") {
		t.Errorf("a call going back in sequence by a process that was not frozen passed: %v", f)
	}
}

// TestCheckRecordHeldOpen: a call whose caller was stopped across its
// deadline stays open at the target until the caller is continued; a new
// owner's call after that deadline does not overlap it. A call overlapped
// before its latest possible deadline, or whose caller was not stopped, is
// still an overlap.
func TestCheckRecordHeldOpen(t *testing.T) {
	t.Parallel()
	rules := map[string]*QueueRules{"a": serial()}
	rules["a"].Timeouts = []Step{{N: 100}}
	l := ledger(rules, TaskRef{"a", 0, 0}, TaskRef{"a", 0, 1})
	held := call("a", 0, 0, 0, 300, 1)
	held.Caller = "frozen"
	l.Freezes = []Freeze{{Caller: "frozen", Stop: ms(50), Con: ms(295), Held: map[string]bool{}}}
	calls := []Call{held, call("a", 0, 0, 150, 160, 2), call("a", 0, 1, 161, 170, 3)}
	f := CheckRecord(calls, l, opts)
	if f.Failed() || len(f.HeldOpen) != 2 {
		t.Fatalf("a call held open by its frozen caller past its deadline: %v %v held open %v", f, f.Overlaps, f.HeldOpen)
	}
	for _, tc := range []struct {
		name string
		edit func(l *Ledger, calls []Call)
	}{
		{"arrived before the deadline", func(_ *Ledger, calls []Call) { calls[1].Start, calls[1].End = ms(90), ms(95) }},
		{"a longer timeout was in force", func(l *Ledger, _ []Call) {
			l.Rules["a"].Timeouts = []Step{{N: 100}, {At: ms(-1500), N: 8000}}
		}},
		{"the caller was not stopped at the deadline", func(l *Ledger, _ []Call) { l.Freezes[0].Stop = ms(120) }},
		{"it ran on long after the thaw", func(_ *Ledger, calls []Call) { calls[0].End = ms(1500) }},
		{"another caller was stopped", func(_ *Ledger, calls []Call) { calls[0].Caller = "d1" }},
	} {
		l := ledger(map[string]*QueueRules{"a": {Concurrency: []Step{{N: 1}}, Ordered: true, Timeouts: []Step{{N: 100}}}},
			TaskRef{"a", 0, 0}, TaskRef{"a", 0, 1})
		l.Freezes = []Freeze{{Caller: "frozen", Stop: ms(50), Con: ms(295), Held: map[string]bool{}}}
		cs := append([]Call(nil), calls...)
		tc.edit(l, cs)
		if f := CheckRecord(cs, l, opts); len(f.Overlaps) == 0 {
			t.Errorf("%s: excused: %v", tc.name, f.HeldOpen)
		}
	}
}
