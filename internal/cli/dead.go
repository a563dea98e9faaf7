package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

// searchFlags are the search parameters of the task lists (q, code,
// since, until).
type searchFlags struct {
	search, since, until string
	status               int
}

func (f *searchFlags) add(cmd *cobra.Command, what string) {
	fl := cmd.Flags()
	fl.StringVar(&f.search, "search", "", "a task id, or a substring of the URL")
	fl.IntVar(&f.status, "status", 0, "only tasks whose last HTTP status is this")
	fl.StringVar(&f.since, "since", "", "only tasks "+what+" at or after this RFC 3339 time")
	fl.StringVar(&f.until, "until", "", "only tasks "+what+" at or before this RFC 3339 time")
}

func (f *searchFlags) any() bool {
	return f.search != "" || f.status != 0 || f.since != "" || f.until != ""
}

func (f *searchFlags) filter() (client.TaskFilter, error) {
	tf := client.TaskFilter{Q: f.search, Code: f.status}
	if f.status != 0 && (f.status < 100 || f.status > 599) {
		return tf, usagef("--status %d: want an HTTP status, 100 to 599", f.status)
	}
	for _, tv := range []struct {
		name, v string
		dst     **time.Time
	}{{"since", f.since, &tf.Since}, {"until", f.until, &tf.Until}} {
		if tv.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, tv.v)
		if err != nil {
			return tf, usagef("--%s %q: want an RFC 3339 time such as 2026-03-04T05:06:07Z", tv.name, tv.v)
		}
		*tv.dst = &t
	}
	if tf.Since != nil && tf.Until != nil && tf.Since.After(*tf.Until) {
		return tf, usagef("--since is after --until")
	}
	return tf, nil
}

// deadFlags are the filter flags of the dead commands (GET /v1/dead's
// parameters).
type deadFlags struct {
	queue string
	searchFlags
}

func (f *deadFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.queue, "queue", "q", "", "only this queue")
	f.searchFlags.add(cmd, "that died")
}

func (f *deadFlags) any() bool { return f.queue != "" || f.searchFlags.any() }

func (f *deadFlags) filter() (client.DeadFilter, error) {
	tf, err := f.searchFlags.filter()
	return client.DeadFilter{Queue: f.queue, Q: tf.Q, Code: tf.Code, Since: tf.Since, Until: tf.Until}, err
}

func newDead(g *globals) *cobra.Command {
	return group("dead", "List, retry and delete dead letters, across queues",
		newDeadLs(g),
		newDeadAct(g, "retry", "Run dead letters again", "retried", (*client.Client).RetryDeadIDs, (*client.Client).RetryDead),
		newDeadAct(g, "rm", "Delete dead letters", "deleted", (*client.Client).DeleteDeadIDs, (*client.Client).DeleteDead))
}

func newDeadLs(g *globals) *cobra.Command {
	var f deadFlags
	var limit int
	cmd := &cobra.Command{
		Use: "ls [-q QUEUE] [filter]", Short: "List dead letters (grouped by queue, newest first)", Args: cobra.NoArgs,
		Example: "  htq dead ls\n  htq dead ls -q emails --status 500 --since 2026-12-01T00:00:00Z -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			df, err := f.filter()
			if err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ts := []client.Task{}
			opts := client.ListOptions{Limit: 1000}
			for {
				if limit > 0 {
					opts.Limit = min(1000, limit-len(ts))
				}
				p, err := c.ListDead(cmd.Context(), df, opts)
				if err != nil {
					return err
				}
				ts = append(ts, p.Tasks...)
				if p.NextCursor == "" || limit > 0 && len(ts) >= limit {
					break
				}
				opts.Cursor = p.NextCursor
			}
			return g.show(ts, func(w io.Writer) { taskTable(w, ts) })
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many (0: all)")
	return cmd
}

// deadResult is what a retry or delete did, over all its requests.
type deadResult struct {
	Matched int `json:"matched"`
	Done    int `json:"done"`
}

type (
	byIDs    func(*client.Client, ctxT, []string) (*client.DeadBulk, error)
	byFilter func(*client.Client, ctxT, client.DeadFilter, int) (*client.DeadBulk, error)
)

func newDeadAct(g *globals, verb, short, done string, ids byIDs, filter byFilter) *cobra.Command {
	var f deadFlags
	var all, yes bool
	cmd := &cobra.Command{
		Use:   verb + " ID... | --all | FILTER",
		Short: short + ": by id, or every letter (of a queue, matching a filter) after a count and a confirmation",
		Example: fmt.Sprintf(`  htq dead %[1]s 52000000000001 52000000000002
  htq dead %[1]s --all --yes
  htq dead %[1]s -q emails --status 500 --search /hooks/`, verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			bulk := all || f.any()
			switch {
			case len(args) > 0 && bulk:
				return usagef("give ids, or --all or a filter, not both")
			case len(args) == 0 && !bulk:
				return usagef("give ids, or --all (every dead letter), or a filter (-q, --search, --status, --since, --until)")
			case all && f.any():
				return usagef("--all and a filter exclude each other")
			}
			df, err := f.filter()
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var res deadResult
			if !bulk {
				for i := 0; i < len(args); i += client.MaxDeadIDs {
					r, err := ids(c, cmd.Context(), args[i:min(i+client.MaxDeadIDs, len(args))])
					if err != nil {
						return err
					}
					res.Matched += r.Matched
					res.Done += r.Done
				}
				if err := g.show(res, func(w io.Writer) {
					_, _ = fmt.Fprintf(w, "%s %d of %d dead letters\n", done, res.Done, len(args))
				}); err != nil {
					return err
				}
				switch {
				case res.Matched == 0:
					return &notFoundError{fmt.Errorf("none of the %d ids is a dead letter", len(args))}
				case res.Done < len(args):
					return fmt.Errorf("%d of %d ids were not dead letters (or changed meanwhile): skipped", len(args)-res.Done, len(args))
				}
				return nil
			}
			n, err := c.CountDead(cmd.Context(), df)
			if err != nil {
				return err
			}
			if n.Count == 0 {
				return g.show(res, func(w io.Writer) { _, _ = fmt.Fprintln(w, "no dead letters match") })
			}
			count := fmt.Sprint(n.Count)
			if !n.Exact {
				count = "at least " + count
			}
			if err := g.confirm(yes, fmt.Sprintf("%s %s dead letters%s?", verbTitle(verb), count, scope(f.queue))); err != nil {
				return err
			}
			for {
				r, err := filter(c, cmd.Context(), df, 1000)
				if err != nil {
					return fmt.Errorf("after %s %d: %w", done, res.Done, err)
				}
				res.Matched += r.Matched
				res.Done += r.Done
				if r.Remaining == 0 || r.Done == 0 { // none left, or none could be done: stop
					break
				}
				_, _ = fmt.Fprintf(g.env.Stderr, "%s %d, %d left\n", done, res.Done, r.Remaining)
			}
			return g.show(res, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "%s %d dead letters\n", done, res.Done)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every dead letter of every queue")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func verbTitle(verb string) string {
	if verb == "rm" {
		return "Delete"
	}
	return "Retry"
}

func scope(queue string) string {
	if queue == "" {
		return " (all queues)"
	}
	return fmt.Sprintf(" of queue %q", queue)
}
