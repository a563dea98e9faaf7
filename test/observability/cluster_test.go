package observability

// The system-test harness is internal/testcluster (one for every system
// test): a private redis-server, HTQ's real binaries around it, a recording
// target. What is particular to these tests is the target's answers, by
// the first segment of the path, and counting them.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/testcluster"
)

// newTarget starts a recording target that answers by path:
//
//	/ok/...    200 "ok"
//	/fail/...  500
//	/slow/...  waits for the caller to give up (at most 5 s), then 503
//	/var/...   200 with X-HTQ-Next-In: 0.2 twice, then 200 "done"
//	otherwise  404
func newTarget(t *testing.T) *testcluster.Target {
	t.Helper()
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, r *http.Request, n int) {
		switch kind(r.URL.Path) {
		case "ok":
			_, _ = w.Write([]byte("ok"))
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		case "var":
			if n < 3 {
				w.Header().Set("X-HTQ-Next-In", "0.2")
				_, _ = w.Write([]byte("again"))
			} else {
				_, _ = w.Write([]byte("done"))
			}
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}
	return tg
}

// kind is the first segment of a path.
func kind(path string) string {
	k, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return k
}

// counts returns the 2xx answers the target sent and its calls by kind.
func counts(tg *testcluster.Target) (ok int, byKind map[string]int) {
	byKind = map[string]int{}
	for _, c := range tg.Calls() {
		byKind[kind(c.Path)]++
		if c.Status < 300 {
			ok++
		}
	}
	return ok, byKind
}

// legacyCode posts a legacy call and returns its error_code.
func legacyCode(t *testing.T, c *testcluster.Cluster, endpoint string, fields ...string) float64 {
	t.Helper()
	code, ok := c.Legacy(endpoint, fields...)["error_code"].(float64)
	if !ok {
		t.Fatalf("legacy %s: no error_code in the answer", endpoint)
	}
	return code
}

// scrape returns the text exposition of a process's /metrics.
func scrape(t *testing.T, p *testcluster.Proc) []byte {
	t.Helper()
	b, err := p.ScrapeText()
	if err != nil {
		t.Fatalf("scrape %s: %v", p.Name, err)
	}
	return b
}
