package roles

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/htq/htq/internal/buildinfo"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/logging"
	"github.com/htq/htq/internal/metrics"
)

// ErrVersion is returned by Setup after printing the version.
var ErrVersion = errors.New("version printed")

// Main is a role's whole command: it sets the role up from args, runs run
// until it returns or SIGINT/SIGTERM cancels its context (a second signal
// ends the process at once), and returns the exit code: 0 when run ended
// cleanly or after --version and --help, 1 when run failed, 2 for a bad
// command line or configuration (the message names the flag or key).
func Main(role string, args []string, stderr io.Writer, run func(context.Context, *Env) error) int {
	env, err := Setup(role, args, stderr)
	switch {
	case errors.Is(err, ErrVersion), errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		_, _ = fmt.Fprintf(stderr, "htq-%s: %v\n", role, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action: a second signal ends the process
	}()
	if err := run(ctx, env); err != nil {
		env.Log.Error("exiting", "err", err)
		return 1
	}
	return 0
}

// Setup parses a role's command line, loads its configuration and builds
// its logger and registry. Flags override the file and the environment:
//
//	--config PATH        YAML file or legacy config.json (env HTQ_CONFIG)
//	--listen ADDR        the role's listener (api: the API; others: health and metrics)
//	--metrics-listen A   api only: serve /metrics on its own listener
//	--log-level L, --log-format F, --version
func Setup(role string, args []string, stderr io.Writer) (*Env, error) {
	fs := flag.NewFlagSet("htq-"+role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("HTQ_CONFIG"), "configuration file: YAML, or the legacy config.json")
	listen := fs.String("listen", "", "listen address (overrides "+role+".listen)")
	metricsListen := ""
	if role == "api" {
		fs.StringVar(&metricsListen, "metrics-listen", "", "serve /metrics on this address instead of the API's")
	}
	level := fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	format := fs.String("log-format", "", "json or text (overrides log.format)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if *version {
		_, _ = fmt.Fprintln(stderr, "htq-"+role, buildinfo.Version)
		return nil, ErrVersion
	}
	loaded, err := config.Load(*path, nil)
	if err != nil {
		return nil, err
	}
	cfg := loaded.Config
	if *listen != "" {
		switch role {
		case "api":
			cfg.API.Listen = *listen
		case "scheduler":
			cfg.Scheduler.Listen = *listen
		case "dispatcher":
			cfg.Dispatcher.Listen = *listen
		}
	}
	if metricsListen != "" {
		cfg.API.MetricsListen = metricsListen
	}
	if *level != "" {
		cfg.Log.Level = *level
	}
	if *format != "" {
		cfg.Log.Format = *format
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// An API with no credentials is a configuration error like any other:
	// plain text and exit 2, before the logger exists (RunAPI checks again).
	if role == "api" {
		if err := cfg.CheckAuth(); err != nil {
			return nil, err
		}
	}
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format, role)
	if err != nil {
		return nil, err
	}
	for _, w := range loaded.Warnings {
		log.Warn(w)
	}
	if loaded.Legacy {
		log.Info("read a legacy config.json", "path", *path)
	}
	return &Env{Config: cfg, Log: log, Registry: metrics.NewRegistry(), Clock: clock.Real{}}, nil
}
