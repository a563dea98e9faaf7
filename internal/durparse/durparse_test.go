package durparse

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var errMine = errors.New("my duration")

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30": 30 * time.Second, " 0.5 ": 500 * time.Millisecond, "1m30s": 90 * time.Second,
		"PT1M30S": 90 * time.Second, "p1d": 24 * time.Hour, "0": 0,
	} {
		got, err := Parse(in, errMine)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-1s", "P", "PT", "P1Y", "soon", "NaN", "1e12", "876600h1s"} {
		if _, err := Parse(in, errMine); !errors.Is(err, errMine) {
			t.Errorf("Parse(%q): %v, want an error wrapping the caller's sentinel", in, err)
		}
	}
}

func TestTruncateKeepsCharactersWhole(t *testing.T) {
	s := strings.Repeat("a", 63) + "é" // byte 64 falls inside é
	if got := Truncate(s, 64); got != strings.Repeat("a", 63)+"…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate("short", 64); got != "short" {
		t.Errorf("Truncate(short) = %q", got)
	}
}
