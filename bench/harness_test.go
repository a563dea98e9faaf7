package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCheckOrder(t *testing.T) {
	arr := func(qs ...string) []Arrival {
		var out []Arrival
		for _, q := range qs {
			out = append(out, Arrival{Method: "GET", Path: "/t", Query: q})
		}
		return out
	}
	rep := CheckOrder(arr("q=a&i=0", "q=b&i=0", "q=a&i=1", "q=b&i=1"), map[string]int{"a": 2, "b": 2})
	if !rep.OK() || rep.Queues != 2 || rep.Arrivals != 4 {
		t.Fatalf("want ok, got %s", rep)
	}
	rep = CheckOrder(arr("q=a&i=1", "q=a&i=0", "q=a&i=1", "q=a&i=7", "x=1"), map[string]int{"a": 3})
	if rep.OutOfOrder != 1 || rep.Duplicates != 1 || rep.Missing != 1 || rep.Unexpected != 1 || rep.Unparsed != 1 {
		t.Fatalf("unexpected report %s", rep)
	}
	if rep.Complete() || rep.OK() {
		t.Fatal("report must not be complete")
	}
	// Header fallback.
	rep = CheckOrder([]Arrival{{Queue: "a", Sequence: "0"}, {Queue: "a", Sequence: "1"}}, map[string]int{"a": 2})
	if !rep.OK() {
		t.Fatalf("header fallback: %s", rep)
	}
}

func TestParseCommandStats(t *testing.T) {
	s := "# Commandstats\r\ncmdstat_xack:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=1\r\n" +
		"cmdstat_xgroup|create:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n"
	cs := ParseCommandStats(s)
	if cs.Calls != 11 || cs.Usec != 25 || cs.Failed != 1 || cs.ByCmd["xgroup|create"].Calls != 1 {
		t.Fatalf("got %+v", cs)
	}
	d := cs.Sub(ParseCommandStats("cmdstat_xack:calls=4,usec=8"))
	if d.Calls != 7 || d.ByCmd["xack"].Calls != 6 {
		t.Fatalf("sub: %+v", d)
	}
}

func TestAggregateMedian(t *testing.T) {
	r := Aggregate([]Result{{Value: 3, Unit: "u", Note: "c"}, {Value: 1, Note: "a"}, {Value: 2, Unit: "u", Note: "b"}})
	if r.Value != 2 || r.Note != "b" || len(r.Runs) != 3 || r.Runs[0] != 3 {
		t.Fatalf("got %+v", r)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("even median %v", m)
	}
	if p := Percentile([]float64{5, 1, 2, 3, 4}, 99); p != 5 {
		t.Fatalf("p99 %v", p)
	}
}

func TestWriteResultsOmitsAbsent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "results.json")
	if err := WriteResults(path, Results{"x": {Value: 1234.5678, Unit: "tasks/s"}, "y": {Value: 1, Unit: "ms", P50: F(0.5), P99: F(2)}}, false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var m map[string]map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["x"]["p50"]; ok {
		t.Fatalf("p50 must be omitted: %s", b)
	}
	if m["y"]["p99"] != 2.0 || m["x"]["value"] != 1234.6 {
		t.Fatalf("got %s", b)
	}
	var sb strings.Builder
	PrintTable(&sb, Results{"x": {Value: 1, Unit: "u"}}, nil)
	if !strings.Contains(sb.String(), "scenario") {
		t.Fatal(sb.String())
	}
}

func TestTargetAndClient(t *testing.T) {
	tg, err := StartTarget(16)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	hc := NewHTTPClient(4)
	ctx := context.Background()
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := hc.Get(ctx, TaskURL(tg.URL, "/t", string(rune('a'+k)), i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := tg.WaitArrivals(wctx, 100, nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if rep := CheckOrder(tg.Arrivals(), map[string]int{"a": 25, "b": 25, "c": 25, "d": 25}); !rep.OK() {
		t.Fatal(rep)
	}
	// Without keep-alive the 100 calls would open ~100 connections. With it,
	// 4 callers need 4, but Go's transport may dial one more now and then: a
	// caller's next request can start before its previous connection is back
	// in the idle pool (readLoop returns it asynchronously), and the dialed
	// spare then sits idle. So allow up to 2 × concurrency (the idle pool's
	// size, see NewHTTPClient); `conns <= 4` failed ~1 run in 5 on a busy
	// machine.
	if c := tg.Conns(); c > 8 {
		t.Fatalf("keep-alive not reused: %d connections for 4 callers", c)
	}
	tg.SetStatus(500)
	if err := hc.Get(ctx, tg.URL+"/x"); err == nil {
		t.Fatal("want error on 500")
	}
}

func TestRedisStartStop(t *testing.T) {
	if _, err := exec.LookPath(redisBinary("")); err != nil {
		t.Skip("no redis-server")
	}
	ctx := context.Background()
	r, err := StartRedis(ctx, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Port == 6379 {
		t.Fatal("must not use the shared port")
	}
	if err := r.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.UsedMemory <= 0 || s.CPUSeconds < 0 || s.Cmds.ByCmd["set"].Calls != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	dir := r.Dir
	r.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s not removed", dir)
	}
	select {
	case <-r.exited:
	default:
		t.Fatal("redis-server still running")
	}
}
