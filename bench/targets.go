package main

// The issues' targets, judged against the medians of this run and printed
// under the table. A ratio compares two scenarios of the same run, so that a
// noisy machine moves both sides together.

import (
	"fmt"
	"io"
	"strings"
)

// metric names one figure of a result: its value, its p50 or p99, or an
// extra key.
type metric struct {
	scenario string
	field    string // "" = value, "p50", "p99", else a key of extra
}

func (m metric) String() string {
	if m.field == "" {
		return m.scenario
	}
	return m.scenario + "." + m.field
}

// get returns the figure, or why there is none.
func (m metric) get(res Results) (float64, string) {
	r, ok := res[m.scenario]
	switch {
	case !ok:
		return 0, "not run"
	case r.Unit == "error" || strings.Contains(r.Note, "FAILED"):
		return 0, "FAILED"
	}
	switch m.field {
	case "":
		return r.Value, ""
	case "p50", "p99":
		p := r.P50
		if m.field == "p99" {
			p = r.P99
		}
		if p == nil {
			return 0, "no " + m.field
		}
		return *p, ""
	}
	v, ok := r.Extra[m.field]
	if !ok {
		return 0, "no " + m.field
	}
	return v, ""
}

// goal is one target: num (or num / den) compared with limit.
type goal struct {
	what   string
	num    metric
	den    *metric // a ratio of two figures when set
	atMost bool    // num ≤ limit (else ≥)
	limit  float64
}

// goals are the targets of issue 11's cost goals (wakeup, idle, busy path,
// many_queues, restarts).
var goals = func() []goal {
	var g []goal
	for _, n := range wakeupCounts {
		s := wakeupName(n)
		g = append(g,
			goal{what: s + " Redis commands/task", num: metric{s, "redis_cmds_per_task"}, atMost: true, limit: 40},
			goal{what: s + " Redis CPU us/task", num: metric{s, "redis_cpu_us_per_task"}, atMost: true, limit: 80},
			goal{what: s + " pick-up p99 ms", num: metric{s, "p99"}, atMost: true, limit: 5},
		)
	}
	first, most := wakeupName(wakeupCounts[0]), wakeupName(wakeupCounts[len(wakeupCounts)-1])
	g = append(g,
		goal{what: "wakeup Redis CPU/task, 4 dispatchers / 1", num: metric{most, "redis_cpu_us_per_task"},
			den: &metric{first, "redis_cpu_us_per_task"}, atMost: true, limit: 1.2},
		goal{what: "wakeup Redis commands/task, 4 dispatchers / 1", num: metric{most, "redis_cmds_per_task"},
			den: &metric{first, "redis_cmds_per_task"}, atMost: true, limit: 1.2},
		goal{what: "idle Redis commands/s", num: metric{"idle", ""}, atMost: true, limit: 100},
		goal{what: "dispatch_multi Redis CPU us/task", num: metric{"dispatch_multi", "redis_cpu_us_per_task"}, atMost: true, limit: 35},
		goal{what: "dispatch_multi / asynq_c10", num: metric{"dispatch_multi", ""}, den: &metric{"asynq_c10", ""}, limit: 1.2},
		goal{what: "dispatch_multi / ceiling_multi_proc", num: metric{"dispatch_multi", ""}, den: &metric{"ceiling_multi_proc", ""}, limit: 0.9},
		goal{what: "dispatch_serial / ceiling_serial_proc", num: metric{"dispatch_serial", ""}, den: &metric{"ceiling_serial_proc", ""}, limit: 0.95},
		goal{what: "many_queues slowest / mean completion", num: metric{"many_queues", ""}, atMost: true, limit: 3},
		goal{what: "restarts: most consumers in one queue", num: metric{"restarts", ""}, atMost: true, limit: 1},
	)
	return g
}()

// verdict is a goal judged.
type verdict struct {
	goal
	value  float64
	status string // "met", "NOT MET", or why it could not be judged
}

// judge evaluates every goal whose figures ran (partly run goals say what is
// missing; goals none of whose scenarios ran are left out).
func judge(res Results, gs []goal) []verdict {
	var out []verdict
	for _, g := range gs {
		v, why := g.num.get(res)
		_, ranNum := res[g.num.scenario]
		ranDen := false
		if g.den != nil {
			_, ranDen = res[g.den.scenario]
			d, whyDen := g.den.get(res)
			switch {
			case why != "":
			case whyDen != "":
				why = g.den.scenario + " " + whyDen
			case d <= 0:
				why = g.den.String() + " is 0"
			default:
				v /= d
			}
		}
		if !ranNum && !ranDen {
			continue
		}
		status := why
		if why == "" {
			status = "NOT MET"
			if (g.atMost && v <= g.limit) || (!g.atMost && v >= g.limit) {
				status = "met"
			}
		}
		out = append(out, verdict{goal: g, value: v, status: status})
	}
	return out
}

// PrintVerdicts prints the judged goals (nothing when none ran).
func PrintVerdicts(w io.Writer, vs []verdict) {
	if len(vs) == 0 {
		return
	}
	rows := [][]string{{"target", "measured", "verdict"}}
	for _, v := range vs {
		op := "≥"
		if v.atMost {
			op = "≤"
		}
		measured := "-"
		if v.status == "met" || v.status == "NOT MET" {
			measured = fmtFloat(v.value)
		}
		rows = append(rows, []string{fmt.Sprintf("%s %s %s", v.what, op, fmtFloat(v.limit)), measured, v.status})
	}
	width := []int{0, 0}
	for _, r := range rows {
		width[0] = max(width[0], len([]rune(r[0])))
		width[1] = max(width[1], len(r[1]))
	}
	fmt.Fprintln(w, "\ntargets (medians of this run; a ratio divides two scenarios of this run):")
	for _, r := range rows {
		fmt.Fprintf(w, "%s%s  %*s  %s\n", r[0], strings.Repeat(" ", width[0]-len([]rune(r[0]))), width[1], r[1], r[2])
	}
}
