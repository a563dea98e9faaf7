package cli_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/apitest"
	"github.com/htq/htq/internal/cli"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const token = "cli-test-token-0123456789"

// cluster is a real API on its own redis-server; no dispatcher runs, so
// tasks stay where they are put.
type cluster struct {
	url string
	st  *store.Store
	api *client.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	st, err := store.New(rdb, "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts, err := apitest.Serve(st, apitest.Config(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{url: ts.URL, st: st, api: c}
}

// result is one run of the command line.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

// htq runs the command line in process against the cluster (HTQ_URL and
// HTQ_TOKEN set, HOME a fresh directory unless env says otherwise).
func (c *cluster) htq(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	env := map[string]string{"HOME": t.TempDir()}
	if c != nil {
		env["HTQ_URL"], env["HTQ_TOKEN"] = c.url, token
	}
	return runEnv(t, env, stdin, args...)
}

func runEnv(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runTerm(t, false, env, stdin, args...)
}

// runTerm is runEnv with stderr a terminal or not.
func runTerm(t *testing.T, terminal bool, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	var in io.Reader = strings.NewReader(stdin)
	err := cli.Execute(context.Background(), cli.Env{Stdout: &out, Stderr: &errOut, Stdin: in, IsTerminal: terminal, ColorOut: terminal,
		Getenv: func(k string) string { return env[k] }}, args)
	if err != nil {
		errOut.WriteString("htq: " + cli.Message(err) + "\n")
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: cli.ExitCode(err), err: err}
}

func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	return r
}

var (
	reID   = regexp.MustCompile(`\b[0-9a-f]{14}\b`)
	reTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	rePort = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// normalise replaces what changes from run to run: task ids, times, ports.
func normalise(s string) string {
	s = reID.ReplaceAllString(s, "<id>")
	s = reTime.ReplaceAllString(s, "<time>")
	return rePort.ReplaceAllString(s, "127.0.0.1:<port>")
}

// golden compares got (normalised) with testdata/name, or rewrites it
// with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = normalise(got)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil { //nolint:gosec // test data
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path) //nolint:gosec // test data
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// killTasks makes the first n queued tasks of queue dead, as a dispatcher
// would after their last failed call.
func (c *cluster) killTasks(t *testing.T, queue string, n int) {
	t.Helper()
	ctx := t.Context()
	cl, err := c.st.Claim(ctx, queue, "test", store.ClaimOptions{TTL: 10 * time.Second, Want: 1})
	if err != nil || cl.Status != store.ClaimOK || len(cl.Deliveries) != 1 {
		t.Fatalf("claim %q: %+v, %v", queue, cl, err)
	}
	d := cl.Deliveries[0]
	for i := range n {
		want := 1
		if i == n-1 {
			want = 0
		}
		next, err := cl.Owned.Complete(ctx, &store.Completion{
			Delivery: &d, Outcome: store.OutcomeDead, Retention: time.Hour, Want: want, HistoryLen: 3,
			Attempt: &store.AttemptRecord{At: time.Now().UnixMilli(), Attempt: d.Attempt, Status: 500 + i%2, Error: "HTTP 50x"},
		})
		if err != nil {
			t.Fatalf("complete: %v", err)
		}
		if i < n-1 {
			if len(next.Deliveries) != 1 {
				t.Fatalf("complete %d: next = %+v", i, next)
			}
			d = next.Deliveries[0]
		}
	}
}
