// Package observability checks what operators see of HTQ: the Grafana
// dashboard and the Prometheus alert rules in deploy/monitoring/ (JSON and
// PromQL that promtool parses, rule unit tests), every role's /metrics
// (`promtool check metrics`), a real Prometheus scraping a real cluster (every
// metric the dashboard and the rules use returns data and the counters match
// what the test did), and the logs (JSON by default, no secrets).
//
// It needs redis-server, promtool and prometheus: `make test` installs them
// (Debian's redis-server and prometheus packages). Tools are looked up in
// $HTQ_PROMTOOL / $HTQ_PROMETHEUS, then ~/.cache/htq/tools/bin, then $PATH; nothing is
// skipped when one is missing, the test fails and says how to install it.
package observability

import (
	"github.com/htq/htq/internal/testcluster"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// repoRoot is the module's root directory (tests run in their package's).
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

// monitoringDir holds the dashboard, the rules and their tests.
var monitoringDir = filepath.Join(repoRoot, "deploy", "monitoring")

// tool finds an external program: $env, then the tools cache
// (~/.cache/htq/tools/bin/<name>, where `make test` installs it), then $PATH.
func tool(t testing.TB, name, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s is not an executable (unset it, or run `make test`, which installs %s into ~/.cache/htq/tools/bin): %v", env, p, name, err)
		}
		return p
	}
	if dir, err := os.UserCacheDir(); err == nil {
		if p := filepath.Join(dir, "htq", "tools", "bin", name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found in $%s, ~/.cache/htq/tools/bin or $PATH: run `make test` (it installs Debian's prometheus package, "+
		"which provides prometheus and promtool, into ~/.cache/htq/tools/bin), or `make tools-%s`", name, env, name)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func promtool(t testing.TB) string   { return tool(t, "promtool", "HTQ_PROMTOOL") }
func prometheus(t testing.TB) string { return tool(t, "prometheus", "HTQ_PROMETHEUS") }

func TestMain(m *testing.M) { testcluster.Main(m) }
