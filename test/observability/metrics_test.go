package observability

import (
	"bufio"
	"bytes"
	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const lintToken = "obs-lint-token-0123456789abcdef"

// TestPromtoolCheckMetrics: after a little traffic (a success, a dead
// letter, a timed task, a refused request), `promtool check metrics` finds
// nothing to say about any role's /metrics (the API serving it on its own
// port, the default), every role exports the Go and process collectors, and
// the HTQ metric families exported are exactly those the dashboard and the
// rules read: a new metric must get a panel.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	pt := promtool(t)
	tg := newTarget(t)
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1, WholeConfig: `redis:
  url: {{REDIS}}
api:
  tokens: ["` + lintToken + `"]
scheduler:
  backlog_interval: 1s
dispatcher:
  shutdown_grace: 2s
`})
	hc := c.ClientAs(lintToken)
	one := 1
	if _, created, err := hc.PutQueue(t.Context(), "lint", client.QueueSettings{Retry: &client.Retry{MaxAttempts: &one}}); err != nil || !created {
		t.Fatalf("PUT queue: created=%v %v", created, err)
	}
	for _, task := range []client.TaskRequest{
		{URL: tg.URL + "/ok/1"},
		{URL: tg.URL + "/ok/2", Delay: client.D(200 * time.Millisecond)},
		{URL: tg.URL + "/fail/1"},
	} {
		if _, err := hc.CreateTask(t.Context(), "lint", task); err != nil {
			t.Fatalf("POST task: %v", err)
		}
	}
	if status := errStatus(c.ClientAs("").CreateTask(t.Context(), "lint", client.TaskRequest{URL: tg.URL + "/ok/3"})); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}
	c.WaitFor("the calls", 30*time.Second, func() bool {
		ok, by := counts(tg)
		return ok >= 2 && by["fail"] >= 1
	})
	c.WaitFor("the backlog gauges to count the dead letter", 10*time.Second, func() bool {
		return bytes.Contains(scrape(t, c.Procs("scheduler")[0]), []byte(`htq_queue_tasks{queue="lint",state="dead"} 1`))
	})

	want := map[string]bool{}
	for _, m := range usedMetrics {
		if strings.HasPrefix(m, "htq_") {
			want[strings.TrimSuffix(m, "_bucket")] = true
		}
	}
	exported := map[string]bool{}
	for _, p := range c.Procs("") {
		body := scrape(t, p)
		cmd := exec.Command(pt, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", p.Name, err, out)
		}
		fams := families(body)
		for _, f := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total", "htq_build_info"} {
			if !fams[f] {
				t.Errorf("%s does not export %s", p.Name, f)
			}
		}
		for f := range fams {
			if strings.HasPrefix(f, "htq_") {
				exported[f] = true
			}
		}
	}
	var missing, unused []string
	for f := range want {
		if !exported[f] {
			missing = append(missing, f)
		}
	}
	for f := range exported {
		if !want[f] {
			unused = append(unused, f)
		}
	}
	sort.Strings(missing)
	sort.Strings(unused)
	if len(missing) > 0 {
		t.Errorf("metrics the dashboard or the rules read that no role exports: %v", missing)
	}
	if len(unused) > 0 {
		t.Errorf("metrics exported but on no dashboard panel (add a panel, and the name to usedMetrics): %v", unused)
	}
}

// families returns the metric family names (# TYPE lines) of an exposition.
func families(body []byte) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

func TestFamilies(t *testing.T) {
	t.Parallel()
	body := "# HELP a_total x\n# TYPE a_total counter\na_total 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\n"
	got := families([]byte(body))
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"a_total", "h"}) {
		t.Errorf("families = %v", names)
	}
}
