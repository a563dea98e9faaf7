package main

// Result type, aggregation over runs, results.json and the stdout table.

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Result is one scenario's outcome. In results.json absent optional fields
// are omitted. For throughput scenarios Value is tasks/s and P50/P99 are
// unset; latency scenarios put the same unit in Value, P50 and P99.
type Result struct {
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
	P50   *float64  `json:"p50,omitempty"`
	P99   *float64  `json:"p99,omitempty"`
	Runs  []float64 `json:"runs,omitempty"`
	Note  string    `json:"note,omitempty"`
	// Extra holds auxiliary per-run measurements of the median run, e.g.
	// redis_cmds_per_task, redis_cpu_us_per_task, tasks, seconds.
	Extra map[string]float64 `json:"extra,omitempty"`
	// Sub holds the sub-results of one run, keyed by the names the scenario
	// declares in Scenario.Subs; the harness reports each under its own
	// name. Not written as part of this result.
	Sub map[string]Result `json:"-"`
}

// Results maps scenario name → Result (written as results.json).
type Results map[string]Result

// F returns a pointer to v (for P50/P99).
func F(v float64) *float64 { return &v }

func round(v float64, digits int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// roundSig keeps about 4 significant digits (at least 0 decimals for large values).
func roundSig(v float64) float64 {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return round(v, 1)
	case a >= 1:
		return round(v, 3)
	default:
		return round(v, 6)
	}
}

// Aggregate combines the runs of one scenario: Value is the median of the
// run values, Runs keeps each run's value in order, and P50/P99/Extra/Note
// come from the median run (for an even count, the lower of the middle two).
func Aggregate(runs []Result) Result {
	if len(runs) == 0 {
		return Result{}
	}
	idx := make([]int, len(runs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return runs[idx[a]].Value < runs[idx[b]].Value })
	mid := runs[idx[(len(runs)-1)/2]]
	out := mid
	out.Value = Median(valuesOf(runs))
	if len(runs) > 1 {
		out.Runs = make([]float64, len(runs))
		for i, r := range runs {
			out.Runs[i] = roundSig(r.Value)
		}
	} else {
		out.Runs = nil
	}
	return out
}

func valuesOf(rs []Result) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.Value
	}
	return v
}

// Median of xs (mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile of xs (nearest rank, p in [0,100]); xs need not be sorted.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	rank = min(max(rank, 0), len(s)-1)
	return s[rank]
}

func (r Result) rounded() Result {
	r.Value = roundSig(r.Value)
	if r.P50 != nil {
		r.P50 = F(roundSig(*r.P50))
	}
	if r.P99 != nil {
		r.P99 = F(roundSig(*r.P99))
	}
	if r.Extra != nil {
		e := make(map[string]float64, len(r.Extra))
		for k, v := range r.Extra {
			e[k] = roundSig(v)
		}
		r.Extra = e
	}
	return r
}

// WriteResults writes res as indented JSON to path (creating directories).
// With merge, scenarios already in an existing file are kept unless res
// replaces them.
func WriteResults(path string, res Results, merge bool) error {
	out := Results{}
	if merge {
		if b, err := os.ReadFile(path); err == nil {
			if err := json.Unmarshal(b, &out); err != nil {
				return fmt.Errorf("merge: parse %s: %w", path, err)
			}
		}
	}
	for k, v := range res {
		out[k] = v.rounded()
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func fmtNum(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmtFloat(*p)
}

func fmtFloat(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// PrintTable prints res as an aligned table, scenarios in the given order
// (names missing from order are appended sorted).
func PrintTable(w io.Writer, res Results, order []string) {
	names := make([]string, 0, len(res))
	seen := map[string]bool{}
	for _, n := range order {
		if _, ok := res[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range res {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)

	rows := [][]string{{"scenario", "value", "unit", "p50", "p99", "runs", "note"}}
	for _, n := range names {
		r := res[n]
		runs := make([]string, len(r.Runs))
		for i, v := range r.Runs {
			runs[i] = fmtFloat(v)
		}
		runStr := strings.Join(runs, " ")
		if runStr == "" {
			runStr = "-"
		}
		rows = append(rows, []string{n, fmtFloat(r.Value), r.Unit, fmtNum(r.P50), fmtNum(r.P99), runStr, r.Note})
	}
	// Columns 1, 3, 4 (value, p50, p99) are right-aligned; the rest left.
	right := map[int]bool{1: true, 3: true, 4: true}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len(c))
			if right[i] {
				b.WriteString(pad + c)
			} else if i == len(row)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
