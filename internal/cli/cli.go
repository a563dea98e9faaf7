// Package cli builds the htq command-line tool's command tree (spf13/cobra).
// cmd/htq only runs it; each subcommand lives in its own file here and
// keeps its logic in a domain package (the API calls: client; import:
// internal/taskimport; migrate-legacy: internal/migrate).
//
// Exit codes (ExitCode): 0 ok, 1 failure, 2 usage error, 3 not found,
// 4 refused (the API answered 401 or 403).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/buildinfo"
)

// Env is what the commands get from the process.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Getenv         func(string) string
	// IsTerminal reports whether Stderr is a terminal (a progress bar is
	// drawn only then).
	IsTerminal bool
	// ColorOut reports whether Stdout is a terminal (tail colours its
	// lines only then).
	ColorOut bool
}

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitNotFound = 3
	ExitRefused  = 4
)

// usageError is a command line the tool refuses before calling anything.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// notFoundError is something local (a context) that does not exist.
type notFoundError struct{ err error }

func (e *notFoundError) Error() string { return e.err.Error() }
func (e *notFoundError) Unwrap() error { return e.err }

// ExitCode is the process status for the error Execute returned.
func ExitCode(err error) int {
	var (
		ue *usageError
		nf *notFoundError
		ae *client.Error
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &nf):
		return ExitNotFound
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		return ExitRefused
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return ExitNotFound
	}
	return ExitFailure
}

// Message is the line to print for err: the API's message and code for
// an API error, the error's text otherwise.
func Message(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s (%s, HTTP %d)", ae.Message, ae.Code, ae.Status)
	}
	return err.Error()
}

// NewRoot returns the htq command with its subcommands.
func NewRoot(env Env) *cobra.Command {
	root, _ := newRoot(env)
	return root
}

func newRoot(env Env) (*cobra.Command, *globals) {
	g := &globals{env: env}
	root := &cobra.Command{
		Use:   "htq",
		Short: "HTQ's command-line tool",
		Long: `htq drives an HTQ API from a terminal: queues, tasks, dead letters,
schedules, bulk import and export.

Where and who: --url/--token, else $HTQ_URL/$HTQ_TOKEN, else the current
context of ~/.config/htq/config.yaml (htq context add|use|ls|rm).

Exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 refused (auth).`,
		Version:       buildinfo.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch g.output {
			case outTable, outJSON, outYAML:
				return nil
			}
			return usagef("-o %q: want table, json or yaml", g.output)
		},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	if env.Stdin != nil {
		root.SetIn(env.Stdin)
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.url, "url", "", "HTQ's API, e.g. http://127.0.0.1:5999 (default $HTQ_URL, then the current context)")
	pf.StringVar(&g.token, "token", "", "a bearer token (default $HTQ_TOKEN, then the current context)")
	pf.StringVar(&g.context, "context", "", "a context of the config file to use instead of the current one")
	pf.StringVarP(&g.output, "output", "o", outTable, "output format: table, json or yaml")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newMigrateLegacy(env, g), newVersion(g), newCompletion(g), newContext(g),
		newQueue(g), newTask(g), newDead(g), newSchedule(g), newStats(g), newImport(g), newExport(g), newTail(g))
	addCompletions(root, g)
	markRun(root, g)
	return root, g
}

// markRun wraps every command's RunE so that an error returned before any
// of them ran (an unknown command or flag, wrong arguments) is a usage
// error: cobra reports those as plain errors.
func markRun(c *cobra.Command, g *globals) {
	if c.RunE != nil {
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			g.ran = true
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, g)
	}
}

// Execute runs the command line args and returns the error to report
// (ExitCode gives its status, Message its text).
func Execute(ctx context.Context, env Env, args []string) error {
	root, g := newRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ue *usageError
	if err != nil && !g.ran && !errors.As(err, &ue) {
		return &usageError{err}
	}
	return err
}
