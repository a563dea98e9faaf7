// Command htq is HTQ's command-line tool (see internal/cli and docs/cli.md):
// queues, tasks, dead letters, schedules, import and export, migrate-legacy.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/cli"
)

// quietRedis drops go-redis's own log lines: the command reports a Redis
// it cannot reach itself, once.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv, IsTerminal: isatty.IsTerminal(os.Stderr.Fd()),
		ColorOut: isatty.IsTerminal(os.Stdout.Fd())}
	err := cli.Execute(ctx, env, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "htq:", cli.Message(err))
		os.Exit(cli.ExitCode(err))
	}
}
