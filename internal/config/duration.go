package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Duration is a configuration key's time.Duration. YAML and environment
// variables give it as a number of seconds ("30", "0.5"), in Go form
// ("500ms", "1m30s") or in ISO 8601 form ("PT1M30S"); it is written back in
// Go form. It is config's own type, the forms those of a task's durations,
// so that reading a file does not depend on the task model.
type Duration time.Duration

// errBadDuration starts the message of every duration that cannot be read.
var errBadDuration = errors.New("invalid duration")

// maxDuration bounds every duration accepted (about 100 years), as for a
// task's durations.
const maxDuration = 100 * 365 * 24 * time.Hour

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// UnmarshalText reads every accepted form; YAML and the environment use it.
// On error d is left as it was.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d in Go form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

var isoDuration = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration parses "1.5" (seconds), "500ms", "1m30s" or "PT1M30S".
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", errBadDuration)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return seconds(f)
	}
	if up := strings.ToUpper(s); strings.HasPrefix(up, "P") {
		m := isoDuration.FindStringSubmatch(up)
		if m == nil || up == "P" || strings.HasSuffix(up, "T") {
			return 0, fmt.Errorf("%w: %q", errBadDuration, truncate(s, 64))
		}
		var total float64
		for i, unit := range []float64{86400, 3600, 60, 1} {
			if m[i+1] == "" {
				continue
			}
			f, _ := strconv.ParseFloat(m[i+1], 64)
			total += f * unit
		}
		return seconds(total)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: want seconds, \"500ms\", \"1m30s\" or \"PT1M30S\"", errBadDuration, truncate(s, 64))
	}
	if v < 0 || v > maxDuration {
		return 0, fmt.Errorf("%w: %q: want 0 to 100 years", errBadDuration, truncate(s, 64))
	}
	return v, nil
}

// seconds converts a number of seconds.
func seconds(f float64) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxDuration.Seconds() {
		return 0, fmt.Errorf("%w: %v seconds: want 0 to %v", errBadDuration, f, maxDuration.Seconds())
	}
	return time.Duration(f * float64(time.Second)), nil
}

// truncate shortens s to at most n bytes and an ellipsis for an error
// message, without cutting a character in two.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
