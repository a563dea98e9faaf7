// Package durparse reads the durations HTQ accepts from people: a number of
// seconds ("30", "0.5"), Go form ("500ms", "1m30s") or ISO 8601 form
// ("PT1M30S"), from 0 to about 100 years. A task's durations (task.Duration)
// and the configuration's (config.Duration) both read them here, so the two
// accept the same forms with the same messages; each wraps its own sentinel
// error.
package durparse

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Max bounds every duration accepted (about 100 years), so that arithmetic
// on milliseconds can never overflow.
const Max = 100 * 365 * 24 * time.Hour

var iso = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// Parse reads "1.5" (seconds), "500ms", "1m30s" or "PT1M30S". Its errors
// wrap bad, the caller's sentinel.
func Parse(s string, bad error) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", bad)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return Seconds(f, bad)
	}
	if up := strings.ToUpper(s); strings.HasPrefix(up, "P") {
		m := iso.FindStringSubmatch(up)
		if m == nil || up == "P" || strings.HasSuffix(up, "T") {
			return 0, fmt.Errorf("%w: %q", bad, Truncate(s, 64))
		}
		var total float64
		for i, unit := range []float64{86400, 3600, 60, 1} {
			if m[i+1] == "" {
				continue
			}
			f, _ := strconv.ParseFloat(m[i+1], 64)
			total += f * unit
		}
		return Seconds(total, bad)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: want seconds, \"500ms\", \"1m30s\" or \"PT1M30S\"", bad, Truncate(s, 64))
	}
	if v < 0 || v > Max {
		return 0, fmt.Errorf("%w: %q: want 0 to 100 years", bad, Truncate(s, 64))
	}
	return v, nil
}

// Seconds converts a number of seconds; its errors wrap bad.
func Seconds(f float64, bad error) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > Max.Seconds() {
		return 0, fmt.Errorf("%w: %v seconds: want 0 to %v", bad, f, Max.Seconds())
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Truncate shortens s to at most n bytes and an ellipsis, for an error
// message, without cutting a character in two.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
