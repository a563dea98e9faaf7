package dispatch

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// routing says, for every partition, where this dispatcher stands in the
// partition's order of dispatchers: rendezvous hashing over the live
// dispatchers, so that every dispatcher computes the same order from the
// same membership and a dispatcher joining or leaving moves only its own
// share of partitions.
type routing struct {
	live []string
	rank [task.Partitions]int // 0: first choice
}

func newRouting(me string, live []string) *routing {
	if !slices.Contains(live, me) {
		live = append(slices.Clone(live), me)
	}
	slices.Sort(live)
	r := &routing{live: live}
	for p := range task.Partitions {
		mine := weight(me, p)
		for _, other := range live {
			if other != me && weight(other, p) > mine {
				r.rank[p]++
			}
		}
	}
	return r
}

// weight is a dispatcher's rendezvous weight for partition p (ties, which
// 64-bit hashes of distinct names make vanishingly rare, go by name order
// through the sort above and the strict comparison).
func weight(name string, p int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.Itoa(p)))
	return mix(h.Sum64())
}

// mix spreads fnv's output (splitmix64's finalizer), so that close names
// and partition numbers give independent weights.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// first returns the partitions this dispatcher is the first choice for.
func (r *routing) first() []int {
	var out []int
	for p, k := range r.rank {
		if k == 0 {
			out = append(out, p)
		}
	}
	return out
}

// delay is how long partition p's work waits for the dispatchers before
// this one in p's order.
func (r *routing) delay(p int, fallback time.Duration) time.Duration {
	return time.Duration(r.rank[p]) * fallback
}

// everyone is how long any partition's work waits before every live
// dispatcher may take it.
func (r *routing) everyone(fallback time.Duration) time.Duration {
	return time.Duration(max(0, len(r.live)-1)) * fallback
}

// membership keeps this dispatcher in the registry of live dispatchers
// (a heartbeat every third of the lease TTL, or at once when another
// dispatcher announces a change) and subscribes the hints of the partitions
// it is the first choice for.
func (d *Dispatcher) membership(ctx context.Context, hints *store.Hints) {
	every := d.cfg.LeaseTTL / 3
	announced := false
	for {
		live, err := d.st.Heartbeat(ctx, d.consumer, d.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("heartbeat", "err", err)
		} else {
			d.reroute(ctx, live, hints)
			if !announced {
				if err := d.st.AnnounceMembers(ctx); err == nil {
					announced = true
				}
			}
		}
		t := time.NewTimer(jitter(every))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-d.members:
			t.Stop()
		}
	}
}

// reroute takes a new membership into account.
func (d *Dispatcher) reroute(ctx context.Context, live []string, hints *store.Hints) {
	old := d.route.Load()
	if slices.Equal(old.live, live) {
		return
	}
	r := newRouting(d.consumer, live)
	d.route.Store(r)
	first := r.first()
	if err := hints.SetPartitions(ctx, first); err != nil && ctx.Err() == nil {
		d.log.Warn("subscribe partition hints", "err", err)
	}
	d.log.Info("dispatchers changed", "live", len(r.live), "first_choice_partitions", len(first))
	d.pokePoller() // partitions newly ours may have waited
}

// leave takes this dispatcher out of the registry, so the others take its
// partitions at once.
func (d *Dispatcher) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.st.Leave(ctx, d.consumer); err != nil {
		d.log.Warn("leave the dispatchers", "err", err)
	}
}
