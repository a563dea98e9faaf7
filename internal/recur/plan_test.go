package recur

import (
	"errors"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustParse(t *testing.T, spec, zone string) *Plan {
	t.Helper()
	p, err := Parse(spec, zone)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", spec, zone, err)
	}
	return p
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		spec, zone string
		want       error
	}{
		{"", "UTC", ErrBadCron},
		{"* * * *", "UTC", ErrBadCron},             // 4 fields
		{"* * * * * * *", "UTC", ErrBadCron},       // 7 fields
		{"61 * * * *", "UTC", ErrBadCron},          // minute out of range
		{"* 24 * * *", "UTC", ErrBadCron},          // hour out of range
		{"* * 32 * *", "UTC", ErrBadCron},          // day out of range
		{"* * * 13 *", "UTC", ErrBadCron},          // month out of range
		{"* * * * 8", "UTC", ErrBadCron},           // weekday out of range
		{"@fortnightly", "UTC", ErrBadCron},        // unknown descriptor
		{"@every", "UTC", ErrBadCron},              // no interval
		{"@every 500ms", "UTC", ErrBadCron},        // under a second
		{"@every 1.5s", "UTC", ErrBadCron},         // a fraction robfig would drop
		{"@every -5s", "UTC", ErrBadCron},          // negative
		{"TZ=UTC * * * * *", "UTC", ErrBadCron},    // zone in the expression
		{"CRON_TZ=UTC 0 * * * *", "", ErrBadCron},  // zone in the expression
		{"0 * * * *", "Mars/Olympus", ErrBadZone},  // unknown zone
		{"0 * * * *", "Local", ErrBadZone},         // host dependent
		{"0 * * * *", "europe/berlin", ErrBadZone}, // names are case sensitive
	} {
		if _, err := Parse(c.spec, c.zone); !errors.Is(err, c.want) {
			t.Errorf("Parse(%q, %q) = %v, want %v", c.spec, c.zone, err, c.want)
		}
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		spec, zone, after string
		want              []string
	}{
		{"*/15 * * * *", "UTC", "2026-01-01T10:07:00Z", []string{"2026-01-01T10:15:00Z", "2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z"}},
		{"30 * * * * *", "UTC", "2026-01-01T10:07:30Z", []string{"2026-01-01T10:08:30Z", "2026-01-01T10:09:30Z"}},
		{"@hourly", "UTC", "2026-01-01T10:00:00Z", []string{"2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"}},
		{"@daily", "Europe/Berlin", "2026-01-01T12:00:00Z", []string{"2026-01-01T23:00:00Z", "2026-01-02T23:00:00Z"}},
		{"@weekly", "UTC", "2026-01-01T00:00:00Z", []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}}, // Sundays
		{"@monthly", "America/New_York", "2026-01-15T00:00:00Z", []string{"2026-02-01T05:00:00Z", "2026-03-01T05:00:00Z"}},
		{"0 9 * * 1-5", "America/New_York", "2026-01-02T15:00:00Z", []string{"2026-01-05T14:00:00Z", "2026-01-06T14:00:00Z"}}, // Friday after 9:00 → Monday
		{"@every 90s", "UTC", "2026-01-01T10:00:00Z", []string{"2026-01-01T10:01:30Z", "2026-01-01T10:03:00Z"}},
		{"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", []string{"2028-02-29T00:00:00Z"}},
	} {
		p := mustParse(t, c.spec, c.zone)
		got := p.NextN(at(t, c.after), len(c.want))
		if len(got) != len(c.want) {
			t.Errorf("%s in %s after %s: %v, want %v", c.spec, c.zone, c.after, got, c.want)
			continue
		}
		for i := range got {
			if !got[i].Equal(at(t, c.want[i])) {
				t.Errorf("%s in %s after %s: run %d = %s, want %s", c.spec, c.zone, c.after, i, got[i].UTC().Format(time.RFC3339), c.want[i])
			}
		}
	}
	if got := mustParse(t, "0 0 30 2 *", "UTC").Next(at(t, "2026-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("February 30 fires at %s", got)
	}
}

// dstCases are the rules in both zones: a skipped wall-clock time
// fires once at the first valid instant after it, a repeated one once at
// its first occurrence, @every ignores the wall clock.
var dstCases = []struct {
	name, spec, zone, after string
	want                    []string // instants, RFC 3339 with the zone's offset
}{
	// Europe/Berlin springs forward on 2026-03-29 at 02:00 CET to 03:00 CEST.
	{"berlin spring skipped daily time", "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+01:00",
		[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
	{"berlin spring every minute of the gap fires once", "*/20 2 * * *", "Europe/Berlin", "2026-03-29T01:50:00+01:00",
		[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
	{"berlin spring hourly", "0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00+01:00",
		[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
	// Europe/Berlin falls back on 2026-10-25 at 03:00 CEST to 02:00 CET.
	{"berlin autumn repeated daily time fires once", "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+02:00",
		[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
	{"berlin autumn hourly skips the repeated hour", "0 * * * *", "Europe/Berlin", "2026-10-25T01:30:00+02:00",
		[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"}},
	{"berlin autumn from inside the repeated hour", "30 2 * * *", "Europe/Berlin", "2026-10-25T02:10:00+01:00",
		[]string{"2026-10-26T02:30:00+01:00"}},
	{"berlin every 30 min", "@every 30m", "Europe/Berlin", "2026-10-25T02:00:00+02:00",
		[]string{"2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"}},
	// America/New_York springs forward on 2026-03-08 at 02:00 EST to 03:00 EDT.
	{"new york spring skipped daily time", "30 2 * * *", "America/New_York", "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
	{"new york spring seconds in the gap", "15 45 2 * * *", "America/New_York", "2026-03-08T01:59:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:45:15-04:00"}},
	// America/New_York falls back on 2026-11-01 at 02:00 EDT to 01:00 EST.
	{"new york autumn repeated daily time fires once", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
	{"new york autumn every minute of the repeated hour once", "0 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00",
		[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00"}},
	{"new york every hour", "@every 1h", "America/New_York", "2026-11-01T00:00:00-04:00",
		[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
	{"new york every hour over spring", "@every 1h", "America/New_York", "2026-03-08T01:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
}

func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	for _, c := range dstCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, c.spec, c.zone)
			got := p.NextN(at(t, c.after), len(c.want))
			for i, w := range c.want {
				if i >= len(got) || !got[i].Equal(at(t, w)) {
					t.Fatalf("runs after %s: %v, want %v", c.after, fmtAll(got), c.want)
				}
				if s := got[i].Format(time.RFC3339); s != w {
					t.Errorf("run %d shown as %s, want %s", i, s, w)
				}
			}
		})
	}
}

// TestRobfigDaylightSaving documents where robfig/cron on its own breaks
// the rules, which is why Plan maps wall-clock times itself: it skips a
// wall-clock time the spring change removes (no run that day), and fires a
// time the autumn change repeats twice.
func TestRobfigDaylightSaving(t *testing.T) {
	t.Parallel()
	parse := func(spec, zone string) cron.Schedule {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatal(err)
		}
		s.(*cron.SpecSchedule).Location = loc
		return s
	}
	spring := parse("30 2 * * *", "Europe/Berlin").Next(at(t, "2026-03-28T12:00:00+01:00"))
	if want := at(t, "2026-03-29T03:00:00+02:00"); spring.Equal(want) {
		t.Errorf("robfig/cron now fires the skipped time at %s: Plan's correction may be unneeded", spring)
	}
	ours := mustParse(t, "30 2 * * *", "Europe/Berlin").Next(at(t, "2026-03-28T12:00:00+01:00"))
	if want := at(t, "2026-03-29T03:00:00+02:00"); !ours.Equal(want) {
		t.Errorf("Plan fires the skipped time at %s, want %s", ours, want)
	}
	s := parse("0 * * * *", "Europe/Berlin")
	first := s.Next(at(t, "2026-10-25T01:30:00+02:00"))
	second := s.Next(first)
	t.Logf("robfig/cron hourly over the autumn change: %s, %s (spring daily: %s)", first, second, spring)
	if second.Sub(first) != time.Hour {
		t.Errorf("robfig/cron no longer fires the repeated 02:00: %s then %s", first, second)
	}
}

func fmtAll(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format(time.RFC3339)
	}
	return out
}
