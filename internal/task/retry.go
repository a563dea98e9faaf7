package task

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verdict is what HTQ does after a call.
type Verdict int

// Verdicts: success ends (or, for a variable task, reschedules) the task;
// retry tries again after a backoff if attempts remain; permanent ends the
// task as dead at once.
const (
	VerdictSuccess Verdict = iota
	VerdictRetry
	VerdictPermanent
)

func (v Verdict) String() string {
	switch v {
	case VerdictSuccess:
		return "success"
	case VerdictRetry:
		return "retry"
	default:
		return "permanent"
	}
}

// Judge classifies an HTTP status: 2xx succeeds; 5xx, 408, 425 and 429 are
// worth retrying; every other status (other 4xx, 3xx redirects that were not
// followed, 1xx) is permanent. Transport errors are classified by the caller.
func Judge(status int) Verdict {
	switch {
	case status >= 200 && status < 300:
		return VerdictSuccess
	case status >= 500, status == http.StatusTooManyRequests,
		status == http.StatusRequestTimeout, status == http.StatusTooEarly:
		return VerdictRetry
	default:
		return VerdictPermanent
	}
}

// Backoff returns the wait before attempt n+1 after n failed attempts:
// exponential with full jitter, uniform in [min, min(max, min·2^(n-1))].
func Backoff(p RetryPolicy, n int, r *rand.Rand) time.Duration {
	lo, hi := p.MinBackoff.Std(), p.MaxBackoff.Std()
	if hi <= lo {
		return lo
	}
	ceil := lo
	for i := 1; i < n && ceil < hi; i++ {
		ceil *= 2
		if ceil <= 0 { // lo was 0
			ceil = hi
		}
	}
	ceil = min(max(ceil, lo), hi)
	if ceil == lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(ceil-lo)+1))
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date) relative to
// now. It reports false when absent, invalid or not in the future.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxDuration/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return d, d > 0
}
