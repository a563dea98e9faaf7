package main

// The htq CLI's bulk import (issue 16):
//
//   import  200,000 URL-only tasks (quick 50,000) from an NDJSON file through
//           `htq import` (batches of 1,000, 4 in flight, checkpoint on)
//           into one queue of a real htq-api + scheduler on a private
//           redis-server; no dispatcher runs.
//
// The file is written before the measurement; the measurement is the
// wall time of the htq process, from exec to exit, so the CLI's start,
// its queue check, reading and parsing the file, deriving every line's
// idempotency key and the checkpoint writes are all inside it. The queue
// must then hold exactly the tasks of the file, else the run fails.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/htq/htq/client"
)

func init() {
	Register(Scenario{
		Name: "import", Group: GroupHTQ,
		Desc: "htq import of an NDJSON file, 200,000 tasks (quick 50,000) into one queue, batches of 1,000, 4 in flight: tasks/s (process exec to exit)",
		Run:  runImport,
	})
}

var htqCLI struct {
	once sync.Once
	path string
	err  error
}

// htqCLIPath is bin/htq: from --bin-dir when it holds one, else built
// from the main module (once per invocation).
func htqCLIPath(cfg *Config) (string, error) {
	htqCLI.once.Do(func() {
		if cfg.BinDir != "" {
			p, err := filepath.Abs(filepath.Join(cfg.BinDir, "htq"))
			if err == nil {
				if _, err = os.Stat(p); err == nil {
					htqCLI.path = p
					return
				}
			}
		}
		root, err := htqSourceRoot()
		if err != nil {
			htqCLI.err = err
			return
		}
		dir, err := os.MkdirTemp("", "htqbench-cli-")
		if err != nil {
			htqCLI.err = err
			return
		}
		p := filepath.Join(dir, "htq")
		cmd := exec.Command("go", "build", "-trimpath", "-o", p, "./cmd/htq")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			htqCLI.err = fmt.Errorf("go build ./cmd/htq in %s: %w: %s", root, err, strings.TrimSpace(string(out)))
			return
		}
		htqCLI.path = p
	})
	return htqCLI.path, htqCLI.err
}

func runImport(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(200000, 50000)
	bin, err := htqCLIPath(env.Cfg)
	if err != nil {
		return Result{}, err
	}
	c, err := startHTQ(ctx, env, htqOptions{})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	q := queueNames(env, "imp", 1)[0]
	if err := putQueues(ctx, c.HTQ, []string{q}, client.QueueSettings{}, 1); err != nil {
		return Result{}, err
	}
	file := filepath.Join(c.Dir, "tasks.ndjson")
	if err := writeImportFile(file, env.Target.URL, q, n); err != nil {
		return Result{}, err
	}
	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	m := env.BeginMeasure()
	apiCPU := newCPUMeter(c.APIProc)
	cmd := exec.CommandContext(ctx, bin, "import", "-q", q, file, "-o", "json")
	cmd.Env = append(os.Environ(), "HTQ_URL="+c.API, "HTQ_TOKEN="+benchToken, "HOME="+c.Dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	wall := time.Since(t0)
	if err != nil {
		return Result{}, fmt.Errorf("htq import: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	var rep struct {
		Imported int     `json:"imported"`
		Bad      int     `json:"bad"`
		Rate     float64 `json:"tasks_per_second"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return Result{}, fmt.Errorf("htq import's report %q: %w", out, err)
	}
	if rep.Imported != n || rep.Bad != 0 {
		return Result{}, fmt.Errorf("htq import reported %d imported, %d bad; want %d, 0", rep.Imported, rep.Bad, n)
	}
	if err := verifyQueued(ctx, c.HTQ, []string{q}, n); err != nil {
		return Result{}, err
	}
	res := throughputResult(n, 0, wall.Nanoseconds(), before, after, m)
	delete(res.Extra, "redis_mem_preloaded_mb")
	res.Extra["seconds"] = wall.Seconds()
	res.Extra["cli_reported_tasks_per_s"] = rep.Rate
	if ps := cmd.ProcessState; ps != nil {
		res.Extra["cli_cpu_us_per_task"] = float64((ps.UserTime() + ps.SystemTime()).Microseconds()) / float64(n)
	}
	if s, ok := apiCPU.Seconds(); ok {
		res.Extra["api_cpu_us_per_task"] = s * 1e6 / float64(n)
	}
	if st, err := os.Stat(file); err == nil {
		res.Extra["file_mb"] = float64(st.Size()) / 1e6
	}
	res.Note = fmt.Sprintf("htq import of %d NDJSON lines, batches of 1000, 4 in flight, checkpoint on; all %d counted in the queue; %s", n, n, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// writeImportFile writes n NDJSON task lines: URL-only tasks, the shape of
// enqueue_batch's, so that the two figures differ by the CLI (reading,
// parsing, keys, checkpoint) and the idempotency keys, not by the tasks.
func writeImportFile(path, base, queue string, n int) error {
	f, err := os.Create(path) //nolint:gosec // the run's own directory
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, `{"url":%q}`+"\n", TaskURL(base, "/t", queue, i))
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
