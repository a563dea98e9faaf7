package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

// deadFilter selects dead letters of one queue on the client side (the
// per-queue list route has no filter).
type deadFilter struct {
	queue, urlContains, errorContains string
	status                            int
}

func (f *deadFilter) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.queue, "queue", "q", "", "the queue (required)")
	fl.StringVar(&f.urlContains, "url-contains", "", "only tasks whose URL contains this")
	fl.StringVar(&f.errorContains, "error-contains", "", "only tasks whose last error contains this")
	fl.IntVar(&f.status, "status", 0, "only tasks whose last HTTP status is this")
}

func (f *deadFilter) any() bool { return f.urlContains != "" || f.errorContains != "" || f.status != 0 }

func (f *deadFilter) match(t *client.Task) bool {
	return strings.Contains(t.URL, f.urlContains) && strings.Contains(t.LastError, f.errorContains) &&
		(f.status == 0 || t.LastStatus == f.status)
}

func (f *deadFilter) check() error {
	if f.queue == "" {
		return usagef("--queue (-q) is required")
	}
	if f.status < 0 || f.status > 999 {
		return usagef("--status %d: want an HTTP status", f.status)
	}
	return nil
}

// collect lists the queue's dead letters that match.
func (f *deadFilter) collect(cmd *cobra.Command, c *client.Client, limit int) ([]client.Task, error) {
	out := []client.Task{}
	err := listTasks(cmd, c, f.queue, client.StateDead, 0, func(p []client.Task) error {
		for i := range p {
			if f.match(&p[i]) && (limit == 0 || len(out) < limit) {
				out = append(out, p[i])
			}
		}
		return nil
	})
	return out, err
}

func newDead(g *globals) *cobra.Command {
	return group("dead", "List, retry and delete dead letters",
		newDeadLs(g),
		newDeadAct(g, "retry", "Run dead letters again", "retried", func(cmd *cobra.Command, c *client.Client, id string) error {
			_, err := c.RetryTask(cmd.Context(), id)
			return err
		}),
		newDeadAct(g, "rm", "Delete dead letters", "deleted", func(cmd *cobra.Command, c *client.Client, id string) error {
			// DELETE of a task that is not dead would cancel it: check first.
			t, err := c.GetTask(cmd.Context(), id)
			if err != nil {
				return err
			}
			if t.State != client.StateDead {
				return fmt.Errorf("task %s is %s, not a dead letter: not deleted", id, t.State)
			}
			_, _, err = c.CancelTask(cmd.Context(), id)
			return err
		}))
}

func newDeadLs(g *globals) *cobra.Command {
	var f deadFilter
	var limit int
	cmd := &cobra.Command{
		Use: "ls -q QUEUE [filter]", Short: "List a queue's dead letters", Args: cobra.NoArgs,
		Example: "  htq dead ls -q emails\n  htq dead ls -q emails --status 500 -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ts, err := f.collect(cmd, c, limit)
			if err != nil {
				return err
			}
			return g.show(ts, func(w io.Writer) { taskTable(w, ts) })
		},
	}
	f.flags(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many (0: all)")
	return cmd
}

// deadResult is what a bulk retry or delete did.
type deadResult struct {
	Matched int      `json:"matched"`
	Done    int      `json:"done"`
	Failed  int      `json:"failed"`
	Errors  []string `json:"errors,omitempty"`
	first   error
}

func newDeadAct(g *globals, verb, short, done string, act func(*cobra.Command, *client.Client, string) error) *cobra.Command {
	var f deadFilter
	var all, yes bool
	cmd := &cobra.Command{
		Use:   verb + " ID... | -q QUEUE --all | -q QUEUE FILTER",
		Short: short + ": by id, or all (or those matching a filter) of a queue after a confirmation",
		Example: fmt.Sprintf(`  htq dead %[1]s 52000000000001 52000000000002
  htq dead %[1]s -q emails --all --yes
  htq dead %[1]s -q emails --status 500 --url-contains /hooks/`, verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			bulk := all || f.any()
			switch {
			case len(args) > 0 && (bulk || f.queue != ""):
				return usagef("give ids, or -q QUEUE with --all or a filter, not both")
			case len(args) == 0 && !bulk:
				return usagef("give ids, or -q QUEUE with --all or a filter")
			case all && f.any():
				return usagef("--all and a filter exclude each other")
			}
			if bulk {
				if err := f.check(); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ids := args
			if bulk {
				ts, err := f.collect(cmd, c, 0)
				if err != nil {
					return err
				}
				if len(ts) == 0 {
					return g.show(deadResult{}, func(w io.Writer) { _, _ = fmt.Fprintln(w, "no dead letters match") })
				}
				if err := g.confirm(yes, fmt.Sprintf("%s %d dead letters of queue %q?", strings.ToUpper(verb[:1])+verb[1:], len(ts), f.queue)); err != nil {
					return err
				}
				ids = make([]string, len(ts))
				for i := range ts {
					ids[i] = ts[i].ID
				}
			}
			res := runEach(cmd, c, ids, act)
			if err := g.show(res, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "%s %d of %d dead letters\n", done, res.Done, res.Matched)
				for _, e := range res.Errors {
					_, _ = fmt.Fprintln(w, "  "+e)
				}
			}); err != nil {
				return err
			}
			if res.Failed == 1 && res.Matched == 1 {
				return res.first // its own exit code: not found, refused, …
			}
			if res.Failed > 0 {
				return fmt.Errorf("%d of %d failed", res.Failed, res.Matched)
			}
			return nil
		},
	}
	f.flags(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every dead letter of the queue")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// runEach applies act to each id, eight at a time.
func runEach(cmd *cobra.Command, c *client.Client, ids []string, act func(*cobra.Command, *client.Client, string) error) deadResult {
	res := deadResult{Matched: len(ids)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := act(cmd, c, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				res.first = err
				var ae *client.Error
				if errors.As(err, &ae) {
					err = errors.New(Message(err))
				}
				res.Errors = append(res.Errors, id+": "+err.Error())
				return
			}
			res.Done++
		}()
	}
	wg.Wait()
	sort.Strings(res.Errors)
	return res
}
