package recur

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Errors of a plan that cannot be used.
var (
	ErrBadCron = errors.New("invalid cron expression")
	ErrBadZone = errors.New("unknown time zone")
)

// MinEvery is the shortest @every interval (robfig/cron rounds shorter ones
// up to it silently; we refuse them instead).
const MinEvery = time.Second

// maxSteps bounds the wall-clock steps one Next takes past instants that are
// not after its argument (at most an hour of every-second times repeated by
// an autumn change).
const maxSteps = 4000

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Plan is a parsed cron expression or interval in a time zone.
type Plan struct {
	spec  string
	loc   *time.Location
	wall  *cron.SpecSchedule // nil for @every
	every time.Duration
}

var zones sync.Map // name -> *time.Location (time.LoadLocation reads a file every call)

// LoadZone returns the IANA time zone name ("" is UTC). "Local" is refused:
// it means whatever the host says.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		name = "UTC"
	}
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("%w: %q: want an IANA name such as Europe/Berlin", ErrBadZone, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: want an IANA name such as Europe/Berlin", ErrBadZone, name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// Parse reads a cron expression (5 fields, or 6 with seconds first; @hourly,
// @daily, @weekly, @monthly, @yearly, @every <duration>) in the IANA zone
// (default UTC).
func Parse(spec, zone string) (*Plan, error) {
	loc, err := LoadZone(zone)
	if err != nil {
		return nil, err
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadCron)
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("%w: %q: set the zone with time_zone, not in the expression", ErrBadCron, spec)
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadCron, spec, err)
	}
	p := &Plan{spec: spec, loc: loc}
	switch s := s.(type) {
	case *cron.SpecSchedule:
		s.Location = time.UTC // wall-clock time; see the package comment
		p.wall = s
	case cron.ConstantDelaySchedule:
		// robfig/cron rounds a delay under a second up to one, and drops
		// fractions; refuse what it would change.
		d, perr := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(spec, "@every")))
		if perr != nil || d < MinEvery || d%time.Second != 0 {
			return nil, fmt.Errorf("%w: %q: want @every with a whole number of seconds, at least %s", ErrBadCron, spec, MinEvery)
		}
		p.every = s.Delay
	default:
		return nil, fmt.Errorf("%w: %q: unsupported", ErrBadCron, spec)
	}
	return p, nil
}

// Spec returns the expression as given (trimmed).
func (p *Plan) Spec() string { return p.spec }

// Location returns the plan's zone.
func (p *Plan) Location() *time.Location { return p.loc }

// Every returns the interval of an @every plan, 0 for a cron plan.
func (p *Plan) Every() time.Duration { return p.every }

// Next returns the plan's first instant strictly after t, or the zero time
// when there is none (robfig/cron looks five years ahead).
func (p *Plan) Next(t time.Time) time.Time {
	if p.every > 0 {
		return t.Truncate(time.Second).Add(p.every).In(p.loc)
	}
	w := wallOf(t, p.loc)
	for range maxSteps {
		w = p.wall.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if in := instant(w, p.loc); in.After(t) {
			return in
		}
	}
	return time.Time{}
}

// NextN returns the plan's first n instants strictly after t.
func (p *Plan) NextN(t time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for len(out) < n {
		t = p.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// wallOf returns t's wall-clock time in loc, as a UTC time.
func wallOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// instant maps a wall-clock time (a UTC time standing for it) to an instant
// in loc: the earliest instant that has that wall-clock time (the first of a
// time repeated by an autumn change), or, for a time skipped by a spring
// change, the instant of the change (the first valid instant after it).
// Transitions are assumed more than 14 hours apart.
func instant(w time.Time, loc *time.Location) time.Time {
	const span = 14 * time.Hour
	_, before := w.Add(-span).In(loc).Zone() // approximate: w is not an instant, but offsets are under 14h
	_, after := w.Add(span).In(loc).Zone()
	var best time.Time
	for _, off := range []int{before, after} {
		c := w.Add(-time.Duration(off) * time.Second)
		if wallOf(c, loc).Equal(w) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best.In(loc)
	}
	// A gap: w minus the offset before it lies after the change.
	c := w.Add(-time.Duration(min(before, after)) * time.Second)
	start, _ := c.In(loc).ZoneBounds()
	return start.In(loc)
}
