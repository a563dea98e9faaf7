package task_test

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/htq/htq/internal/task"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   task.Verdict
	}{
		{0, task.VerdictPermanent},
		{100, task.VerdictPermanent},
		{101, task.VerdictPermanent},
		{199, task.VerdictPermanent},
		{200, task.VerdictSuccess},
		{201, task.VerdictSuccess},
		{204, task.VerdictSuccess},
		{299, task.VerdictSuccess},
		{300, task.VerdictPermanent},
		{301, task.VerdictPermanent},
		{302, task.VerdictPermanent},
		{304, task.VerdictPermanent},
		{307, task.VerdictPermanent},
		{399, task.VerdictPermanent},
		{400, task.VerdictPermanent},
		{401, task.VerdictPermanent},
		{403, task.VerdictPermanent},
		{404, task.VerdictPermanent},
		{405, task.VerdictPermanent},
		{407, task.VerdictPermanent},
		{408, task.VerdictRetry},
		{409, task.VerdictPermanent},
		{410, task.VerdictPermanent},
		{413, task.VerdictPermanent},
		{422, task.VerdictPermanent},
		{424, task.VerdictPermanent},
		{425, task.VerdictRetry},
		{426, task.VerdictPermanent},
		{429, task.VerdictRetry},
		{451, task.VerdictPermanent},
		{499, task.VerdictPermanent},
		{500, task.VerdictRetry},
		{501, task.VerdictRetry},
		{502, task.VerdictRetry},
		{503, task.VerdictRetry},
		{504, task.VerdictRetry},
		{599, task.VerdictRetry},
	}
	for _, tt := range tests {
		if got := task.Judge(tt.status); got != tt.want {
			t.Errorf("Judge(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestVerdictString(t *testing.T) {
	t.Parallel()
	for v, want := range map[task.Verdict]string{task.VerdictSuccess: "success", task.VerdictRetry: "retry", task.VerdictPermanent: "permanent"} {
		if got := v.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(v), got, want)
		}
	}
}

func policy(lo, hi time.Duration) task.RetryPolicy {
	return task.RetryPolicy{MaxAttempts: 100, MinBackoff: task.Duration(lo), MaxBackoff: task.Duration(hi)}
}

// backoffCeil is min(max, min·2^(n-1)) computed without overflow.
func backoffCeil(lo, hi time.Duration, n int) time.Duration {
	c := lo
	for i := 1; i < n && c < hi; i++ {
		c *= 2
	}
	return min(c, hi)
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lo, hi time.Duration
	}{
		{name: "defaults", lo: task.DefaultMinBackoff, hi: task.DefaultMaxBackoff},
		{name: "ms", lo: time.Millisecond, hi: 10 * time.Second},
		{name: "ns", lo: time.Nanosecond, hi: time.Hour},
		{name: "not power of two", lo: 3 * time.Second, hi: 100 * time.Second},
		{name: "hundred years", lo: time.Second, hi: hundredYears},
		{name: "close", lo: time.Second, hi: time.Second + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, 2))
			p := policy(tt.lo, tt.hi)
			prevCeil := time.Duration(0)
			for n := 0; n <= 200; n++ {
				ceil := backoffCeil(tt.lo, tt.hi, n)
				var maxSeen time.Duration
				for range 300 {
					d := task.Backoff(p, n, r)
					if d < tt.lo || d > ceil {
						t.Fatalf("Backoff(n=%d) = %v, want within [%v, %v]", n, d, tt.lo, ceil)
					}
					maxSeen = max(maxSeen, d)
				}
				// It grows: while the ceiling rises, some wait exceeds the
				// previous ceiling (300 uniform draws over a range at least
				// half above it).
				if ceil > prevCeil && prevCeil > tt.lo && maxSeen <= prevCeil {
					t.Fatalf("Backoff(n=%d): max of 300 draws %v is not above the previous ceiling %v", n, maxSeen, prevCeil)
				}
				prevCeil = ceil
			}
		})
	}
}

func TestBackoffFixed(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name   string
		lo, hi time.Duration
		want   time.Duration
	}{
		{name: "equal", lo: 5 * time.Second, hi: 5 * time.Second, want: 5 * time.Second},
		{name: "max below min", lo: 5 * time.Second, hi: time.Second, want: 5 * time.Second},
		{name: "both zero", want: 0},
	}
	for _, tt := range tests {
		for n := range 50 {
			if got := task.Backoff(policy(tt.lo, tt.hi), n, r); got != tt.want {
				t.Fatalf("%s: Backoff(n=%d) = %v, want %v", tt.name, n, got, tt.want)
			}
		}
	}
	// The first retry always waits the minimum.
	for range 50 {
		if got := task.Backoff(policy(time.Second, time.Minute), 1, r); got != time.Second {
			t.Fatalf("Backoff(n=1) = %v, want the minimum", got)
		}
	}
}

func TestBackoffZeroMin(t *testing.T) {
	t.Parallel()
	// With no minimum the exponential has nothing to double: the first retry
	// is immediate and later ones are uniform in [0, max].
	r := rand.New(rand.NewPCG(5, 6))
	p := policy(0, 10*time.Second)
	if got := task.Backoff(p, 1, r); got != 0 {
		t.Fatalf("Backoff(n=1) = %v, want 0", got)
	}
	var maxSeen time.Duration
	for n := 2; n < 500; n++ {
		d := task.Backoff(p, n, r)
		if d < 0 || d > 10*time.Second {
			t.Fatalf("Backoff(n=%d) = %v, outside [0, 10s]", n, d)
		}
		maxSeen = max(maxSeen, d)
	}
	if maxSeen < 5*time.Second {
		t.Fatalf("500 draws never exceeded %v", maxSeen)
	}
}

func TestBackoffDeterministicWithSeed(t *testing.T) {
	t.Parallel()
	p := policy(time.Second, time.Hour)
	a, b := rand.New(rand.NewPCG(7, 8)), rand.New(rand.NewPCG(7, 8))
	for n := range 30 {
		if x, y := task.Backoff(p, n, a), task.Backoff(p, n, b); x != y {
			t.Fatalf("n=%d: same seed gave %v and %v", n, x, y)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		value *string
		want  time.Duration
		ok    bool
	}{
		{name: "absent"},
		{name: "empty", value: ptr("")},
		{name: "seconds", value: ptr("120"), want: 2 * time.Minute, ok: true},
		{name: "one second", value: ptr(" 1 "), want: time.Second, ok: true},
		{name: "zero", value: ptr("0")},
		{name: "negative", value: ptr("-5")},
		{name: "fraction", value: ptr("1.5")},
		{name: "huge seconds capped", value: ptr("9223372036"), want: hundredYears, ok: true},
		{name: "overflowing seconds", value: ptr("99999999999999999999999")},
		{name: "http date future", value: ptr("Wed, 02 Jan 2030 03:05:05 GMT"), want: time.Minute, ok: true},
		{name: "rfc850 date", value: ptr("Wednesday, 02-Jan-30 03:04:15 GMT"), want: 10 * time.Second, ok: true},
		{name: "asctime date", value: ptr("Wed Jan  2 03:04:25 2030"), want: 20 * time.Second, ok: true},
		{name: "http date now", value: ptr("Wed, 02 Jan 2030 03:04:05 GMT")},
		{name: "http date past", value: ptr("Tue, 01 Jan 2030 03:04:05 GMT")},
		{name: "garbage", value: ptr("soon")},
		{name: "date without zone", value: ptr("2030-01-02 03:05:05")},
		{name: "seconds with unit", value: ptr("5s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.value != nil {
				h.Set("Retry-After", *tt.value)
			}
			got, ok := task.RetryAfter(h, now)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("RetryAfter(%v) = %v, %v; want %v, %v", h, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func ptr(s string) *string { return &s }
