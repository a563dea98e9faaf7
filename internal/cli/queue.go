package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

func newQueue(g *globals) *cobra.Command {
	return group("queue", "Create, inspect, pause and delete queues",
		newQueueLs(g), newQueueGet(g), newQueuePut(g),
		newQueueAction(g, "pause", "Stop new calls of a queue (calls in flight finish)", (*client.Client).PauseQueue),
		newQueueAction(g, "resume", "Let a paused queue's calls start again", (*client.Client).ResumeQueue),
		newQueuePurge(g), newQueueRm(g))
}

func queueTable(w io.Writer, qs []client.Queue) {
	row(w, "NAME", "TYPE", "PAUSED", "QUEUED", "ACTIVE", "SCHEDULED", "DEAD", "CONCURRENCY", "RATE", "TIMEOUT")
	for _, q := range qs {
		row(w, q.Name, q.Type, q.Paused, q.Counts.Queued, q.Counts.Active, q.Counts.Scheduled, q.Counts.Dead,
			q.Concurrency, q.Rate, q.Timeout.Std())
	}
}

// allQueues reads every page of queues (up to limit; 0: all).
func allQueues(cmd *cobra.Command, c *client.Client, limit int) ([]client.Queue, error) {
	out := []client.Queue{}
	opts := client.ListOptions{Limit: 100}
	for {
		p, err := c.ListQueues(cmd.Context(), opts)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Queues...)
		if p.NextCursor == "" || limit > 0 && len(out) >= limit {
			break
		}
		opts.Cursor = p.NextCursor
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func newQueueLs(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use: "ls", Short: "List queues with their counts", Args: cobra.NoArgs,
		Example: "  htq queue ls\n  htq queue ls -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			qs, err := allQueues(cmd, c, limit)
			if err != nil {
				return err
			}
			return g.show(qs, func(w io.Writer) { queueTable(w, qs) })
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many queues (0: all)")
	return cmd
}

func newQueueGet(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "get QUEUE", Short: "Show a queue's settings and counts", Args: cobra.ExactArgs(1),
		Example: "  htq queue get emails\n  htq queue get emails -o yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q, err := c.GetQueue(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(q, func(w io.Writer) { queueDetail(w, q) })
		},
	}
}

func queueDetail(w io.Writer, q *client.Queue) {
	row(w, "name:", q.Name)
	row(w, "type:", q.Type)
	if q.Type == "variable" {
		row(w, "stepping_time:", q.SteppingTime.Std())
		row(w, "max_time_interval:", q.MaxTimeInterval.Std())
	}
	row(w, "paused:", q.Paused)
	row(w, "concurrency:", q.Concurrency)
	row(w, "rate:", q.Rate)
	row(w, "burst:", q.Burst)
	row(w, "timeout:", q.Timeout.Std())
	row(w, "retry:", fmt.Sprintf("max_attempts %d, backoff %v to %v", q.Retry.MaxAttempts, q.Retry.MinBackoff.Std(), q.Retry.MaxBackoff.Std()))
	row(w, "ordering:", q.Ordering)
	row(w, "max_backlog:", q.MaxBacklog)
	row(w, "retention:", q.Retention.Std())
	row(w, "dead_retention:", q.DeadRetention.Std())
	row(w, "created_at:", q.CreatedAt)
	row(w, "counts:", fmt.Sprintf("queued %d, active %d, scheduled %d, dead %d", q.Counts.Queued, q.Counts.Active, q.Counts.Scheduled, q.Counts.Dead))
}

func newQueuePut(g *globals) *cobra.Command {
	var (
		typ, ordering                                            string
		stepping, maxInterval, timeout, minB, maxB, ret, deadRet time.Duration
		concurrency, burst, maxAttempts                          int
		rate                                                     float64
		maxBacklog                                               int64
	)
	cmd := &cobra.Command{
		Use:   "put QUEUE [flags]",
		Short: "Create a queue, or change the given settings of an existing one",
		Long:  "Only the flags given are sent: the others keep their value (or the default, for a new queue).",
		Example: `  htq queue put emails --concurrency 4 --rate 10 --timeout 10s
  htq queue put feeds --type variable --stepping-time 1s --max-time-interval 1m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var s client.QueueSettings
			var r client.Retry
			dur := func(name string, v time.Duration) (*client.Duration, error) {
				if !f.Changed(name) {
					return nil, nil
				}
				if v < 0 {
					return nil, usagef("--%s %v: must not be negative", name, v)
				}
				return client.D(v), nil
			}
			var err error
			for _, d := range []struct {
				name string
				v    time.Duration
				dst  **client.Duration
			}{{"stepping-time", stepping, &s.SteppingTime}, {"max-time-interval", maxInterval, &s.MaxTimeInterval},
				{"timeout", timeout, &s.Timeout}, {"retention", ret, &s.Retention}, {"dead-retention", deadRet, &s.DeadRetention},
				{"min-backoff", minB, &r.MinBackoff}, {"max-backoff", maxB, &r.MaxBackoff}} {
				if *d.dst, err = dur(d.name, d.v); err != nil {
					return err
				}
			}
			if f.Changed("type") {
				if typ != "realtime" && typ != "variable" {
					return usagef("--type %q: want realtime or variable", typ)
				}
				s.Type = typ
			}
			if f.Changed("ordering") {
				if ordering != "strict" && ordering != "relaxed" {
					return usagef("--ordering %q: want strict or relaxed", ordering)
				}
				s.Ordering = ordering
			}
			for _, n := range []struct {
				name string
				v    int
				dst  **int
				min  int
			}{{"concurrency", concurrency, &s.Concurrency, 1}, {"burst", burst, &s.Burst, 0}, {"max-attempts", maxAttempts, &r.MaxAttempts, 1}} {
				if f.Changed(n.name) {
					if n.v < n.min {
						return usagef("--%s %d: want at least %d", n.name, n.v, n.min)
					}
					v := n.v
					*n.dst = &v
				}
			}
			if f.Changed("rate") {
				if rate < 0 {
					return usagef("--rate %v: must not be negative (0: unlimited)", rate)
				}
				s.Rate = &rate
			}
			if f.Changed("max-backlog") {
				if maxBacklog < 1 {
					return usagef("--max-backlog %d: want at least 1", maxBacklog)
				}
				s.MaxBacklog = &maxBacklog
			}
			if r != (client.Retry{}) {
				s.Retry = &r
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			q, created, err := c.PutQueue(cmd.Context(), args[0], s)
			if err != nil {
				return err
			}
			return g.show(q, func(w io.Writer) {
				verb := "updated"
				if created {
					verb = "created"
				}
				_, _ = fmt.Fprintf(w, "queue %q %s\n", q.Name, verb)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "realtime or variable")
	f.DurationVar(&stepping, "stepping-time", 0, "variable queues: the step added to the gap after each call")
	f.DurationVar(&maxInterval, "max-time-interval", 0, "variable queues: the largest gap")
	f.IntVar(&concurrency, "concurrency", 0, "calls in flight at most")
	f.Float64Var(&rate, "rate", 0, "calls per second at most (0: unlimited)")
	f.IntVar(&burst, "burst", 0, "calls allowed at once above the rate")
	f.DurationVar(&timeout, "timeout", 0, "each call's timeout")
	f.IntVar(&maxAttempts, "max-attempts", 0, "calls of a task at most (retry.max_attempts)")
	f.DurationVar(&minB, "min-backoff", 0, "retry.min_backoff")
	f.DurationVar(&maxB, "max-backoff", 0, "retry.max_backoff")
	f.StringVar(&ordering, "ordering", "", "strict or relaxed")
	f.Int64Var(&maxBacklog, "max-backlog", 0, "tasks the queue may hold")
	f.DurationVar(&ret, "retention", 0, "how long finished tasks are kept")
	f.DurationVar(&deadRet, "dead-retention", 0, "how long dead letters are kept")
	return cmd
}

func newQueueAction(g *globals, name, short string, call func(*client.Client, ctxT, string) (*client.Queue, error)) *cobra.Command {
	return &cobra.Command{
		Use: name + " QUEUE", Short: short, Args: cobra.ExactArgs(1),
		Example: "  htq queue " + name + " emails",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q, err := call(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(q, func(w io.Writer) {
				state := "running"
				if q.Paused {
					state = "paused"
				}
				_, _ = fmt.Fprintf(w, "queue %q %s\n", q.Name, state)
			})
		},
	}
}

func newQueuePurge(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use: "purge QUEUE", Short: "Delete every task waiting in a queue (not those in flight, not dead letters)",
		Args: cobra.ExactArgs(1), Example: "  htq queue purge emails --yes",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q, err := c.GetQueue(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := g.confirm(yes, fmt.Sprintf("Purge queue %q (%d queued, %d scheduled)?", q.Name, q.Counts.Queued, q.Counts.Scheduled)); err != nil {
				return err
			}
			p, err := c.PurgeQueue(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(p, func(w io.Writer) { _, _ = fmt.Fprintf(w, "purged %d tasks from %q\n", p.Purged, p.Queue) })
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newQueueRm(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use: "rm QUEUE", Short: "Delete a queue and all its tasks", Args: cobra.ExactArgs(1),
		Example: "  htq queue rm old-queue --yes",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q, err := c.GetQueue(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			n := q.Counts.Queued + q.Counts.Active + q.Counts.Scheduled + q.Counts.Dead
			if err := g.confirm(yes, fmt.Sprintf("Delete queue %q and its %d tasks?", q.Name, n)); err != nil {
				return err
			}
			if err := c.DeleteQueue(cmd.Context(), args[0]); err != nil {
				return err
			}
			return g.show(map[string]any{"queue": q.Name, "deleted": true}, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "queue %q deleted\n", q.Name)
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirm asks question on stderr and reads the answer from stdin; only
// "y" or "yes" goes on. --yes skips it.
func (g *globals) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	_, _ = fmt.Fprintf(g.env.Stderr, "%s [y/N] ", question)
	if g.env.Stdin == nil {
		return usagef("no answer (stdin closed): pass --yes to go ahead without asking")
	}
	line, err := bufio.NewReader(g.env.Stdin).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	if ans == "y" || ans == "yes" {
		return nil
	}
	if err != nil && ans == "" {
		return usagef("no answer (stdin closed): pass --yes to go ahead without asking")
	}
	return fmt.Errorf("not confirmed: nothing changed")
}
