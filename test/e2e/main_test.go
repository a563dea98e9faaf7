// Package e2e runs HTQ's real binaries against a private redis-server and a
// recording target, to test what only breaks between processes: order
// across dispatchers, a killed dispatcher, a scheduler failover, the
// variable gap rule.
package e2e

import (
	"testing"

	"github.com/htq/htq/internal/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }
