package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/htq/htq/internal/durparse"
	"github.com/htq/htq/internal/task"
)

// durationInputs are the forms a duration key is given in, good and bad.
var durationInputs = []struct {
	in   string
	want time.Duration
	err  bool
}{
	{in: "0", want: 0},
	{in: "30", want: 30 * time.Second},
	{in: "0.5", want: 500 * time.Millisecond},
	{in: "0.001", want: time.Millisecond},
	{in: "1e3", want: 1000 * time.Second},
	{in: "  7  ", want: 7 * time.Second},
	{in: "500ms", want: 500 * time.Millisecond},
	{in: "1m30s", want: 90 * time.Second},
	{in: "1.5h", want: 90 * time.Minute},
	{in: "10us", want: 10 * time.Microsecond},
	{in: "PT1M30S", want: 90 * time.Second},
	{in: "pt1m30s", want: 90 * time.Second},
	{in: "PT0.5S", want: 500 * time.Millisecond},
	{in: "P1DT1H1M1S", want: 25*time.Hour + time.Minute + time.Second},
	{in: "P1.5D", want: 36 * time.Hour},
	{in: "-0", want: 0},
	{in: "P36500D", want: durparse.Max},
	{in: "3153600000", want: durparse.Max},

	{in: "", err: true},
	{in: "   ", err: true},
	{in: "-1", err: true},
	{in: "-1s", err: true},
	{in: "NaN", err: true},
	{in: "+Inf", err: true},
	{in: "1e400", err: true},
	{in: "3153600001", err: true},
	{in: "876001h", err: true},
	{in: "P36501D", err: true},
	{in: "P", err: true},
	{in: "PT", err: true},
	{in: "P1H", err: true},
	{in: "PT1S1M", err: true},
	{in: "soon", err: true},
	{in: "1 s", err: true},
	{in: "1m30", err: true},
	{in: "0x10", err: true},
	{in: strings.Repeat("x", 100), err: true},
	{in: strings.Repeat("é", 40), err: true},
}

func TestDurationUnmarshalText(t *testing.T) {
	t.Parallel()
	for _, tt := range durationInputs {
		d := Duration(42) // left alone on error
		err := d.UnmarshalText([]byte(tt.in))
		switch {
		case tt.err && err == nil:
			t.Errorf("UnmarshalText(%q) = %v, want an error", tt.in, d.Std())
		case tt.err && !errors.Is(err, errBadDuration):
			t.Errorf("UnmarshalText(%q) error %v does not wrap errBadDuration", tt.in, err)
		case tt.err && d != 42:
			t.Errorf("UnmarshalText(%q) changed the value to %v on error", tt.in, d.Std())
		case !tt.err && (err != nil || d.Std() != tt.want):
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.in, d.Std(), err, tt.want)
		}
	}
}

// TestDurationMatchesTaskDuration keeps config's durations and a task's in
// step: the same forms are accepted, with the same values, and the same
// messages for the refused ones, so a setting reads like a task field.
func TestDurationMatchesTaskDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range durationInputs {
		var c Duration
		cerr := c.UnmarshalText([]byte(tt.in))
		k, kerr := task.ParseDuration(tt.in)
		if (cerr == nil) != (kerr == nil) || c.Std() != k.Std() {
			t.Errorf("%q: config %v, %v; task %v, %v", tt.in, c.Std(), cerr, k.Std(), kerr)
			continue
		}
		if cerr != nil && cerr.Error() != kerr.Error() {
			t.Errorf("%q: config says %q, task says %q", tt.in, cerr, kerr)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "d: 2", want: 2 * time.Second},
		{in: "d: 0.25", want: 250 * time.Millisecond},
		{in: "d: 1m", want: time.Minute},
		{in: `d: "PT2S"`, want: 2 * time.Second},
		{in: "d: -2s", err: `invalid duration: "-2s": want 0 to 100 years`},
		{in: "d: .nan", err: "invalid duration"},
		{in: "d: soon", err: `invalid duration: "soon": want seconds, "500ms", "1m30s" or "PT1M30S"`},
	}
	for _, tt := range tests {
		var v struct {
			D Duration `yaml:"d"`
		}
		err := yaml.Unmarshal([]byte(tt.in), &v)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one containing %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || v.D.Std() != tt.want):
			t.Errorf("%s: %v, %v; want %v", tt.in, v.D.Std(), err, tt.want)
		}
	}
}

func TestDurationMarshalText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		text string
	}{
		{0, "0s"}, {time.Nanosecond, "1ns"}, {1500 * time.Millisecond, "1.5s"}, {90 * time.Second, "1m30s"},
		{time.Millisecond + 1, "1.000001ms"}, {24 * time.Hour, "24h0m0s"},
	} {
		b, err := Duration(tt.d).MarshalText()
		if err != nil || string(b) != tt.text {
			t.Errorf("MarshalText(%v) = %s, %v; want %s", tt.d, b, err, tt.text)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back.Std() != tt.d {
			t.Errorf("%v -> %s -> %v, %v", tt.d, b, back.Std(), err)
		}
	}
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{
		"0", "30", "0.5", "-1", "1e400", "NaN", "-0", "500ms", "1m30s", "-1s", "9999999999h",
		"PT1M30S", "P1DT2H", "P", "PT", "P1.5D", "pt0.000000001s", "", " ", "3153600000.5", "0x1p4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		err := d.UnmarshalText([]byte(s))
		k, kerr := task.ParseDuration(s)
		if (err == nil) != (kerr == nil) || d.Std() != k.Std() {
			t.Fatalf("%q: config %v, %v; task %v, %v", s, d.Std(), err, k.Std(), kerr)
		}
		if err != nil {
			return
		}
		if d < 0 || d.Std() > durparse.Max {
			t.Fatalf("%q = %v: outside 0 to 100 years", s, d.Std())
		}
		// the text form reads back to the same value
		text, _ := d.MarshalText()
		var back Duration
		if err := back.UnmarshalText(text); err != nil || back != d {
			t.Fatalf("%q = %v; its text %q reads back as %v, %v", s, d.Std(), text, back.Std(), err)
		}
	})
}
