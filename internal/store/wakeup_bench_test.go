package store_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// BenchmarkWakeUp measures what a task costs Redis when it wakes an idle
// queue: its enqueue, the claim that takes the queue and the completion
// that hands it back (the scripts of bench's wakeup scenario, without the
// due-index safety net). It reports Redis's own time per wake-up, in all
// and per command (INFO commandstats usec, which for EVALSHA includes the
// commands a script calls), and the commands per wake-up.
func BenchmarkWakeUp(b *testing.B) {
	rdb, st := benchStore(b)
	ctx := b.Context()
	const queues = 500
	cfg := task.DefaultQueueConfig()
	name := func(i int) string { return fmt.Sprintf("q%04d", i) }
	claims := make([]*store.Claim, queues)
	enqueue := func(i int) {
		if _, err := st.Enqueue(ctx, name(i), []store.NewTask{{Spec: &task.Spec{URL: "http://127.0.0.1:1/x"}}},
			store.EnqueueOptions{CreateQueue: &cfg}); err != nil {
			b.Fatal(err)
		}
	}
	claim := func(i int) {
		c, err := st.Claim(ctx, name(i), "bench~1", store.ClaimOptions{TTL: time.Minute, Grace: time.Second})
		if err != nil || c.Status != store.ClaimOK || len(c.Deliveries) != 1 {
			b.Fatalf("claim %s: %+v %v", name(i), c, err)
		}
		claims[i] = c
	}
	complete := func(i int) {
		c := claims[i]
		d := c.Deliveries[0]
		n, err := c.Owned.Complete(ctx, &store.Completion{
			Delivery: &d, Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1, HistoryLen: 10,
			Attempt: &store.AttemptRecord{At: 1, Attempt: 1, Status: 200, LatencyMs: 1, Body: "ok", Seq: d.Seq},
		})
		if err != nil || n.Status != store.NextReleased {
			b.Fatalf("complete %s: %+v %v", name(i), n, err)
		}
	}
	phases := []struct {
		name string
		run  func(int)
	}{{"enqueue", enqueue}, {"claim", claim}, {"complete", complete}}
	for _, ph := range phases { // every queue has run one task: idle
		for i := range queues {
			ph.run(i)
		}
	}
	if err := st.FlushDue(ctx); err != nil {
		b.Fatal(err)
	}
	read := func() map[string][2]float64 {
		stats, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		out := map[string][2]float64{}
		for line := range strings.SplitSeq(stats, "\r\n") {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
			if !ok || name == "info" || name == "config|resetstat" {
				continue
			}
			var c, u float64
			for kv := range strings.SplitSeq(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "calls":
					c, _ = strconv.ParseFloat(v, 64)
				case "usec":
					u, _ = strconv.ParseFloat(v, 64)
				}
			}
			out[name] = [2]float64{c, u}
		}
		info, err := rdb.Info(ctx, "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		var cpu float64
		for line := range strings.SplitSeq(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				cpu += f * 1e6
			}
		}
		out["cpu"] = [2]float64{0, cpu}
		return out
	}
	perPhase := make([]float64, len(phases))
	cmds := map[string]float64{}
	wakeups := 0
	b.ResetTimer()
	for wakeups < b.N {
		n := min(queues, b.N-wakeups)
		for j, ph := range phases {
			before := read()
			for i := range n {
				ph.run(i)
			}
			if err := st.FlushDue(ctx); err != nil {
				b.Fatal(err)
			}
			after := read()
			for k, v := range after {
				d := v[0] - before[k][0]
				if k == "cpu" {
					perPhase[j] += v[1] - before[k][1]
					continue
				}
				cmds[k] += d
			}
		}
		wakeups += n
	}
	b.StopTimer()
	var calls, cpu float64
	var top []string
	for k, c := range cmds {
		calls += c
		if c > 0 {
			top = append(top, fmt.Sprintf("%s %.2f", k, c/float64(b.N)))
		}
	}
	for j, ph := range phases {
		cpu += perPhase[j]
		b.ReportMetric(perPhase[j]/float64(b.N), ph.name+"-cpu-µs")
	}
	slices.Sort(top)
	b.ReportMetric(calls/float64(b.N), "cmds/wakeup")
	b.ReportMetric(cpu/float64(b.N), "redis-cpu-µs/wakeup")
	b.Logf("commands per wake-up: %s", strings.Join(top, ", "))
}
