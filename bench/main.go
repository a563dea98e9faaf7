// Command htqbench is the HTQ benchmark harness.
//
// It runs registered scenarios (see Register) against one shared no-op HTTP
// target, each run on its own private redis-server, repeats every scenario
// --runs times, and reports the median as a table on stdout and as
// bench/out/results.json. Run it from bench/ with `go run .` (or
// `go run ./...`); see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config is the parsed command line.
type Config struct {
	Runs      int           // runs per scenario; the median is reported
	Only      []string      // scenario names to run (empty: all of the selected group)
	Quick     bool          // smaller sizes
	Out       string        // results.json path
	Merge     bool          // keep other scenarios already in Out
	Tasks     int           // override the task count of every scenario (0: scenario default)
	Timeout   time.Duration // per run
	Redis     string        // redis-server binary
	RedisArgs []string      // extra redis-server arguments for every private instance
	List      bool          // list scenarios and exit
	Verbose   bool
	CPUProf   string // write a CPU profile of the whole run
	BinDir    string // directory with htq-api, htq-scheduler, htq-dispatcher (default: build them)
	// ProfileDir receives a CPU profile of the first dispatcher of each
	// dispatch run (dispatch_*, scale_out_*), taken through its
	// /debug/pprof/profile for ProfileSecs.
	ProfileDir  string
	ProfileSecs int

	// Legacy system under test (scenarios of group "legacy").
	LegacyURL   string
	LegacyKey   string
	LegacyToken string
}

// Scenario groups.
const (
	GroupReference = "reference" // bare-loop ceilings and asynq
	GroupHTQ       = "htq"       // HTQ itself
	GroupLegacy    = "legacy"    // the legacy system; run only with --legacy-url
)

// Scenario is one benchmark. Run performs ONE run and returns its result;
// the harness repeats it --runs times and aggregates (median).
type Scenario struct {
	Name  string
	Group string
	Desc  string
	Run   func(ctx context.Context, env *Env) (Result, error)
	// Subs names the sub-results a run returns in Result.Sub; each is
	// aggregated over runs like a scenario and reported under its own name.
	Subs []string
	// Timeout is the time limit of one run when it is longer than
	// --timeout (the scenarios that set up 100,000 queues).
	Timeout time.Duration
}

var registry []Scenario

// Register adds a scenario; call it from an init func. Names must be unique
// within a group (the legacy group may reuse a name of another group: only
// one of them runs in an invocation). Scenarios run in registration order
// (file name order across files).
func Register(s Scenario) {
	for _, o := range registry {
		if o.Name == s.Name && (o.Group == s.Group || (o.Group != GroupLegacy && s.Group != GroupLegacy)) {
			panic("duplicate scenario " + s.Name)
		}
	}
	registry = append(registry, s)
}

// Env is what a scenario run gets.
type Env struct {
	Cfg    *Config
	Target *Target // shared target, Reset before each run
	Run    int     // 1-based run number
}

// Size picks the task count: --tasks if given, else quick or full.
func (e *Env) Size(full, quick int) int {
	switch {
	case e.Cfg.Tasks > 0:
		return e.Cfg.Tasks
	case e.Cfg.Quick:
		return quick
	default:
		return full
	}
}

// StartRedis starts a private redis-server configured for benchmarks
// (--save "" --appendonly no). The caller must Stop it.
func (e *Env) StartRedis(ctx context.Context, extraArgs ...string) (*Redis, error) {
	args := append(append([]string(nil), e.Cfg.RedisArgs...), extraArgs...)
	return StartRedis(ctx, RedisOptions{Binary: e.Cfg.Redis, ExtraArgs: args})
}

// Logf prints progress to stderr.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "    "+format+"\n", args...)
}

// Debugf prints to stderr with --v.
func (e *Env) Debugf(format string, args ...any) {
	if e.Cfg.Verbose {
		e.Logf(format, args...)
	}
}

// Measure is the start of a measured interval (see Env.BeginMeasure).
type Measure struct {
	T0     int64 // start on the target's clock (compare with Arrival.T)
	target *Target
	conns0 int64
	numGC0 uint32
}

// Conns is the number of TCP connections the target accepted since T0.
func (m Measure) Conns() int64 { return m.target.Conns() - m.conns0 }

// GCCycles is the number of Go GC cycles completed since T0.
func (m Measure) GCCycles() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC - m.numGC0
}

// BeginMeasure collects garbage left by setup and marks the start of the
// measured interval on the target's clock.
func (e *Env) BeginMeasure() Measure {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Measure{T0: e.Target.Now(), target: e.Target, conns0: e.Target.Conns(), numGC0: ms.NumGC}
}

func parseFlags(args []string) (*Config, error) {
	cfg := &Config{}
	fs := flag.NewFlagSet("htqbench", flag.ContinueOnError)
	fs.IntVar(&cfg.Runs, "runs", 3, "runs per scenario; the median is reported (default 1 with --quick)")
	only := fs.String("only", "", "comma-separated scenario names to run")
	fs.BoolVar(&cfg.Quick, "quick", false, "smaller sizes (whole run < 2 minutes)")
	fs.StringVar(&cfg.Out, "out", "", "results.json path (default out/results.json next to the bench module)")
	fs.BoolVar(&cfg.Merge, "merge", false, "keep scenarios already in --out that this run does not replace")
	fs.IntVar(&cfg.Tasks, "tasks", 0, "override every scenario's task count")
	fs.DurationVar(&cfg.Timeout, "timeout", 3*time.Minute, "time limit of one scenario run")
	fs.StringVar(&cfg.Redis, "redis-server", "", "redis-server binary (default: from PATH, else /usr/bin/redis-server)")
	redisArgs := fs.String("redis-args", "", "extra redis-server arguments (space-separated), e.g. \"--appendonly yes\"")
	fs.BoolVar(&cfg.List, "list", false, "list scenarios and exit")
	fs.BoolVar(&cfg.Verbose, "v", false, "verbose progress")
	fs.StringVar(&cfg.CPUProf, "cpuprofile", "", "write a CPU profile of the benchmark process to this file")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write a CPU profile of the first dispatcher of each dispatch run and of each wakeup run, into this directory")
	fs.IntVar(&cfg.ProfileSecs, "profile-seconds", 2, "length of each --profile-dir profile (make the run last longer with --tasks)")
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "use htq-api, htq-scheduler, htq-dispatcher from this directory instead of building them")
	fs.StringVar(&cfg.LegacyURL, "legacy-url", "", "base URL of the legacy system (enables legacy scenarios, skips the references)")
	fs.StringVar(&cfg.LegacyKey, "legacy-key", "", "legacy system key")
	fs.StringVar(&cfg.LegacyToken, "legacy-token", "", "legacy system token")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	runsSet := false
	fs.Visit(func(f *flag.Flag) { runsSet = runsSet || f.Name == "runs" })
	if cfg.Quick && !runsSet {
		cfg.Runs = 1 // quick mode: one run each unless --runs says otherwise
	}
	if cfg.Runs < 1 {
		return nil, errors.New("--runs must be >= 1")
	}
	if cfg.ProfileSecs < 1 {
		return nil, errors.New("--profile-seconds must be >= 1")
	}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Only = append(cfg.Only, n)
		}
	}
	cfg.RedisArgs = strings.Fields(*redisArgs)
	if cfg.Out == "" {
		cfg.Out = defaultOut()
	}
	return cfg, nil
}

// defaultOut is bench/out/results.json: next to go.mod when run from the
// bench module (go run), else ./out/results.json.
func defaultOut() string {
	dir, _ := os.Getwd()
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/htq/htq/bench") {
			return filepath.Join(d, "out", "results.json")
		}
		if p := filepath.Dir(d); p != d {
			d = p
		} else {
			break
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bench", "go.mod")); err == nil {
		return filepath.Join(dir, "bench", "out", "results.json")
	}
	return filepath.Join(dir, "out", "results.json")
}

// selectScenarios applies --legacy-url and --only.
func selectScenarios(cfg *Config) ([]Scenario, []string, error) {
	var notes []string
	var pool []Scenario
	for _, s := range registry {
		if cfg.LegacyURL != "" {
			if s.Group == GroupLegacy {
				pool = append(pool, s)
			}
		} else if s.Group != GroupLegacy {
			pool = append(pool, s)
		}
	}
	if cfg.LegacyURL != "" {
		notes = append(notes, fmt.Sprintf("--legacy-url %s given: reference and HTQ scenarios skipped", cfg.LegacyURL))
	}
	// The references first (they frame the HTQ numbers), then HTQ; within a
	// group, registration order.
	rank := map[string]int{GroupReference: 0, GroupHTQ: 1, GroupLegacy: 2}
	slices.SortStableFunc(pool, func(a, b Scenario) int { return rank[a.Group] - rank[b.Group] })
	if len(cfg.Only) == 0 {
		return pool, notes, nil
	}
	var only []string
	for _, n := range cfg.Only {
		if n == "scale_out" { // the summary of scale_out_N: run them all
			for _, k := range scaleOutCounts {
				only = append(only, scaleOutName(k))
			}
			continue
		}
		only = append(only, n)
	}
	var out []Scenario
	for _, n := range only {
		i := slices.IndexFunc(registry, func(s Scenario) bool { return s.Name == n })
		if i < 0 {
			return nil, notes, fmt.Errorf("--only: unknown scenario %q (see --list)", n)
		}
		j := slices.IndexFunc(pool, func(s Scenario) bool { return s.Name == n })
		if j < 0 {
			notes = append(notes, fmt.Sprintf("--only %s: skipped (group %s not selected)", n, registry[i].Group))
			continue
		}
		if slices.IndexFunc(out, func(s Scenario) bool { return s.Name == n }) < 0 {
			out = append(out, pool[j])
		}
	}
	// keep registration order
	slices.SortStableFunc(out, func(a, b Scenario) int {
		return slices.IndexFunc(pool, func(s Scenario) bool { return s.Name == a.Name }) -
			slices.IndexFunc(pool, func(s Scenario) bool { return s.Name == b.Name })
	})
	return out, notes, nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == ceilingWorkerArg {
		return runCeilingWorker(args[1:])
	}
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "htqbench:", err)
		return 2
	}
	if cfg.List {
		for _, s := range registry {
			fmt.Printf("%-22s %-10s %s\n", s.Name, s.Group, s.Desc)
			for _, sub := range s.Subs {
				fmt.Printf("  %-20s %-10s (reported by %s)\n", sub, s.Group, s.Name)
			}
		}
		return 0
	}
	defer StopAllRedis()
	defer cleanupHTQ()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second signal while cleaning up: kill the redis servers and leave.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		cleanupHTQ()
		StopAllRedis()
		os.Exit(130)
	}()

	scen, notes, err := selectScenarios(cfg)
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "htqbench:", err)
		return 2
	}
	if len(scen) == 0 {
		fmt.Println("note: no scenarios selected; results not written")
		return 0
	}

	target, err := StartTarget(1 << 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, "htqbench: target:", err)
		return 1
	}
	defer target.Close()

	mode := "full"
	if cfg.Quick {
		mode = "quick"
	}
	fmt.Fprintf(os.Stderr, "htqbench: %s mode, %d run(s) each, %d scenario(s), target %s, %s GOMAXPROCS=%d\n",
		mode, cfg.Runs, len(scen), target.URL, runtime.Version(), runtime.GOMAXPROCS(0))

	if cfg.CPUProf != "" {
		f, err := os.Create(cfg.CPUProf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "htqbench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "htqbench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	began := time.Now()
	load0 := loadAvg()
	results := Results{}
	var order []string
	failed := false
	for _, s := range scen {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "== %s (%s)\n", s.Name, s.Desc)
		var runs []Result
		var errs []string
		subRuns := map[string][]Result{}
		for i := 1; i <= cfg.Runs && ctx.Err() == nil; i++ {
			target.Reset(1 << 16)
			env := &Env{Cfg: cfg, Target: target, Run: i}
			rctx, cancel := context.WithTimeout(ctx, max(cfg.Timeout, s.Timeout))
			t0 := time.Now()
			r, err := s.Run(rctx, env)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Sprintf("run %d: %v", i, err))
				fmt.Fprintf(os.Stderr, "   run %d/%d: ERROR %v\n", i, cfg.Runs, err)
				continue
			}
			for _, sub := range s.Subs {
				if sr, ok := r.Sub[sub]; ok {
					subRuns[sub] = append(subRuns[sub], sr)
				}
			}
			r.Sub = nil
			runs = append(runs, r)
			fmt.Fprintf(os.Stderr, "   run %d/%d: %s %s (%.1fs, load %s)%s\n", i, cfg.Runs, fmtFloat(r.Value), r.Unit,
				time.Since(t0).Seconds(), loadAvg(), prefixIf("  ", r.Note))
			if cfg.Verbose {
				fmt.Fprintf(os.Stderr, "    extra: %s\n", fmtExtra(r))
			}
		}
		if len(errs) > 0 {
			failed = true
		}
		if len(runs) == 0 {
			results[s.Name] = Result{Unit: "error", Note: "FAILED: " + strings.Join(errs, "; ")}
		} else {
			agg := Aggregate(runs)
			if len(errs) > 0 {
				agg.Note = strings.TrimSpace(agg.Note + " FAILED " + strings.Join(errs, "; "))
			}
			results[s.Name] = agg
		}
		order = append(order, s.Name)
		for _, sub := range s.Subs {
			if len(subRuns[sub]) == 0 {
				results[sub] = Result{Unit: "error", Note: "FAILED: see " + s.Name}
			} else {
				results[sub] = Aggregate(subRuns[sub])
			}
			order = append(order, sub)
		}
	}

	if sum, ok := scaleOutSummary(results); ok {
		results["scale_out"] = sum
		order = append(order, "scale_out")
	}
	fmt.Println()
	PrintTable(os.Stdout, results, order)
	PrintVerdicts(os.Stdout, judge(results, goals))
	fmt.Printf("\n%s mode, %d run(s) each (median), wall time %.1fs\n", mode, cfg.Runs, time.Since(began).Seconds())
	if htqBins.desc != "" {
		fmt.Printf("htq binaries %s\n", htqBins.desc)
	}
	if load0 != "" {
		fmt.Printf("load average (1/5/15 min) at start %s, at end %s, on %d CPUs\n", load0, loadAvg(), runtime.NumCPU())
		if busy(load0) || busy(loadAvg()) {
			fmt.Println("warning: the load average exceeded the CPU count: other processes competed with the benchmark; treat the numbers as noisy")
		}
	}
	if ctx.Err() != nil {
		fmt.Println("interrupted: results not written")
		return 130
	}
	if err := WriteResults(cfg.Out, results, cfg.Merge); err != nil {
		fmt.Fprintln(os.Stderr, "htqbench: write results:", err)
		return 1
	}
	fmt.Println("results:", cfg.Out)
	if failed {
		return 1
	}
	return 0
}

// loadAvg returns the 1, 5 and 15 minute load averages ("" where unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// busy reports a 1- or 5-minute load average above the CPU count.
func busy(load string) bool {
	f := strings.Fields(load)
	for _, x := range f[:min(2, len(f))] {
		if v, err := strconv.ParseFloat(x, 64); err == nil && v > float64(runtime.NumCPU()) {
			return true
		}
	}
	return false
}

// fmtExtra formats a run's p50/p99 and extra (sorted keys) for -v.
func fmtExtra(r Result) string {
	var parts []string
	if r.P50 != nil && r.P99 != nil {
		parts = append(parts, "p50="+fmtFloat(*r.P50), "p99="+fmtFloat(*r.P99))
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+fmtFloat(r.Extra[k]))
	}
	return strings.Join(parts, " ")
}

func prefixIf(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
