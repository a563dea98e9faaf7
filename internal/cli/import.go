package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/taskimport"
)

func newImport(g *globals) *cobra.Command {
	var (
		queue, format, source, checkpoint string
		noCheckpoint                      bool
		batch, parallel                   int
		every                             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "import -q QUEUE FILE|-",
		Short: "Add tasks from an NDJSON or CSV file, in batches, resumably and without duplicates",
		Long: `Each NDJSON line is a task as POST /v1/queues/{queue}/tasks takes it; a CSV
file has a header row naming its columns (url, method, body, body_json,
body_base64, delay, run_at, timeout, max_attempts, min_backoff, max_backoff,
idempotency_key, form_encoding, header:NAME, form:NAME).

Bad lines are reported on stderr with their line number, skipped and counted
(the exit status is then 1). Every task gets an idempotency key derived from
the source, its line number and its bytes, and a checkpoint file (FILE.htq-checkpoint
by default) records how far the import got: run the same command again after
an interruption and every line ends up in the queue exactly once. The
checkpoint is removed when the whole file is in.`,
		Example: `  htq import -q emails tasks.ndjson
  htq import -q emails tasks.csv
  gunzip -c tasks.ndjson.gz | htq import -q emails --source tasks-2026-12 --checkpoint tasks.ckpt -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if queue == "" {
				return usagef("--queue (-q) is required")
			}
			if batch < 1 || parallel < 1 {
				return usagef("--batch and --parallel: want at least 1")
			}
			if every <= 0 {
				return usagef("--progress-every %v: want more than 0", every)
			}
			if noCheckpoint && checkpoint != "" {
				return usagef("--checkpoint and --no-checkpoint exclude each other")
			}
			in, size, err := openInput(g, args[0])
			if err != nil {
				return err
			}
			defer func() { _ = in.Close() }()
			if source == "" {
				if args[0] == "-" {
					source = "stdin"
				} else if source, err = filepath.Abs(args[0]); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			if format == "" {
				format = taskimport.FormatNDJSON
				if strings.HasSuffix(strings.ToLower(args[0]), ".csv") {
					format = taskimport.FormatCSV
				}
			}
			if format != taskimport.FormatNDJSON && format != taskimport.FormatCSV {
				return usagef("--format %q: want ndjson or csv", format)
			}
			if checkpoint == "" && !noCheckpoint && args[0] != "-" {
				checkpoint = args[0] + ".htq-checkpoint"
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.GetQueue(cmd.Context(), queue); err != nil {
				return err
			}
			pr := newProgress(g.env.Stderr, g.env.IsTerminal, every)
			rep, err := taskimport.Run(cmd.Context(), taskimport.Options{
				Queue: queue, Input: in, Format: format, Source: source, Sender: c,
				Batch: batch, Parallel: parallel, Size: size, Checkpoint: checkpoint,
				Progress: pr.update,
				Bad: func(b taskimport.BadLine) {
					pr.clear()
					_, _ = fmt.Fprintf(g.env.Stderr, "line %d: %s\n", b.Line, b.Err)
				},
			})
			pr.finish()
			if rep != nil {
				if serr := g.show(rep, func(w io.Writer) {
					if rep.Resumed > 0 {
						row(w, "resumed after line:", rep.Resumed)
					}
					row(w, "lines:", rep.Lines)
					row(w, "imported:", rep.Imported)
					row(w, "existed:", rep.Existed)
					row(w, "bad:", rep.Bad)
					row(w, "seconds:", fmt.Sprintf("%.2f", rep.Seconds))
					row(w, "tasks/s:", fmt.Sprintf("%.0f", rep.Rate))
				}); serr != nil && err == nil {
					err = serr
				}
			}
			if err != nil {
				if checkpoint != "" {
					return fmt.Errorf("import stopped: %w (what HTQ accepted stays; run the same command again to continue from %s)", err, checkpoint)
				}
				return fmt.Errorf("import stopped: %w", err)
			}
			if rep.Bad > 0 {
				return fmt.Errorf("%d bad lines skipped (listed above)", rep.Bad)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&queue, "queue", "q", "", "the queue (required; it must exist)")
	f.StringVar(&format, "format", "", "ndjson or csv (default: csv for a .csv file, else ndjson)")
	f.StringVar(&source, "source", "", "the input's identity in the idempotency keys (default the file's absolute path, or stdin)")
	f.StringVar(&checkpoint, "checkpoint", "", "the checkpoint file (default FILE.htq-checkpoint; none for stdin)")
	f.BoolVar(&noCheckpoint, "no-checkpoint", false, "keep no checkpoint (a re-run then sends every line again; the keys still prevent duplicates)")
	f.IntVar(&batch, "batch", taskimport.DefaultBatch, "tasks per request (at most the API's api.max_batch)")
	f.IntVar(&parallel, "parallel", taskimport.DefaultParallel, "requests in flight")
	f.DurationVar(&every, "progress-every", 2*time.Second, "how often a progress line is printed when stderr is not a terminal")
	return cmd
}

func openInput(g *globals, name string) (io.ReadCloser, int64, error) {
	if name == "-" {
		if g.env.Stdin == nil {
			return nil, 0, usagef("-: no stdin")
		}
		return io.NopCloser(g.env.Stdin), 0, nil
	}
	f, err := os.Open(name) //nolint:gosec // the user names the file
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, &notFoundError{err}
		}
		return nil, 0, err
	}
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

// progress draws a bar with rate and ETA on a terminal, or prints a line
// every so often otherwise.
type progress struct {
	w        io.Writer
	terminal bool
	every    time.Duration
	last     time.Time
	drawn    bool
	p        taskimport.Progress
}

func newProgress(w io.Writer, terminal bool, every time.Duration) *progress {
	return &progress{w: w, terminal: terminal, every: every} // the first update draws
}

func (p *progress) update(pr taskimport.Progress) {
	p.p = pr
	interval := p.every
	if p.terminal {
		interval = 100 * time.Millisecond
	}
	if time.Since(p.last) < interval {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	pr := p.p
	done := pr.Imported + pr.Existed
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	frac, eta := -1.0, ""
	if pr.Size > 0 && pr.Offset > 0 {
		frac = min(1, float64(pr.Offset)/float64(pr.Size))
		if frac > 0 {
			left := time.Duration(float64(pr.Elapsed) * (1 - frac) / frac).Round(time.Second)
			eta = " ETA " + left.String()
		}
	}
	if p.terminal {
		bar := ""
		if frac >= 0 {
			const width = 30
			n := int(frac * width)
			bar = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat("-", width-n), frac*100)
		}
		_, _ = fmt.Fprintf(p.w, "\r%s%d tasks  %.0f/s  %d bad%s\x1b[K", bar, done, rate, pr.Bad, eta)
		p.drawn = true
		return
	}
	pct := ""
	if frac >= 0 {
		pct = fmt.Sprintf(" (%.0f%%)", frac*100)
	}
	_, _ = fmt.Fprintf(p.w, "progress: %d tasks%s, %.0f/s, %d bad%s\n", done, pct, rate, pr.Bad, eta)
}

// clear removes the bar before another line is written.
func (p *progress) clear() {
	if p.terminal && p.drawn {
		_, _ = fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progress) finish() {
	if p.terminal && p.drawn {
		p.draw()
		_, _ = fmt.Fprintln(p.w)
	}
}

func newExport(g *globals) *cobra.Command {
	var queue, state string
	var limit int
	var sf searchFlags
	cmd := &cobra.Command{
		Use:   "export -q QUEUE [--state S]",
		Short: "Write a queue's tasks in a state as NDJSON (one task object a line), streaming",
		Example: `  htq export -q emails --state dead > dead.ndjson
  htq export -q emails --state scheduled --limit 1000 | jq -r .url`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if queue == "" {
				return usagef("--queue (-q) is required")
			}
			if err := checkState(state); err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			tf, err := sf.filter()
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(g.env.Stdout, 64<<10)
			enc := json.NewEncoder(w)
			err = listTasks(cmd, c, queue, state, tf, limit, func(ts []client.Task) error {
				for i := range ts {
					if err := enc.Encode(&ts[i]); err != nil {
						return fmt.Errorf("write: %w", err)
					}
				}
				return w.Flush()
			})
			if ferr := w.Flush(); err == nil && ferr != nil {
				err = fmt.Errorf("write: %w", ferr)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&queue, "queue", "q", "", "the queue (required)")
	cmd.Flags().StringVar(&state, "state", client.StateQueued, "queued, active, scheduled, retrying or dead")
	cmd.Flags().IntVar(&limit, "limit", 0, "write at most this many tasks (0: all)")
	sf.add(cmd, "due, queued or dead")
	return cmd
}
