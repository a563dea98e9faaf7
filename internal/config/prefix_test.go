package config_test

import (
	"strings"
	"testing"

	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// TestSeparatePrefix: started with the original's config.json (same Redis,
// same redis_key_prefix), no key HTQ uses starts with the original's
// prefix, so no queue of the original (which may be named "leader",
// "leader:term", "hint:schedule", "{p000}:queues", ...) shares a name with
// one of ours (issue 13: an original queue named "leader" kept HTQ's
// scheduler from ever leading).
func TestSeparatePrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"htq_", "app:", "x", "前缀_", "htq"} {
		q := config.SeparatePrefix(p)
		k := store.NewKeys(q)
		qk := k.Queue("leader")
		keys := []string{
			k.LeaderLock(), k.LeaderTerm(), k.ScheduleChannel(), k.MembersChannel(), k.OwnerChannel("c"),
			k.Dispatchers(), k.Names(), k.Listeners(), k.DueIndex(store.DueReady), k.DueIndex(store.DueTimers), k.DueIndex(store.DueDead),
			k.Ready(0), k.Timers(0), k.Registry(0), k.Trash(0), k.DeadQueues(0), k.Seqs(0), k.HintChannel(0),
			k.Spec(0, "1"), k.State(0, "1"), k.Part(task.Partitions - 1),
			qk.Meta, qk.Stream, qk.Delayed, qk.Lease, qk.Dead, qk.Seq, qk.Epoch,
		}
		for _, key := range keys {
			if strings.HasPrefix(key, p) {
				t.Errorf("prefix %q: HTQ key %q starts with it, so an original queue named %q would be the same key",
					p, key, strings.TrimPrefix(key, p))
			}
		}
		if q == "" || strings.HasPrefix(q, p) || strings.HasPrefix(p, q) {
			t.Errorf("SeparatePrefix(%q) = %q: one is a prefix of the other", p, q)
		}
	}
	if got := config.SeparatePrefix("htq_"); got != "htq:" {
		t.Errorf("SeparatePrefix(htq_) = %q, want htq: (HTQ's default)", got)
	}
}
