package config

import (
	"errors"
	"time"

	"github.com/htq/htq/internal/durparse"
)

// Duration is a configuration key's time.Duration. YAML and environment
// variables give it as a number of seconds ("30", "0.5"), in Go form
// ("500ms", "1m30s") or in ISO 8601 form ("PT1M30S"); it is written back in
// Go form. It is config's own type, the forms those of a task's durations,
// so that reading a file does not depend on the task model.
type Duration time.Duration

// errBadDuration starts the message of every duration that cannot be read.
var errBadDuration = errors.New("invalid duration")

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

// parseDuration reads every accepted form (package durparse).
func parseDuration(s string) (time.Duration, error) { return durparse.Parse(s, errBadDuration) }
