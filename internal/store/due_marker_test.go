package store

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
)

// TestMarksAheadShareARound: a mark due now is applied at once; marks for
// later wait (up to markDefer, and markLead before their time) and are
// coalesced, so a wake-up's mark costs no request of its own; a flush
// applies them at once.
func TestMarksAheadShareARound(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := t.Context()
	keys := NewKeys("t:")
	m := newDueMarker(rdb, keys, clock.Real{})
	t.Cleanup(func() { m.close(ctx) })
	score := func(p int) (int64, bool) {
		t.Helper()
		v, err := rdb.ZScore(ctx, keys.DueIndex(DueReady), strconv.Itoa(p)).Result()
		if err != nil {
			return 0, false
		}
		return int64(v), true
	}
	now := clock.Millis(time.Now())
	ahead := now + 10_000
	for i := range 50 { // fifty wake-ups of one partition, heard
		m.add(1, marks{ahead + int64(i)})
	}
	time.Sleep(markDefer / 4)
	if _, ok := score(1); ok {
		t.Fatal("a mark ahead went at once")
	}
	m.add(2, marks{now}) // a wake-up nobody heard: at once, and the waiting one with it
	deadline := time.Now().Add(markDefer / 2)
	for {
		_, ok1 := score(1)
		if _, ok2 := score(2); ok1 && ok2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a mark due now waited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if at, _ := score(1); at != ahead {
		t.Fatalf("coalesced mark = %d, want the earliest, %d", at, ahead)
	}
	if n := zaddCalls(t, srv); n != 2 {
		t.Fatalf("%d ZADDs for 51 marks of two partitions", n)
	}

	m.add(6, marks{ahead}) // alone: it waits up to markDefer
	time.Sleep(markDefer + 300*time.Millisecond)
	if at, ok := score(6); !ok || at != ahead {
		t.Fatalf("mark ahead after markDefer: %d, %v; want %d", at, ok, ahead)
	}

	m.add(3, marks{ahead})
	if err := m.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := score(3); !ok || at != ahead {
		t.Fatalf("flushed mark: %d, %v", at, ok)
	}

	// a mark shortly ahead goes markLead before its time, whatever waits
	m.add(4, marks{clock.Millis(time.Now()) + 10_000})
	soon := clock.Millis(time.Now()) + 400
	m.add(5, marks{soon})
	for clock.Millis(time.Now()) < soon {
		if _, ok := score(5); ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("a mark shortly ahead was applied after its time")
}

func zaddCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	info, err := srv.Client(t).Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for line := range strings.SplitSeq(info, "\r\n") {
		var calls int
		if _, err := fmt.Sscanf(line, "cmdstat_zadd:calls=%d,", &calls); err == nil {
			n = calls
		}
	}
	return n
}

// TestTimerMarksAheadGoAtOnce: the scheduler leader sleeps until the
// earliest entry of the timer and schedule indexes it sees, so their marks
// for a time ahead must not wait to share a round (a variable task's next
// call came up to scheduler.poll_interval late when they did).
func TestTimerMarksAheadGoAtOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := t.Context()
	keys := NewKeys("t:")
	m := newDueMarker(rdb, keys, clock.Real{})
	t.Cleanup(func() { m.close(ctx) })
	ahead := clock.Millis(time.Now()) + 10_000
	var mk marks
	mk[DueTimers], mk[DueSchedules] = ahead, ahead+1
	m.add(3, mk)
	deadline := time.Now().Add(markDefer / 4)
	for {
		_, e1 := rdb.ZScore(ctx, keys.DueIndex(DueTimers), "3").Result()
		_, e2 := rdb.ZScore(ctx, keys.DueIndex(DueSchedules), "3").Result()
		if e1 == nil && e2 == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer and schedule marks ahead waited (%v, %v)", e1, e2)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
