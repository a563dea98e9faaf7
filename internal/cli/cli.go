// Package cli builds the htq command-line tool's command tree (spf13/cobra).
// cmd/htq only runs it; each subcommand lives in its own file here and
// keeps its logic in a domain package (migrate-legacy: internal/migrate).
package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/htq/htq/internal/buildinfo"
)

// Env is what the commands get from the process.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// IsTerminal reports whether Stderr is a terminal (a progress bar is
	// drawn only then).
	IsTerminal bool
}

// NewRoot returns the htq command with its subcommands.
func NewRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "htq",
		Short:         "HTQ's command-line tool",
		Version:       buildinfo.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.AddCommand(newMigrateLegacy(env))
	return root
}

// Execute runs the command line args and returns the error to report.
func Execute(ctx context.Context, env Env, args []string) error {
	root := NewRoot(env)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
