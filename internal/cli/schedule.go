package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

func newSchedule(g *globals) *cobra.Command {
	return group("schedule", "Recurring tasks: create, inspect, pause, trigger and delete schedules",
		newScheduleLs(g), newScheduleGet(g), newSchedulePut(g), newScheduleRm(g),
		newScheduleAction(g, "pause", "Stop a schedule from firing", (*client.Client).PauseSchedule),
		newScheduleAction(g, "resume", "Let a paused schedule fire again, from its next instant after now", (*client.Client).ResumeSchedule),
		newScheduleTrigger(g))
}

func scheduleTable(w io.Writer, ss []client.Schedule) {
	row(w, "NAME", "QUEUE", "CRON", "TIME_ZONE", "PAUSED", "NEXT_RUN")
	for _, s := range ss {
		next := ""
		if len(s.NextRuns) > 0 {
			next = s.NextRuns[0]
		}
		row(w, s.Name, s.Queue, s.Cron, s.TimeZone, s.Paused, next)
	}
}

func scheduleDetail(w io.Writer, s *client.Schedule) {
	row(w, "name:", s.Name)
	row(w, "queue:", s.Queue)
	row(w, "cron:", s.Cron)
	row(w, "time_zone:", s.TimeZone)
	row(w, "task:", string(s.Task))
	row(w, "missed:", fmt.Sprintf("%s (catch_up %v)", s.Missed, s.CatchUp.Std()))
	row(w, "overlap:", s.Overlap)
	row(w, "jitter:", s.Jitter.Std())
	row(w, "paused:", s.Paused)
	row(w, "start_at:", s.StartAt)
	row(w, "end_at:", s.EndAt)
	for i, n := range s.NextRuns {
		label := ""
		if i == 0 {
			label = "next_runs:"
		}
		row(w, label, n)
	}
	if s.LastRun != nil {
		row(w, "last_run:", fmt.Sprintf("%s task %s %s", s.LastRun.ScheduledAt.UTC().Format(time.RFC3339), s.LastRun.TaskID, s.LastRun.State))
	}
}

func newScheduleLs(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "ls", Short: "List schedules", Args: cobra.NoArgs,
		Example: "  htq schedule ls\n  htq schedule ls -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			out := []client.Schedule{}
			opts := client.ListOptions{Limit: 100}
			for {
				p, err := c.ListSchedules(cmd.Context(), opts)
				if err != nil {
					return err
				}
				out = append(out, p.Schedules...)
				if p.NextCursor == "" {
					break
				}
				opts.Cursor = p.NextCursor
			}
			return g.show(out, func(w io.Writer) { scheduleTable(w, out) })
		},
	}
}

func newScheduleGet(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a schedule, its next runs and its last run", Args: cobra.ExactArgs(1),
		Example: "  htq schedule get nightly-report",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.GetSchedule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(s, func(w io.Writer) { scheduleDetail(w, s) })
		},
	}
}

func newSchedulePut(g *globals) *cobra.Command {
	var (
		queue, cron, tz, missed, overlap, file, startAt, endAt string
		method, data, jsonBody                                 string
		headers, form                                          []string
		catchUp, jitter, timeout                               time.Duration
		maxAttempts                                            int
		paused                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "put NAME -q QUEUE --cron CRON --task-url URL [flags] | put NAME -f FILE|-",
		Short: "Create or replace a schedule",
		Long:  "A schedule is replaced as a whole: fields not given take their defaults. -f reads the JSON of PUT /v1/schedules/{name}.",
		Example: `  htq schedule put nightly-report -q reports --cron '0 9 * * 1-5' --tz Europe/Berlin \
      --task-url https://example.com/report --method POST --json '{"kind":"daily"}'
  htq schedule put poll -q reports --cron '@every 90s' --missed run_all --catch-up 10m --task-url https://example.com/poll
  htq schedule put nightly-report -f schedule.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req client.ScheduleRequest
			f := cmd.Flags()
			if file != "" {
				if n := f.NFlag() - countSet(cmd, "file", "output", "url", "token", "context"); n > 0 {
					return usagef("-f takes no other schedule flags: put every field in the JSON")
				}
				if err := readScheduleFile(g, file, &req); err != nil {
					return err
				}
			} else {
				taskURL, _ := f.GetString("task-url")
				if queue == "" || cron == "" || taskURL == "" {
					return usagef("--queue (-q), --cron and --task-url are required (or -f FILE)")
				}
				t, err := taskFromFlags(taskURL, method, data, jsonBody, "", "", headers, form, 0, timeout, maxAttempts, cmd)
				if err != nil {
					return err
				}
				req = client.ScheduleRequest{Queue: queue, Cron: cron, TimeZone: tz, Task: t, Missed: missed, Overlap: overlap}
				if missed != "" && missed != "skip" && missed != "run_once" && missed != "run_all" {
					return usagef("--missed %q: want skip, run_once or run_all", missed)
				}
				if overlap != "" && overlap != "skip" && overlap != "allow" {
					return usagef("--overlap %q: want skip or allow", overlap)
				}
				if f.Changed("catch-up") {
					req.CatchUp = client.D(catchUp)
				}
				if f.Changed("jitter") {
					req.Jitter = client.D(jitter)
				}
				if f.Changed("paused") {
					req.Paused = &paused
				}
				for _, tv := range []struct {
					name, v string
					dst     **time.Time
				}{{"start-at", startAt, &req.StartAt}, {"end-at", endAt, &req.EndAt}} {
					if tv.v == "" {
						continue
					}
					ts, err := time.Parse(time.RFC3339, tv.v)
					if err != nil {
						return usagef("--%s %q: want an RFC 3339 time", tv.name, tv.v)
					}
					*tv.dst = &ts
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			s, created, err := c.PutSchedule(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return g.show(s, func(w io.Writer) {
				verb := "updated"
				if created {
					verb = "created"
				}
				_, _ = fmt.Fprintf(w, "schedule %q %s\n", s.Name, verb)
				scheduleDetail(w, s)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", `the schedule as JSON from a file ("-": stdin)`)
	fl.StringVarP(&queue, "queue", "q", "", "the queue its tasks go to")
	fl.StringVar(&cron, "cron", "", `a cron expression (5 or 6 fields), @daily, "@every 90s", …`)
	fl.StringVar(&tz, "tz", "", "an IANA time zone (default UTC)")
	fl.String("task-url", "", "the URL each task calls")
	fl.StringVarP(&method, "method", "X", "", "the tasks' HTTP method")
	fl.StringArrayVarP(&headers, "header", "H", nil, "a request header NAME=VALUE (repeatable)")
	fl.StringVarP(&data, "data", "d", "", "the body, sent as is")
	fl.StringVar(&jsonBody, "json", "", "a JSON body")
	fl.StringArrayVar(&form, "form", nil, "a form field NAME=VALUE (repeatable)")
	fl.DurationVar(&timeout, "timeout", 0, "each call's timeout")
	fl.IntVar(&maxAttempts, "max-attempts", 0, "calls of each task at most")
	fl.StringVar(&missed, "missed", "", "skip, run_once or run_all")
	fl.DurationVar(&catchUp, "catch-up", 0, "how far back run_once and run_all look")
	fl.StringVar(&overlap, "overlap", "", "skip or allow")
	fl.DurationVar(&jitter, "jitter", 0, "each task runs up to this long after its instant")
	fl.BoolVar(&paused, "paused", false, "create it paused")
	fl.StringVar(&startAt, "start-at", "", "no run before this RFC 3339 time")
	fl.StringVar(&endAt, "end-at", "", "no run after this RFC 3339 time")
	return cmd
}

func readScheduleFile(g *globals, file string, req *client.ScheduleRequest) error {
	var r io.Reader
	if file == "-" {
		r = g.env.Stdin
	} else {
		f, err := os.Open(file) //nolint:gosec // the user names the file
		if err != nil {
			return usagef("-f: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return usagef("-f %s: %w", file, err)
	}
	if req.Queue == "" || req.Cron == "" || req.Task.URL == "" {
		return usagef("-f %s: queue, cron and task.url are required", file)
	}
	return nil
}

func newScheduleRm(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "rm NAME", Short: "Delete a schedule (the tasks it created stay)", Args: cobra.ExactArgs(1),
		Example: "  htq schedule rm nightly-report",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSchedule(cmd.Context(), args[0]); err != nil {
				return err
			}
			return g.show(map[string]any{"schedule": args[0], "deleted": true}, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "schedule %q deleted\n", args[0])
			})
		},
	}
}

func newScheduleAction(g *globals, name, short string, call func(*client.Client, ctxT, string) (*client.Schedule, error)) *cobra.Command {
	return &cobra.Command{
		Use: name + " NAME", Short: short, Args: cobra.ExactArgs(1),
		Example: "  htq schedule " + name + " nightly-report",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := call(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(s, func(w io.Writer) {
				state := "running"
				if s.Paused {
					state = "paused"
				}
				_, _ = fmt.Fprintf(w, "schedule %q %s\n", s.Name, state)
			})
		},
	}
}

func newScheduleTrigger(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "trigger NAME", Short: "Create one run now, outside the plan", Args: cobra.ExactArgs(1),
		Example: "  htq schedule trigger nightly-report",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			tr, err := c.TriggerSchedule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.show(tr, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "task %s created in %q\n", tr.TaskID, tr.Queue)
			})
		},
	}
}
