package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htq/htq/client"
)

func writeNDJSON(t *testing.T, n int, bad map[int]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tasks.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= n; i++ {
		if l, ok := bad[i]; ok {
			fmt.Fprintln(w, l)
			continue
		}
		fmt.Fprintf(w, `{"url":"http://127.0.0.1:9/t?i=%d","method":"POST","body":{"i":%d}}`+"\n", i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// exactlyOnce checks that queue holds one task per line 1..n except skip.
func (c *cluster) exactlyOnce(t *testing.T, queue string, n int, skip map[int]string) {
	t.Helper()
	seen := make(map[int]int, n)
	opts := client.ListOptions{Limit: 1000}
	for {
		p, err := c.api.ListTasks(t.Context(), queue, client.StateQueued, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range p.Tasks {
			_, num, _ := strings.Cut(tk.URL, "?i=")
			i, err := strconv.Atoi(num)
			if err != nil {
				t.Fatalf("task %s: url %q", tk.ID, tk.URL)
			}
			seen[i]++
		}
		if p.NextCursor == "" {
			break
		}
		opts.Cursor = p.NextCursor
	}
	for i := 1; i <= n; i++ {
		_, bad := skip[i]
		switch {
		case bad && seen[i] != 0:
			t.Errorf("bad line %d was imported", i)
		case !bad && seen[i] != 1:
			t.Errorf("line %d is in the queue %d times, want once", i, seen[i])
		}
	}
}

// TestImportNDJSON: a malformed line is reported with its number, skipped
// and counted (exit 1); the rest arrive once; a re-run creates nothing.
func TestImportNDJSON(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "q").ok(t)
	bad := map[int]string{7: `{"url": "http://127.0.0.1:9/t?i=7"`, 2001: `{"url":"http://127.0.0.1:9/t?i=2001","method":"GET","body":{"a":1}}`}
	path := writeNDJSON(t, 3000, bad)
	r := c.htq(t, "", "import", "-q", "q", path, "-o", "json")
	if r.code != 1 || !strings.Contains(r.stderr, "line 7: invalid task JSON") || !strings.Contains(r.stderr, "line 2001: ") ||
		!strings.Contains(r.stderr, "2 bad lines skipped") {
		t.Fatalf("import: %+v", r)
	}
	var rep struct{ Imported, Existed, Bad, Lines int }
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Imported != 2998 || rep.Bad != 2 || rep.Lines != 3000 {
		t.Fatalf("report %s: %v", r.stdout, err)
	}
	c.exactlyOnce(t, "q", 3000, bad)
	if _, err := os.Stat(path + ".htq-checkpoint"); !os.IsNotExist(err) {
		t.Fatalf("checkpoint after a complete import: %v", err)
	}
	r = c.htq(t, "", "import", "-q", "q", path, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Imported != 0 || rep.Existed != 2998 {
		t.Fatalf("re-run: %s %v", r.stdout, err)
	}
	c.exactlyOnce(t, "q", 3000, bad)
	// Plain progress lines when stderr is not a terminal.
	r = c.htq(t, "", "import", "-q", "q", path, "--progress-every", "1ns", "--batch", "100")
	if !strings.Contains(r.stderr, "progress: ") {
		t.Fatalf("no progress lines: %q", r.stderr)
	}
}

// TestImportProgressBar: on a terminal, a bar with the share of the file,
// the count, the rate and the ETA, redrawn in place.
func TestImportProgressBar(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "q").ok(t)
	path := writeNDJSON(t, 2000, nil)
	r := runTerm(t, true, map[string]string{"HOME": t.TempDir(), "HTQ_URL": c.url, "HTQ_TOKEN": token}, "",
		"import", "-q", "q", path, "--batch", "100", "--parallel", "1").ok(t)
	if !strings.Contains(r.stderr, "\r[") || !strings.Contains(r.stderr, "] 100% 2000 tasks") || !strings.Contains(r.stderr, "/s  0 bad") ||
		!strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("progress bar: %q", r.stderr)
	}
}

// TestImportCSVFromStdin: a CSV with a header, from stdin.
func TestImportCSVFromStdin(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "q").ok(t)
	in := "url,method,body_json,header:X-Trace\nhttp://127.0.0.1:9/t?i=1,POST,\"{\"\"a\"\":1}\",abc\nhttp://127.0.0.1:9/t?i=2,GET,,\n"
	r := c.htq(t, in, "import", "-q", "q", "--format", "csv", "-").ok(t)
	golden(t, "import_csv.txt", regexpSeconds(r.stdout))
	c.exactlyOnce(t, "q", 2, nil)
}

func regexpSeconds(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "seconds:") || strings.HasPrefix(l, "tasks/s:") {
			l = strings.Fields(l)[0] + " <n>"
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// buildHTQ builds bin/htq into a temporary directory.
func buildHTQ(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "htq")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/htq/htq/cmd/htq")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestImportInterruptedBySIGINT runs the real binary, stops it with
// SIGINT half way, runs it again, and finds every line in the queue
// exactly once.
func TestImportInterruptedBySIGINT(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	bin := buildHTQ(t)
	c.htq(t, "", "queue", "put", "q").ok(t)
	const n = 100000
	path := writeNDJSON(t, n, nil)
	env := append(os.Environ(), "HTQ_URL="+c.url, "HTQ_TOKEN="+token, "HOME="+t.TempDir())
	args := []string{"import", "-q", "q", path, "--batch", "100", "--parallel", "2", "--progress-every", "20ms"}

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var log []string
	signalled := false
	for sc.Scan() {
		l := sc.Text()
		log = append(log, l)
		var done int
		if _, err := fmt.Sscanf(l, "progress: %d tasks", &done); err == nil && done >= n/3 && !signalled {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
	err = cmd.Wait()
	if !signalled {
		t.Fatalf("the import ended (%v) before it could be interrupted:\n%s", err, strings.Join(log, "\n"))
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(strings.Join(log, "\n"), "run the same command again") {
		t.Fatalf("interrupted import: exit %d\n%s", code, strings.Join(log, "\n"))
	}
	data, err := os.ReadFile(path + ".htq-checkpoint")
	if err != nil {
		t.Fatalf("no checkpoint after SIGINT: %v", err)
	}
	q, err := c.api.GetQueue(t.Context(), "q")
	if err != nil || q.Counts.Queued < n/3 || q.Counts.Queued >= n {
		t.Fatalf("after SIGINT: %+v %v (checkpoint %s)", q, err, data)
	}
	t.Logf("interrupted with %d of %d tasks in; checkpoint %s", q.Counts.Queued, n, data)

	again := exec.Command(bin, append(args, "-o", "json")...)
	again.Env = env
	out, err := again.Output()
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	var rep struct {
		Resumed int `json:"resumed_after_line"`
		Bad     int `json:"bad"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("re-run report %s: %v", out, err)
	}
	t.Logf("re-run: %s", out)
	if rep.Resumed == 0 || rep.Bad != 0 {
		t.Fatalf("re-run report: %s", out)
	}
	c.exactlyOnce(t, "q", n, nil)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path + ".htq-checkpoint"); os.IsNotExist(err) {
			return
		}
	}
	t.Fatal("the checkpoint stays after the complete re-run")
}
