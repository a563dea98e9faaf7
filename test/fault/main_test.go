// Package fault injects the failures HTQ's guarantees must survive — killed
// and frozen dispatchers, a killed scheduler leader, Redis restarts, a
// dispatcher partitioned from Redis, misbehaving targets, Redis Cluster and
// Sentinel fail-overs, heavy load — on the real binaries and a real
// redis-server, and checks the target's record of every call. The figures
// they log are the ones in RELIABILITY.md.
package fault

import (
	"testing"

	"github.com/htq/htq/internal/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }
