package main

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStreamKeyMatchesTheStore(t *testing.T) {
	// Partitions as github.com/htq/htq/internal/task.Partition computes them.
	for q, want := range map[string]string{
		"q1":               "htq:{p114}:s:q1",
		"restart-r1-abc-7": "htq:{p135}:s:restart-r1-abc-7",
	} {
		if got := streamKey("htq:", q); got != want {
			t.Errorf("streamKey(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestStreamConsumers(t *testing.T) {
	if _, err := exec.LookPath(redisBinary("")); err != nil {
		t.Skip("no redis-server")
	}
	ctx := context.Background()
	r, err := StartRedis(ctx, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	// a: two consumers, one holding an entry; b: none; c: one.
	for q, consumers := range map[string][]string{"a": {"x", "y"}, "b": nil, "c": {"z"}} {
		key := streamKey("htq:", q)
		if err := r.Client.XGroupCreateMkStream(ctx, key, streamGroup, "$").Err(); err != nil {
			t.Fatal(err)
		}
		for _, c := range consumers {
			if err := r.Client.XGroupCreateConsumer(ctx, key, streamGroup, c).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := streamKey("htq:", "a")
	if err := r.Client.XAdd(ctx, &redis.XAddArgs{Stream: a, Values: []string{"t", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: streamGroup, Consumer: "x", Streams: []string{a, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := streamConsumers(ctx, r.Client, "htq:", []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (consumerCount{total: 3, max: 2, overOne: 1, withPending: 1}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A queue without a stream means the key names drifted from the store's.
	if _, err := streamConsumers(ctx, r.Client, "htq:", []string{"a", "missing"}); err == nil {
		t.Fatal("a missing stream was not reported")
	}
}

func TestKeyKind(t *testing.T) {
	for key, want := range map[string]string{
		"htq:{p007}:m:orders":     "m",
		"htq:{p007}:s:a:b":        "s",
		"htq:{p255}:u:0000000001": "u",
		"htq:{p007}:ready":        "partition",
		"htq:names":               "global",
		"htq:due:ready":           "global",
		"other:{p001}:m:q":        "global",
	} {
		if got := keyKind("htq:", key); got != want {
			t.Errorf("keyKind(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestTrickleExpectedAndLatencies(t *testing.T) {
	names := []string{"a", "b", "c"}
	// 7 tasks after one each: a gets indexes 1,2,3; b 1,2; c 1,2.
	exp := trickleExpected(names, 1, 7)
	if exp["a"] != 4 || exp["b"] != 3 || exp["c"] != 3 {
		t.Fatalf("expected %v", exp)
	}
	sendT := []int64{100, 200, 300, 400, 500, 600, 700}
	var arr []Arrival
	add := func(q string, i int, at int64) {
		arr = append(arr, Arrival{T: at, Path: "/t", Query: "q=" + q + "&i=" + strconv.Itoa(i)})
	}
	add("a", 0, 1) // the setup's task: not a sample
	for j := range 7 {
		add(names[j%3], 1+j/3, sendT[j]+int64(10*(j+1)))
	}
	add("a", 1, 9999) // a duplicate: the first arrival counts
	lat, err := pickupLatencies(arr, names, 1, sendT)
	if err != nil {
		t.Fatal(err)
	}
	for j, l := range lat {
		if l != int64(10*(j+1)) {
			t.Fatalf("latency %d = %d, want %d", j, l, 10*(j+1))
		}
	}
	if _, err := pickupLatencies(arr[:5], names, 1, sendT); err == nil || !strings.Contains(err.Error(), "did not arrive") {
		t.Fatalf("a missing arrival: %v", err)
	}
}

func TestJudge(t *testing.T) {
	res := Results{
		"dispatch_multi":     {Value: 12000, Unit: "tasks/s", Extra: map[string]float64{"redis_cpu_us_per_task": 40}},
		"asynq_c10":          {Value: 9000, Unit: "tasks/s"},
		"ceiling_multi_proc": {Value: 12500, Unit: "tasks/s"},
		"idle":               {Value: 50, Unit: "cmds/s"},
		"wakeup_1":           {Value: 70, Unit: "redis_us/task", P99: F(6), Extra: map[string]float64{"redis_cmds_per_task": 30, "redis_cpu_us_per_task": 70}},
		"wakeup_4":           {Unit: "error", Note: "FAILED: run 1: boom"},
	}
	vs := judge(res, goals)
	got := map[string]verdict{}
	for _, v := range vs {
		got[v.what] = v
	}
	for what, want := range map[string]string{
		"dispatch_multi Redis CPU us/task":              "NOT MET",
		"dispatch_multi / asynq_c10":                    "met",
		"dispatch_multi / ceiling_multi_proc":           "met",
		"idle Redis commands/s":                         "met",
		"wakeup_1 Redis commands/task":                  "met",
		"wakeup_1 Redis CPU us/task":                    "met",
		"wakeup_1 pick-up p99 ms":                       "NOT MET",
		"wakeup_4 Redis CPU us/task":                    "FAILED",
		"wakeup Redis CPU/task, 4 dispatchers / 1":      "FAILED",
		"dispatch_serial / ceiling_serial_proc":         "",
		"restarts: most consumers in one queue":         "",
		"wakeup_2 Redis commands/task":                  "",
		"wakeup Redis commands/task, 4 dispatchers / 1": "FAILED",
	} {
		v, ok := got[what]
		if want == "" {
			if ok {
				t.Errorf("%s: judged (%s) though none of its scenarios ran", what, v.status)
			}
			continue
		}
		if !ok || v.status != want {
			t.Errorf("%s: %q, want %q", what, v.status, want)
		}
	}
	if v := got["dispatch_multi / asynq_c10"]; v.value < 1.333 || v.value > 1.334 {
		t.Errorf("ratio %v", v.value)
	}
	var b bytes.Buffer
	PrintVerdicts(&b, vs)
	if !strings.Contains(b.String(), "dispatch_multi / asynq_c10 ≥ 1.20") || !strings.Contains(b.String(), "NOT MET") {
		t.Errorf("printed:\n%s", b.String())
	}
}
