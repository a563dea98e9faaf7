package task_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/htq/htq/internal/task"
)

// hundredYears is the largest duration the package accepts.
const hundredYears = 100 * 365 * 24 * time.Hour

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "0", want: 0},
		{in: "30", want: 30 * time.Second},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: "1.25", want: 1250 * time.Millisecond},
		{in: "0.001", want: time.Millisecond},
		{in: "1e3", want: 1000 * time.Second},
		{in: "  7  ", want: 7 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "2h", want: 2 * time.Hour},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "10us", want: 10 * time.Microsecond},
		{in: "0s", want: 0},
		{in: "PT1M30S", want: 90 * time.Second},
		{in: "pt1m30s", want: 90 * time.Second},
		{in: "PT0.5S", want: 500 * time.Millisecond},
		{in: "PT2H", want: 2 * time.Hour},
		{in: "P1D", want: 24 * time.Hour},
		{in: "P1DT1H1M1S", want: 25*time.Hour + time.Minute + time.Second},
		{in: "P1.5D", want: 36 * time.Hour},
		{in: "PT0S", want: 0},
		{in: "-0", want: 0},
		{in: "P36500D", want: hundredYears},
		{in: "3153600000", want: hundredYears},

		{in: "", err: true},
		{in: "   ", err: true},
		{in: "-1", err: true},
		{in: "-0.001", err: true},
		{in: "-1s", err: true},
		{in: "-500ms", err: true},
		{in: "NaN", err: true},
		{in: "nan", err: true},
		{in: "Inf", err: true},
		{in: "+Inf", err: true},
		{in: "-Inf", err: true},
		{in: "infinity", err: true},
		{in: "1e400", err: true},
		{in: "1e308", err: true},
		{in: "3153600001", err: true},
		{in: "876001h", err: true},
		{in: "9999999999h", err: true},
		{in: "P36501D", err: true},
		{in: "P99999999999999999999D", err: true},
		{in: "P", err: true},
		{in: "PT", err: true},
		{in: "P1DT", err: true},
		{in: "P1H", err: true},
		{in: "PT1D", err: true},
		{in: "PT1S1M", err: true},
		{in: "P-1D", err: true},
		{in: "PT1,5S", err: true},
		{in: "abc", err: true},
		{in: "1 s", err: true},
		{in: "5 minutes", err: true},
		{in: "1m30", err: true},
		{in: "0x10", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := task.ParseDuration(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got.Std())
				}
				if !errors.Is(err, task.ErrBadDuration) {
					t.Fatalf("ParseDuration(%q) error %v does not wrap ErrBadDuration", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got.Std() != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, want %v", tt.in, got.Std(), tt.want)
			}
		})
	}
}

func TestDurationUnmarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: `30`, want: 30 * time.Second},
		{in: `0`, want: 0},
		{in: `0.5`, want: 500 * time.Millisecond},
		{in: `1e2`, want: 100 * time.Second},
		{in: `"500ms"`, want: 500 * time.Millisecond},
		{in: `"1m30s"`, want: 90 * time.Second},
		{in: `"PT1M30S"`, want: 90 * time.Second},
		{in: `"2"`, want: 2 * time.Second},
		{in: `" 2s "`, want: 2 * time.Second},
		{in: `"\u0032s"`, want: 2 * time.Second},

		{in: `-1`, err: true},
		{in: `"-1s"`, err: true},
		{in: `""`, err: true},
		{in: `"NaN"`, err: true},
		{in: `"Inf"`, err: true},
		{in: `1e400`, err: true},
		{in: `1e300`, err: true},
		{in: `true`, err: true},
		{in: `[]`, err: true},
		{in: `{}`, err: true},
		{in: `"abc"`, err: true},
		{in: `"unterminated`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var got struct {
				D task.Duration `json:"d"`
			}
			err := json.Unmarshal([]byte(`{"d":`+tt.in+`}`), &got)
			if tt.err {
				if err == nil {
					t.Fatalf("unmarshal %s = %v, want an error", tt.in, got.D.Std())
				}
				return
			}
			if err != nil {
				t.Fatalf("unmarshal %s: %v", tt.in, err)
			}
			if got.D.Std() != tt.want {
				t.Fatalf("unmarshal %s = %v, want %v", tt.in, got.D.Std(), tt.want)
			}
		})
	}
}

func TestDurationUnmarshalJSONErrorsWrapErrBadDuration(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`-1`, `"-1s"`, `true`, `"x"`, `"NaN"`, `1e300`} {
		var d task.Duration
		err := d.UnmarshalJSON([]byte(in))
		if !errors.Is(err, task.ErrBadDuration) {
			t.Errorf("UnmarshalJSON(%s) = %v, want ErrBadDuration", in, err)
		}
	}
}

func TestDurationJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{
		0, time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond,
		time.Second, 1100 * time.Millisecond, 90 * time.Second, 25 * time.Hour, hundredYears,
	} {
		b, err := json.Marshal(task.Duration(d))
		if err != nil {
			t.Fatalf("marshal %v: %v", d, err)
		}
		var got task.Duration
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if got.Std() != d {
			t.Errorf("%v -> %s -> %v", d, b, got.Std())
		}
	}
}

func TestDurationMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d        time.Duration
		json     string
		millisUp int64
	}{
		{0, "0", 0},
		{time.Nanosecond, "0.000000001", 1},
		{1500 * time.Millisecond, "1.5", 1500},
		{90 * time.Second, "90", 90000},
		{time.Millisecond + 1, "0.001000001", 2},
	}
	for _, tt := range tests {
		d := task.Duration(tt.d)
		b, err := json.Marshal(d)
		if err != nil || string(b) != tt.json {
			t.Errorf("json.Marshal(%v) = %s, %v; want %s", tt.d, b, err, tt.json)
		}
		if got := d.Millis(); got != tt.millisUp {
			t.Errorf("Millis(%v) = %d, want %d", tt.d, got, tt.millisUp)
		}
	}
}

func TestSecondsDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want time.Duration
		err  bool
	}{
		{in: 0, want: 0},
		{in: 1, want: time.Second},
		{in: 0.25, want: 250 * time.Millisecond},
		{in: hundredYears.Seconds(), want: hundredYears},
		{in: math.Copysign(0, -1), want: 0},
		{in: -1e-9, err: true},
		{in: -1, err: true},
		{in: math.NaN(), err: true},
		{in: math.Inf(1), err: true},
		{in: math.Inf(-1), err: true},
		{in: math.MaxFloat64, err: true},
		{in: hundredYears.Seconds() + 1, err: true},
	}
	for _, tt := range tests {
		got, err := task.SecondsDuration(tt.in)
		if tt.err {
			if !errors.Is(err, task.ErrBadDuration) {
				t.Errorf("SecondsDuration(%v) = %v, %v; want ErrBadDuration", tt.in, got.Std(), err)
			}
			continue
		}
		if err != nil || got.Std() != tt.want {
			t.Errorf("SecondsDuration(%v) = %v, %v; want %v", tt.in, got.Std(), err, tt.want)
		}
	}
}
