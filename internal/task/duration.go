package task

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that JSON accepts as a number of seconds
// (30, 0.5) or as a string in Go form ("500ms", "1m30s") or ISO 8601 form
// ("PT1M30S"). It is written back as a number of seconds. (The
// configuration's durations, config.Duration, accept the same forms.)
type Duration time.Duration

// ErrBadDuration reports a duration that cannot be parsed or is negative.
var ErrBadDuration error = invalid("invalid duration")

// maxDuration bounds every duration we accept (about 100 years), so that
// arithmetic on milliseconds can never overflow.
const maxDuration = 100 * 365 * 24 * time.Hour

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Millis returns d in whole milliseconds, rounded up so that a positive
// duration never becomes zero.
func (d Duration) Millis() int64 {
	return (int64(d) + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// MillisPtr is d.Millis() for an optional duration: nil stays nil.
func (d *Duration) MillisPtr() *int64 {
	if d == nil {
		return nil
	}
	ms := d.Millis()
	return &ms
}

// MarshalJSON writes d as seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(d).Seconds(), 'f', -1, 64)), nil
}

// UnmarshalJSON reads seconds (number) or a Go / ISO 8601 duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %w", ErrBadDuration, err)
		}
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%w: want seconds or a string like \"500ms\"", ErrBadDuration)
	}
	v, err := SecondsDuration(f)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// SecondsDuration converts a number of seconds.
func SecondsDuration(f float64) (Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxDuration.Seconds() {
		return 0, fmt.Errorf("%w: %v seconds: want 0 to %v", ErrBadDuration, f, maxDuration.Seconds())
	}
	return Duration(time.Duration(f * float64(time.Second))), nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// ParseDuration parses "1.5" (seconds), "500ms", "1m30s" or "PT1M30S".
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadDuration)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return SecondsDuration(f)
	}
	if up := strings.ToUpper(s); strings.HasPrefix(up, "P") {
		m := isoDuration.FindStringSubmatch(up)
		if m == nil || up == "P" || strings.HasSuffix(up, "T") {
			return 0, fmt.Errorf("%w: %q", ErrBadDuration, truncate(s, 64))
		}
		var total float64
		for i, unit := range []float64{86400, 3600, 60, 1} {
			if m[i+1] == "" {
				continue
			}
			f, _ := strconv.ParseFloat(m[i+1], 64)
			total += f * unit
		}
		return SecondsDuration(total)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: want seconds, \"500ms\", \"1m30s\" or \"PT1M30S\"", ErrBadDuration, truncate(s, 64))
	}
	if v < 0 || v > maxDuration {
		return 0, fmt.Errorf("%w: %q: want 0 to 100 years", ErrBadDuration, truncate(s, 64))
	}
	return Duration(v), nil
}
