package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
)

// TestYoungNamesForgetOldEntries: the record of listed young queues drops
// what is past the young window each time it doubles, so a process that
// creates queues all day keeps about the recent ones, never all.
func TestYoungNamesForgetOldEntries(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	clk := clock.NewFake(time.Now())
	s, err := New(rdb, "t:", clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	first := clock.Millis(clk.Now())
	for i := range 1500 { // all recent: nothing to drop at 1024, next look at 2048
		s.listYoung(ctx, fmt.Sprintf("old%d", i), first)
	}
	if n := len(s.young.listed); n != 1500 {
		t.Fatalf("%d entries after 1500 recent ones, want 1500", n)
	}
	clk.Advance(youngKeep*time.Millisecond + time.Second)
	for i := range 600 { // the 549th reaches 2048: the 1500 old ones go
		s.listYoung(ctx, fmt.Sprintf("new%d", i), clock.Millis(clk.Now()))
	}
	if n := len(s.young.listed); n != 600 {
		t.Fatalf("%d entries kept, want the 600 recent ones", n)
	}
	if got, err := rdb.ZCard(ctx, s.keys.Names()).Result(); err != nil || got != 2100 {
		t.Fatalf("names index holds %d (%v), want 2100", got, err)
	}
}
