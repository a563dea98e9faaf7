package lease

import (
	"testing"
	"time"
)

func TestValidity(t *testing.T) {
	t0 := time.Unix(1000, 0)
	v := New(10*time.Second, time.Second, t0)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {8 * time.Second, true}, {9*time.Second - 1, true}, {9 * time.Second, false}, {20 * time.Second, false}} {
		if got := v.Valid(t0.Add(c.at)); got != c.want {
			t.Errorf("valid at +%v = %v, want %v", c.at, got, c.want)
		}
	}
	// an extension sent later moves the validity; one sent earlier (a reply
	// that arrived late) does not move it back
	v.Extended(t0.Add(5 * time.Second))
	v.Extended(t0.Add(2 * time.Second))
	if !v.Valid(t0.Add(13*time.Second)) || v.Valid(t0.Add(14*time.Second)) {
		t.Errorf("until = %v, want +14s", v.Until().Sub(t0))
	}
	if v.LastExtended() != t0.Add(5*time.Second) {
		t.Errorf("last = %v", v.LastExtended())
	}
	if !v.Lose() || v.Lose() {
		t.Error("Lose reports the first loss only")
	}
	if v.Valid(t0) || !v.Until().IsZero() || !v.Lost() {
		t.Error("a lost lease is not valid")
	}
}
