// Package migrate moves the original HTQ's data (its Redis layout, see
// Source) into a running HTQ through the REST API: queues with their
// attributes, then every pending task with its due time, method, headers,
// data and original URL, in batches. It is safe to run against live data:
// a dry run changes nothing; each task's idempotency key derives from its
// source member, so a re-run creates nothing twice; a member is removed
// from the source (DeleteSource) only after HTQ has accepted it; a member
// that cannot be migrated is reported and written to a file, never dropped.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/htq/htq/internal/task"
)

// DefaultBatch is how many tasks one batch request carries (HTQ's
// api.max_batch defaults to 1000).
const DefaultBatch = 500

// Options configure a run.
type Options struct {
	Source       *Source
	HTQ          *Client // nil only in a dry run
	DryRun       bool
	DeleteSource bool
	// MalformedFile receives one JSON line per member or queue that cannot
	// be migrated; it is created only when there is one.
	MalformedFile string
	Batch         int           // tasks per batch (DefaultBatch when 0)
	MinGap        time.Duration // legacy.min_gap: more than 0
	MaxAttempts   int           // retry.max_attempts of created queues (legacy.max_attempts): at least 1
	Now           func() time.Time
	// Progress, when set, is told the tasks handled so far and the total.
	Progress func(done, total int)
}

// Report counts what a run found and did.
type Report struct {
	Queues        int // queues in the source
	QueuesCreated int // created in HTQ (0 in a dry run)
	QueuesExisted int // already in HTQ
	DueNow        int // tasks due now
	DueLater      int // tasks due later
	Variable      int // tasks of variable queues (also counted above)
	VariableK     int // variable tasks whose call count k > 0 (carried as the task's k)
	Created       int // tasks created in HTQ
	Existed       int // tasks HTQ already had (an earlier run)
	Deleted       int // members removed from the source
	Malformed     int // members or queues skipped, each in MalformedFile
	MalformedFile string
	DryRun        bool
}

// Tasks is the number of tasks that can be migrated.
func (r *Report) Tasks() int { return r.DueNow + r.DueLater }

type malformedLine struct {
	Queue  string `json:"queue"`
	Member string `json:"member,omitempty"`
	DueMs  int64  `json:"due_ms,omitempty"`
	Error  string `json:"error"`
}

type plannedQueue struct {
	name  string
	spec  QueueSpec
	tasks []Converted
	times map[string]string
}

// Run migrates (or, with DryRun, only reads and counts). An error stops it
// where it is: what HTQ accepted stays accepted (a re-run skips it), and
// nothing is removed from the source that HTQ has not accepted.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	// No defaults here: the command line's are HTQ's (internal/config).
	if o.MinGap <= 0 {
		return nil, fmt.Errorf("migrate: min gap %v: want more than 0", o.MinGap)
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > task.MaxAttemptsLimit {
		return nil, fmt.Errorf("migrate: max attempts %d: want 1 to %d", o.MaxAttempts, task.MaxAttemptsLimit)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if !o.DryRun && o.HTQ == nil {
		return nil, errors.New("migrate: no HTQ client (only a dry run needs none)")
	}
	rep = &Report{DryRun: o.DryRun}
	var bad []malformedLine
	defer func() {
		if werr := writeMalformed(o.MalformedFile, bad); werr != nil && err == nil {
			err = werr
		}
		if len(bad) > 0 {
			rep.MalformedFile = o.MalformedFile
		}
	}()

	// read and convert everything first: a source that cannot be read stops
	// the run before anything moves
	queues, err := o.Source.Queues(ctx)
	if err != nil {
		return rep, err
	}
	now := o.Now()
	var plan []plannedQueue
	for _, q := range queues {
		rep.Queues++
		members, err := o.Source.Members(ctx, q.Name)
		if err != nil {
			return rep, err
		}
		spec, err := ConvertQueue(q.Name, q.Attribute, o.MinGap, o.MaxAttempts)
		if err != nil {
			bad = append(bad, malformedLine{Queue: q.Name, Error: err.Error()})
			for _, m := range members {
				bad = append(bad, malformedLine{Queue: q.Name, Member: m.Member, DueMs: m.DueMs, Error: "its queue cannot be migrated"})
			}
			rep.Malformed += 1 + len(members)
			continue
		}
		pq := plannedQueue{name: q.Name, spec: spec}
		if spec.kind == task.KindVariable {
			if pq.times, err = o.Source.Times(ctx, q.Name); err != nil {
				return rep, err
			}
		}
		for _, m := range members {
			c, err := ConvertMember(o.Source.prefix, q.Name, m, now)
			if err != nil {
				bad = append(bad, malformedLine{Queue: q.Name, Member: m.Member, DueMs: m.DueMs, Error: err.Error()})
				rep.Malformed++
				continue
			}
			if c.DueNow {
				rep.DueNow++
			} else {
				rep.DueLater++
			}
			if spec.kind == task.KindVariable {
				rep.Variable++
				if k, _ := strconv.ParseInt(pq.times[c.RawURL], 10, 64); k > 0 {
					c.Task.K = min(k, task.MaxStartK)
					rep.VariableK++
				}
			}
			pq.tasks = append(pq.tasks, c)
		}
		plan = append(plan, pq)
	}
	if o.DryRun {
		return rep, nil
	}

	done, total := 0, rep.Tasks()
	progress := func() {
		if o.Progress != nil {
			o.Progress(done, total)
		}
	}
	progress()
	for _, pq := range plan {
		exists, err := o.HTQ.QueueExists(ctx, pq.name)
		if err != nil {
			return rep, fmt.Errorf("queue %q: %w", pq.name, err)
		}
		if exists {
			rep.QueuesExisted++
		} else {
			if err := o.HTQ.CreateQueue(ctx, pq.name, pq.spec); err != nil {
				return rep, fmt.Errorf("create queue %q: %w", pq.name, err)
			}
			rep.QueuesCreated++
		}
		for start := 0; start < len(pq.tasks); start += o.Batch {
			chunk := pq.tasks[start:min(start+o.Batch, len(pq.tasks))]
			reqs := make([]TaskRequest, len(chunk))
			for i, c := range chunk {
				reqs[i] = c.Task
			}
			res, err := o.HTQ.AddTasks(ctx, pq.name, reqs)
			if err != nil {
				return rep, fmt.Errorf("queue %q, tasks %d to %d: %w", pq.name, start+1, start+len(chunk), err)
			}
			for _, r := range res {
				if r.Existed {
					rep.Existed++
				} else {
					rep.Created++
				}
			}
			if o.DeleteSource {
				members, urls := make([]string, len(chunk)), make([]string, 0, len(chunk))
				for i, c := range chunk {
					members[i] = c.Member
					if pq.times != nil {
						urls = append(urls, c.RawURL)
					}
				}
				if err := o.Source.Remove(ctx, pq.name, members, urls); err != nil {
					return rep, err // HTQ has them: a re-run finds them as existing
				}
				rep.Deleted += len(members)
			}
			done += len(chunk)
			progress()
		}
	}
	return rep, nil
}

func writeMalformed(path string, lines []malformedLine) error {
	if len(lines) == 0 {
		return nil
	}
	if path == "" {
		return fmt.Errorf("%d members cannot be migrated and no file was named to list them", len(lines))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write the malformed members: %w", err)
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			_ = f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Print writes the report: a table of what was found and, after a real
// run, what was done.
func (r *Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	title := "migrated"
	if r.DryRun {
		title = "dry run: nothing was changed; a real run would migrate"
	}
	fmt.Fprintf(tw, "%s\n", title)
	fmt.Fprintf(tw, "  queues\t%d\n", r.Queues)
	fmt.Fprintf(tw, "  tasks due now\t%d\n", r.DueNow)
	fmt.Fprintf(tw, "  tasks due later\t%d\n", r.DueLater)
	fmt.Fprintf(tw, "  variable tasks\t%d\n", r.Variable)
	if !r.DryRun {
		fmt.Fprintf(tw, "  queues created\t%d\n", r.QueuesCreated)
		fmt.Fprintf(tw, "  queues already in HTQ\t%d\n", r.QueuesExisted)
		fmt.Fprintf(tw, "  tasks created\t%d\n", r.Created)
		fmt.Fprintf(tw, "  tasks already in HTQ (an earlier run)\t%d\n", r.Existed)
		fmt.Fprintf(tw, "  removed from the source\t%d\n", r.Deleted)
	}
	if r.VariableK > 0 {
		fmt.Fprintf(tw, "  variable tasks that keep their call count\t%d\n", r.VariableK)
	}
	fmt.Fprintf(tw, "  malformed, skipped\t%d\n", r.Malformed)
	if r.Malformed > 0 {
		fmt.Fprintf(tw, "  malformed ones listed in\t%s\n", r.MalformedFile)
	}
	return tw.Flush()
}
