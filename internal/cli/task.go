package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

func newTask(g *globals) *cobra.Command {
	return group("task", "Push, inspect, cancel and retry tasks",
		newTaskPush(g), newTaskGet(g), newTaskLs(g), newTaskCancel(g), newTaskRetry(g))
}

// keyValues parses repeated K=V flags.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--%s %q: want NAME=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func newTaskPush(g *globals) *cobra.Command {
	var (
		queue, method, data, jsonBody, at, idemKey string
		headers, form                              []string
		delay, timeout                             time.Duration
		maxAttempts                                int
	)
	cmd := &cobra.Command{
		Use:   "push -q QUEUE URL | -q QUEUE -",
		Short: "Add a task to a queue (from flags, or a JSON task on stdin with -)",
		Example: `  htq task push -q emails https://shop.example/hook --method POST --json '{"order":42}'
  htq task push -q emails https://shop.example/hook --form a=1 --form b=2 --delay 10m
  echo '{"url":"https://shop.example/hook","method":"POST","body":{"order":42}}' | htq task push -q emails -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if queue == "" {
				return usagef("--queue (-q) is required")
			}
			var t client.TaskRequest
			if args[0] == "-" {
				if cmd.Flags().NFlag() > countSet(cmd, "queue", "output", "url", "token", "context") {
					return usagef("a task on stdin (-) takes no task flags: put every field in the JSON")
				}
				dec := json.NewDecoder(g.env.Stdin)
				dec.DisallowUnknownFields()
				if err := dec.Decode(&t); err != nil {
					return usagef("the task on stdin: %w", err)
				}
				if t.URL == "" {
					return usagef("the task on stdin: url: required")
				}
			} else {
				var err error
				if t, err = taskFromFlags(args[0], method, data, jsonBody, at, idemKey, headers, form, delay, timeout, maxAttempts, cmd); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			cr, err := c.CreateTask(cmd.Context(), queue, t)
			if err != nil {
				return err
			}
			return g.show(cr, func(w io.Writer) {
				row(w, "ID", "QUEUE", "STATE", "RUN_AT", "EXISTED")
				row(w, cr.ID, cr.Queue, cr.State, cr.RunAt, cr.Existed)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&queue, "queue", "q", "", "the queue (required)")
	f.StringVarP(&method, "method", "X", "", "HTTP method (default GET; POST when a body is given)")
	f.StringArrayVarP(&headers, "header", "H", nil, "a request header NAME=VALUE (repeatable)")
	f.StringVarP(&data, "data", "d", "", "the body, sent as is")
	f.StringVar(&jsonBody, "json", "", "a JSON body (sent with Content-Type: application/json)")
	f.StringArrayVar(&form, "form", nil, "a form field NAME=VALUE (repeatable)")
	f.DurationVar(&delay, "delay", 0, "run after this long")
	f.StringVar(&at, "at", "", "run at this RFC 3339 time")
	f.DurationVar(&timeout, "timeout", 0, "the call's timeout (default the queue's)")
	f.IntVar(&maxAttempts, "max-attempts", 0, "calls at most (default the queue's)")
	f.StringVar(&idemKey, "idempotency-key", "", "a repeat with the same key returns the first task")
	return cmd
}

// countSet counts which of the named flags were given.
func countSet(cmd *cobra.Command, names ...string) int {
	n := 0
	for _, name := range names {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
			n++
		}
	}
	return n
}

func taskFromFlags(url, method, data, jsonBody, at, idemKey string, headers, form []string,
	delay, timeout time.Duration, maxAttempts int, cmd *cobra.Command) (client.TaskRequest, error) {
	t := client.TaskRequest{URL: url, Method: strings.ToUpper(method), IdempotencyKey: idemKey}
	f := cmd.Flags()
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return t, usagef("URL %q: want an absolute http:// or https:// URL", url)
	}
	var err error
	if t.Headers, err = keyValues("header", headers); err != nil {
		return t, err
	}
	if t.Form, err = keyValues("form", form); err != nil {
		return t, err
	}
	bodies := 0
	for _, set := range []bool{f.Changed("data"), f.Changed("json"), len(form) > 0} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return t, usagef("--data, --json and --form exclude each other")
	}
	if f.Changed("data") {
		b, _ := json.Marshal(data) // a JSON string is sent as its text
		t.Body = b
	}
	if f.Changed("json") {
		if !json.Valid([]byte(jsonBody)) {
			return t, usagef("--json: not valid JSON")
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(jsonBody))
		t.Body = buf.Bytes()
	}
	if bodies > 0 && t.Method == "" {
		t.Method = "POST"
	}
	if bodies > 0 && (t.Method == http.MethodGet || t.Method == http.MethodHead) {
		return t, usagef("--method %s takes no body", t.Method)
	}
	if f.Changed("delay") && f.Changed("at") {
		return t, usagef("--delay and --at exclude each other")
	}
	if f.Changed("delay") {
		if delay < 0 {
			return t, usagef("--delay %v: must not be negative", delay)
		}
		t.Delay = client.D(delay)
	}
	if f.Changed("at") {
		ts, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return t, usagef("--at %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", at)
		}
		t.RunAt = &ts
	}
	if f.Changed("timeout") {
		if timeout <= 0 {
			return t, usagef("--timeout %v: want more than 0", timeout)
		}
		t.Timeout = client.D(timeout)
	}
	if f.Changed("max-attempts") {
		if maxAttempts < 1 || maxAttempts > 1000 {
			return t, usagef("--max-attempts %d: want 1 to 1000", maxAttempts)
		}
		t.MaxAttempts = &maxAttempts
	}
	return t, nil
}

func newTaskGet(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show a task with its attempts", Args: cobra.ExactArgs(1),
		Example: "  htq task get 52000000000001\n  htq task get 52000000000001 -o json",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.GetTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(t, func(w io.Writer) { taskDetail(w, t) })
		},
	}
}

func taskDetail(w io.Writer, t *client.Task) {
	row(w, "id:", t.ID)
	row(w, "queue:", t.Queue)
	row(w, "state:", t.State)
	row(w, "method:", t.Method)
	row(w, "url:", t.URL)
	row(w, "created_at:", t.CreatedAt)
	row(w, "run_at:", t.RunAt)
	row(w, "attempts:", fmt.Sprintf("%d of %d", t.Attempts, t.MaxAttempts))
	row(w, "last_status:", httpStatus(t.LastStatus))
	row(w, "last_error:", t.LastError)
	row(w, "finished_at:", t.FinishedAt)
	if r := t.Request; r != nil {
		for _, h := range r.Headers {
			row(w, "header:", h.Name+": "+h.Value)
		}
		for _, f := range r.Form {
			row(w, "form:", f.Name+"="+f.Value)
		}
		switch {
		case r.Body != nil:
			row(w, "body:", *r.Body)
		case r.BodyBase64 != "":
			row(w, "body_base64:", r.BodyBase64)
		}
	}
	if len(t.History) > 0 {
		row(w)
		row(w, "ATTEMPT", "AT", "STATUS", "LATENCY", "ERROR")
		for _, a := range t.History {
			row(w, a.Attempt, a.At, a.Status, time.Duration(a.LatencyMs)*time.Millisecond, a.Error)
		}
	}
}

func taskTable(w io.Writer, ts []client.Task) {
	row(w, "ID", "QUEUE", "STATE", "METHOD", "URL", "ATTEMPTS", "RUN_AT", "LAST_STATUS", "LAST_ERROR")
	for _, t := range ts {
		row(w, t.ID, t.Queue, t.State, t.Method, t.URL, t.Attempts, t.RunAt, httpStatus(t.LastStatus), t.LastError)
	}
}

var listStates = []string{client.StateQueued, client.StateActive, client.StateScheduled, client.StateRetrying, client.StateDead}

func checkState(s string) error {
	for _, v := range listStates {
		if s == v {
			return nil
		}
	}
	return usagef("--state %q: want %s", s, strings.Join(listStates, ", "))
}

// listTasks reads pages of a queue's tasks in a state that match f, up to
// limit (0: all), handing each page to each.
func listTasks(cmd *cobra.Command, c *client.Client, queue, state string, f client.TaskFilter, limit int, each func([]client.Task) error) error {
	opts := client.ListOptions{Limit: 1000}
	n := 0
	for {
		if limit > 0 {
			opts.Limit = min(1000, limit-n)
		}
		p, err := c.SearchTasks(cmd.Context(), queue, state, f, opts)
		if err != nil {
			return err
		}
		n += len(p.Tasks)
		if err := each(p.Tasks); err != nil {
			return err
		}
		if p.NextCursor == "" || limit > 0 && n >= limit {
			return nil
		}
		opts.Cursor = p.NextCursor
	}
}

func newTaskLs(g *globals) *cobra.Command {
	var queue, state string
	var limit int
	var sf searchFlags
	cmd := &cobra.Command{
		Use: "ls -q QUEUE [--state S] [--search S] [--status N] [--since T] [--until T]", Short: "List a queue's tasks in a state", Args: cobra.NoArgs,
		Example: "  htq task ls -q emails\n  htq task ls -q emails --state scheduled --limit 10 -o json\n  htq task ls -q emails --state retrying --search /hooks/ --status 503",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if queue == "" {
				return usagef("--queue (-q) is required")
			}
			if err := checkState(state); err != nil {
				return err
			}
			tf, err := sf.filter()
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
			if err := listTasks(cmd, c, queue, state, tf, limit, func(p []client.Task) error { ts = append(ts, p...); return nil }); err != nil {
				return err
			}
			return g.show(ts, func(w io.Writer) { taskTable(w, ts) })
		},
	}
	cmd.Flags().StringVarP(&queue, "queue", "q", "", "the queue (required)")
	cmd.Flags().StringVar(&state, "state", client.StateQueued, "queued, active, scheduled, retrying or dead")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many tasks (0: all)")
	sf.add(cmd, "due, queued or dead")
	return cmd
}

func newTaskCancel(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "cancel ID", Short: "Cancel a waiting task, stop a running one after its call, or delete a dead letter",
		Args: cobra.ExactArgs(1), Example: "  htq task cancel 52000000000001",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, res, err := c.CancelTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := struct {
				ID     string       `json:"id"`
				Result string       `json:"result"`         // cancelled, cancel_requested or deleted
				Task   *client.Task `json:"task,omitempty"` // absent once deleted
			}{ID: args[0], Task: t, Result: map[client.CancelResult]string{client.Cancelled: "cancelled",
				client.CancelRequested: "cancel_requested", client.DeadDeleted: "deleted"}[res]}
			return g.show(out, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "task %s %s\n", out.ID, strings.ReplaceAll(out.Result, "_", " "))
			})
		},
	}
}

func newTaskRetry(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "retry ID", Short: "Run a dead or cancelled task again", Args: cobra.ExactArgs(1),
		Example: "  htq task retry 52000000000001",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.RetryTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(t, func(w io.Writer) { _, _ = fmt.Fprintf(w, "task %s %s\n", t.ID, t.State) })
		},
	}
}

// httpStatus shows a status, or "-" before the first answer.
func httpStatus(s int) any {
	if s == 0 {
		return nil
	}
	return s
}
