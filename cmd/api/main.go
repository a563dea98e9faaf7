// Command htq-api runs HTQ's api role. See the README for its flags and
// configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // api.time_zone works in images without /usr/share/zoneinfo

	"github.com/htq/htq/internal/roles"
)

func main() {
	env, err := roles.Setup("api", os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, roles.ErrVersion), errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "htq-api:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	if err := roles.RunAPI(ctx, env); err != nil {
		env.Log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
