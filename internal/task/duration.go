package task

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/htq/htq/internal/durparse"
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
const maxDuration = durparse.Max

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
	v, err := durparse.Seconds(f, ErrBadDuration)
	return Duration(v), err
}

// ParseDuration parses "1.5" (seconds), "500ms", "1m30s" or "PT1M30S"
// (package durparse).
func ParseDuration(s string) (Duration, error) {
	v, err := durparse.Parse(s, ErrBadDuration)
	return Duration(v), err
}
