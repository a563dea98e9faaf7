package task_test

import (
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/htq/htq/internal/task"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   task.Action
	}{
		{name: "empty", want: task.ActionNone},
		{name: "body done", body: "done", want: task.ActionDone},
		{name: "body reset", body: "reset", want: task.ActionReset},
		{name: "body done with whitespace", body: " \r\n\tdone\n", want: task.ActionDone},
		{name: "body reset with newline", body: "reset\n", want: task.ActionReset},
		{name: "body DONE is not done", body: "DONE", want: task.ActionNone},
		{name: "body Done is not done", body: "Done", want: task.ActionNone},
		{name: "body done. is not done", body: "done.", want: task.ActionNone},
		{name: "body not done", body: "not done", want: task.ActionNone},
		{name: "body done twice", body: "done done", want: task.ActionNone},
		{name: "body json", body: `"done"`, want: task.ActionNone},
		{name: "body ok", body: "ok", want: task.ActionNone},
		{name: "header done", header: header(task.HeaderAction, "done"), want: task.ActionDone},
		{name: "header DONE any case", header: header(task.HeaderAction, " DONE "), want: task.ActionDone},
		{name: "header reset", header: header(task.HeaderAction, "Reset"), want: task.ActionReset},
		{name: "header lower-case name", header: http.Header{"X-Htq-Action": {"done"}}, want: task.ActionDone},
		{name: "header wins over body", header: header(task.HeaderAction, "done"), body: "reset", want: task.ActionDone},
		{name: "header reset wins over body done", header: header(task.HeaderAction, "reset"), body: "done", want: task.ActionReset},
		{name: "unknown header falls back to body", header: header(task.HeaderAction, "continue"), body: "done", want: task.ActionDone},
		{name: "unknown header, plain body", header: header(task.HeaderAction, "continue"), body: "x", want: task.ActionNone},
		{name: "other header ignored", header: header("X-Other", "done"), want: task.ActionNone},
		{name: "header dead", header: header(task.HeaderAction, "dead"), body: "done", want: task.ActionDead},
		{name: "body dead is not an action", body: "dead", want: task.ActionNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := task.ParseAction(tt.header, []byte(tt.body)); got != tt.want {
				t.Fatalf("ParseAction(%v, %q) = %v, want %v", tt.header, tt.body, got, tt.want)
			}
		})
	}
}

func TestParseNextIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		set   bool
		want  time.Duration
		ok    bool
	}{
		{set: false},
		{value: "", set: true},
		{value: "0", set: true, want: 0, ok: true},
		{value: "3", set: true, want: 3 * time.Second, ok: true},
		{value: " 1.5 ", set: true, want: 1500 * time.Millisecond, ok: true},
		{value: "0.001", set: true, want: time.Millisecond, ok: true},
		{value: "-1", set: true},
		{value: "NaN", set: true},
		{value: "Inf", set: true},
		{value: "1e300", set: true},
		{value: "5s", set: true},
		{value: "abc", set: true},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.set {
			h.Set(task.HeaderNextIn, tt.value)
		}
		got, ok := task.ParseNextIn(h)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseNextIn(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

// call is one step of a variable task: the target's answer, and the gap
// expected before the next call.
type call struct {
	action  task.Action
	nextIn  time.Duration
	hasNext bool
	gap     time.Duration
}

// runCalls feeds calls to NextCall starting from k=0 and checks every gap.
func runCalls(t *testing.T, step, maxGap time.Duration, calls []call) {
	t.Helper()
	var k int64
	for i, c := range calls {
		gap, newK := task.NextCall(k, c.action, step, maxGap, c.nextIn, c.hasNext)
		if gap != c.gap {
			t.Fatalf("call %d (k=%d, action %v): gap %v, want %v", i+1, k, c.action, gap, c.gap)
		}
		if c.action == task.ActionReset {
			if newK != 0 {
				t.Fatalf("call %d: reset left k=%d, want 0", i+1, newK)
			}
		} else if newK != k+1 {
			t.Fatalf("call %d: k went from %d to %d, want %d", i+1, k, newK, k+1)
		}
		k = newK
	}
}

func gaps(secs ...float64) []call {
	out := make([]call, len(secs))
	for i, s := range secs {
		out[i] = call{gap: time.Duration(s * float64(time.Second))}
	}
	return out
}

func TestNextCallLegacyExample(t *testing.T) {
	t.Parallel()
	const step, maxGap = 2 * time.Second, 5 * time.Second
	// LEGACY_API.md: gaps 0, 2, 4, 5, 5, 5 s; after a reset, 2 s, then 0, 2, 4, 5 again.
	calls := gaps(0, 2, 4, 5, 5, 5)
	calls = append(calls, call{action: task.ActionReset, gap: 2 * time.Second})
	calls = append(calls, gaps(0, 2, 4, 5)...)
	runCalls(t, step, maxGap, calls)
}

func TestNextCall(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		name         string
		step, maxGap time.Duration
		calls        []call
	}{
		{name: "reset at once", step: 2 * s, maxGap: 5 * s, calls: []call{
			{action: task.ActionReset, gap: 2 * s}, {gap: 0}, {gap: 2 * s},
		}},
		{name: "two resets", step: 2 * s, maxGap: 5 * s, calls: []call{
			{gap: 0}, {gap: 2 * s}, {action: task.ActionReset, gap: 2 * s}, {action: task.ActionReset, gap: 2 * s}, {gap: 0},
		}},
		{name: "exact multiple reaches max", step: 2 * s, maxGap: 6 * s, calls: gaps(0, 2, 4, 6, 6, 6)},
		{name: "zero step always zero", step: 0, maxGap: 5 * s, calls: gaps(0, 0, 0, 0)},
		{name: "zero step and max", step: 0, maxGap: 0, calls: gaps(0, 0, 0)},
		{name: "zero max", step: 2 * s, maxGap: 0, calls: gaps(0, 0, 0)},
		{name: "max below step", step: 10 * s, maxGap: 3 * s, calls: gaps(0, 3, 3, 3)},
		{name: "max equals step", step: 3 * s, maxGap: 3 * s, calls: gaps(0, 3, 3)},
		{name: "sub-second step", step: 250 * time.Millisecond, maxGap: s, calls: gaps(0, 0.25, 0.5, 0.75, 1, 1)},
		{name: "next-in overrides", step: 2 * s, maxGap: 5 * s, calls: []call{
			{gap: 0},
			{nextIn: 30 * s, hasNext: true, gap: 30 * s}, // k still grows
			{gap: 4 * s},
			{nextIn: 0, hasNext: true, gap: 0}, // zero is a valid override
			{gap: 5 * s},
		}},
		{name: "next-in on reset", step: 2 * s, maxGap: 5 * s, calls: []call{
			{gap: 0}, {gap: 2 * s},
			{action: task.ActionReset, nextIn: 7 * s, hasNext: true, gap: 7 * s},
			{gap: 0},
		}},
		{name: "next-in ignored when not set", step: 2 * s, maxGap: 5 * s, calls: []call{
			{nextIn: 99 * s, hasNext: false, gap: 0}, {nextIn: 99 * s, gap: 2 * s},
		}},
		{name: "done counts like any answer", step: 2 * s, maxGap: 5 * s, calls: []call{
			{action: task.ActionDone, gap: 0}, {gap: 2 * s},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCalls(t, tt.step, tt.maxGap, tt.calls)
		})
	}
}

func TestNextCallNoOverflow(t *testing.T) {
	t.Parallel()
	steps := []time.Duration{time.Nanosecond, time.Millisecond, time.Second, time.Hour, hundredYears}
	maxes := []time.Duration{0, time.Second, time.Hour, hundredYears, math.MaxInt64}
	ks := []int64{0, 1, 2, 1 << 20, 1 << 40, math.MaxInt64 / 2, math.MaxInt64 - 1}
	for _, step := range steps {
		for _, mx := range maxes {
			for _, k := range ks {
				gap, newK := task.NextCall(k, task.ActionNone, step, mx, 0, false)
				if gap < 0 || gap > mx {
					t.Fatalf("NextCall(k=%d, step=%v, max=%v) = %v: outside [0, max]", k, step, mx, gap)
				}
				if want := min(mx, step*time.Duration(min(k, 1))); k <= 1 && gap != want {
					t.Fatalf("NextCall(k=%d, step=%v, max=%v) = %v, want %v", k, step, mx, gap, want)
				}
				if newK != k+1 {
					t.Fatalf("NextCall(k=%d) newK = %d", k, newK)
				}
			}
		}
	}
}

func TestNextCallGapNeverShrinks(t *testing.T) {
	t.Parallel()
	for _, step := range []time.Duration{10 * time.Millisecond, 700 * time.Millisecond, 3 * time.Second} {
		for _, mx := range []time.Duration{0, time.Second, 10 * time.Second, 100 * time.Second} {
			var seen []time.Duration
			var k int64
			for range 10_001 {
				var gap time.Duration
				gap, k = task.NextCall(k, task.ActionNone, step, mx, 0, false)
				seen = append(seen, gap)
			}
			if !slices.IsSorted(seen) {
				t.Fatalf("step %v max %v: gaps shrink: %v", step, mx, seen)
			}
			if seen[len(seen)-1] != mx {
				t.Fatalf("step %v max %v: gap after 10001 calls is %v, want the max", step, mx, seen[len(seen)-1])
			}
		}
	}
}
