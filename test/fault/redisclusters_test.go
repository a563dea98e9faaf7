package fault

// Helpers that run the Redis topologies of the Cluster and Sentinel
// scenarios, from redis-server processes (and sentinels) that
// internal/redistest starts: owned by the test, on free loopback ports, each
// in its own temporary directory.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/redistest"
)

// nodeClient returns a client of one node that does not retry and gives up
// quickly (nodes die in these tests), closed when the test ends.
func nodeClient(t *testing.T, n *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rtRedisArgs are the arguments of a data node: loopback, its own directory,
// AOF on (appendfsync everysec) so a restart keeps its data.
func rtRedisArgs(port int, dir string, extra ...string) []string {
	return append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
	}, extra...)
}

func rtRedisCLI(t *testing.T) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(redistest.Binary(t)), "redis-cli")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found next to redis-server nor in PATH: %v", err)
	}
	return p
}

// rtPoll calls cond until it holds or within passes, then fails the test.
func rtPoll(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rtRedisCluster is a local Redis Cluster of masters only.
type rtRedisCluster struct {
	t     *testing.T
	Nodes []*redistest.Server
}

// startRTRedisCluster starts n cluster-enabled servers, joins them with
// `redis-cli --cluster create` (no replicas) and waits until every node says
// cluster_state:ok.
func startRTRedisCluster(t *testing.T, n int) *rtRedisCluster {
	t.Helper()
	rc := &rtRedisCluster{t: t}
	for i := range n {
		rc.Nodes = append(rc.Nodes, redistest.StartWith(t, fmt.Sprintf("redis-shard-%d", i), func(port int, dir string) []string {
			// The bus port is chosen too: port+10000 (the default) may be
			// taken or beyond 65535 for an ephemeral port.
			bus := redistest.FreePort(t)
			for bus == port {
				bus = redistest.FreePort(t)
			}
			return rtRedisArgs(port, dir,
				"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(bus))
		}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, rc.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, rtRedisCLI(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rc.WaitOK(30 * time.Second)
	return rc
}

// Addrs returns the nodes' addresses.
func (rc *rtRedisCluster) Addrs() []string {
	var out []string
	for _, n := range rc.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// RedisConfig is the "redis:" section of HTQ's config for this cluster.
func (rc *rtRedisCluster) RedisConfig() string {
	return fmt.Sprintf("redis:\n  mode: cluster\n  addrs: [%s]\n", rtQuoteJoin(rc.Addrs()))
}

func rtQuoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// WaitOK waits until every running node reports cluster_state:ok and knows
// all 16384 slots as served.
func (rc *rtRedisCluster) WaitOK(within time.Duration) {
	rc.t.Helper()
	clients := make([]*redis.Client, len(rc.Nodes))
	for i, n := range rc.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		defer clients[i].Close()
	}
	rtPoll(rc.t, "cluster_state:ok on every node", within, func() bool {
		for _, c := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := c.ClusterInfo(ctx).Result()
			cancel()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return false
			}
		}
		return true
	})
}

// DBSizes returns DBSIZE of each node.
func (rc *rtRedisCluster) DBSizes() []int64 {
	rc.t.Helper()
	out := make([]int64, len(rc.Nodes))
	for i, n := range rc.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		v, err := c.DBSize(context.Background()).Result()
		_ = c.Close()
		if err != nil {
			rc.t.Fatalf("DBSIZE on %s: %v", n.Addr(), err)
		}
		out[i] = v
	}
	return out
}

// rtSentinels is one primary, one replica and three sentinels watching them
// as "mymaster".
type rtSentinels struct {
	t         *testing.T
	Primary   *redistest.Server
	Replica   *redistest.Server
	Sentinels []*redistest.Server
}

const rtMasterName = "mymaster"

// startRTSentinels starts the primary, the replica (replicaof the primary,
// both with AOF) and three sentinels (quorum 2, down-after 1 s,
// failover-timeout 5 s), and waits until the replica is in sync and every
// sentinel knows the replica and the two other sentinels.
func startRTSentinels(t *testing.T) *rtSentinels {
	t.Helper()
	s := &rtSentinels{t: t}
	s.Primary = redistest.StartWith(t, "redis-primary", func(port int, dir string) []string { return rtRedisArgs(port, dir) })
	s.Replica = redistest.StartWith(t, "redis-replica", func(port int, dir string) []string {
		return rtRedisArgs(port, dir, "--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.Port))
	})
	pc := nodeClient(t, s.Primary)
	rtPoll(t, "the replica in sync", 20*time.Second, func() bool {
		info, err := pc.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})
	for i := range 3 {
		s.Sentinels = append(s.Sentinels, redistest.StartWith(t, fmt.Sprintf("sentinel-%d", i), func(port int, dir string) []string {
			conf := filepath.Join(dir, "sentinel.conf")
			text := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 5000
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, "redis.log"), rtMasterName, s.Primary.Port, rtMasterName, rtMasterName, rtMasterName)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{conf, "--sentinel"}
		}))
	}
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr()})
		rtPoll(t, sn.Name+" to know the replica and the other sentinels", 30*time.Second, func() bool {
			m, err := sc.Master(context.Background(), rtMasterName).Result()
			return err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2" && m["flags"] == "master"
		})
		_ = sc.Close()
	}
	return s
}

// Addrs returns the sentinels' addresses.
func (s *rtSentinels) Addrs() []string {
	var out []string
	for _, sn := range s.Sentinels {
		out = append(out, sn.Addr())
	}
	return out
}

// RedisConfig is the "redis:" section of HTQ's config for these sentinels.
func (s *rtSentinels) RedisConfig() string {
	return fmt.Sprintf("redis:\n  mode: sentinel\n  addrs: [%s]\n  master_name: %s\n", rtQuoteJoin(s.Addrs()), rtMasterName)
}

// MasterAddr asks the first sentinel that answers for the primary's address.
func (s *rtSentinels) MasterAddr() string {
	for _, sn := range s.Sentinels {
		if !sn.Running() {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr()})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hp, err := sc.GetMasterAddrByName(ctx, rtMasterName).Result()
		cancel()
		_ = sc.Close()
		if err == nil && len(hp) == 2 {
			return hp[0] + ":" + hp[1]
		}
	}
	return ""
}
