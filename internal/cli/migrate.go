package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	htqconfig "github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/migrate"
)

func newMigrateLegacy(env Env, g *globals) *cobra.Command {
	var (
		fromRedis, fromPrefix, htqURL, token, malformed string
		dryRun, deleteSource                            bool
		minGap                                          time.Duration
		maxAttempts, batch                              int
	)
	cmd := &cobra.Command{
		Use:   "migrate-legacy --from-redis URL [flags]",
		Short: "Move the original HTQ's queues and pending tasks into a running HTQ",
		Long: `Reads the original (Node.js) HTQ's queues and pending tasks from its Redis
and enqueues them into a running HTQ through the REST API. Stop the original
first. Run with --dry-run to see what would move. Re-running is safe: each
task's idempotency key comes from its source member, so nothing is created
twice (within HTQ's queues.idempotency_window, 24 h by default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromRedis == "" {
				return errors.New("--from-redis is required (the original's Redis, e.g. redis://127.0.0.1:6379/0)")
			}
			ropt, err := redis.ParseURL(fromRedis)
			if err != nil {
				return fmt.Errorf("--from-redis %q: %w", fromRedis, err)
			}
			if htqURL == "" {
				htqURL = env.Getenv("HTQ_URL")
			}
			if token == "" {
				token = env.Getenv("HTQ_TOKEN")
			}
			if htqURL == "" || token == "" { // then the context, as for every command
				c, err := g.currentContext()
				if err != nil {
					return err
				}
				if c != nil && htqURL == "" {
					htqURL = c.URL
				}
				if c != nil && token == "" {
					token = c.Token
				}
			}
			ctx := cmd.Context()
			var client *migrate.Client
			if !dryRun || htqURL != "" {
				if client, err = migrate.NewClient(htqURL, token, &http.Client{Timeout: 60 * time.Second}); err != nil {
					return err
				}
			}
			rdb := redis.NewClient(ropt)
			defer func() { _ = rdb.Close() }()
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("cannot reach the original's Redis at %s: %w", ropt.Addr, err)
			}
			if client != nil {
				if err := client.Check(ctx); err != nil {
					return err
				}
			}
			if malformed == "" {
				malformed = fmt.Sprintf("htq-migrate-malformed-%s.jsonl", time.Now().UTC().Format("20060102T150405Z"))
			}
			var bar *progressBar
			if env.IsTerminal && !dryRun {
				bar = &progressBar{w: env.Stderr}
			}
			rep, err := migrate.Run(ctx, migrate.Options{
				Source: migrate.NewSource(rdb, fromPrefix), HTQ: client, DryRun: dryRun, DeleteSource: deleteSource,
				MalformedFile: malformed, Batch: batch, MinGap: minGap, MaxAttempts: maxAttempts,
				Progress: bar.update,
			})
			bar.finish()
			if rep != nil {
				if perr := rep.Print(env.Stdout); perr != nil && err == nil {
					err = perr
				}
			}
			if err != nil {
				return fmt.Errorf("migrate-legacy stopped: %w (what HTQ accepted stays; run again to continue)", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&fromRedis, "from-redis", "", "the original's Redis, as a URL: redis://[:password@]host:port/db (required)")
	f.StringVar(&fromPrefix, "from-prefix", migrate.DefaultPrefix, "the original's redis_key_prefix")
	f.StringVar(&htqURL, "url", "", "HTQ's API, e.g. http://127.0.0.1:5999 (default $HTQ_URL, then the current context)")
	f.StringVar(&token, "token", "", "an HTQ bearer token (default $HTQ_TOKEN, then the current context)")
	f.BoolVar(&dryRun, "dry-run", false, "read and count, change nothing")
	f.BoolVar(&deleteSource, "delete-source", false, "remove each task from the original's Redis once HTQ has accepted it")
	f.StringVar(&malformed, "malformed-file", "", "where members that cannot be migrated are listed, one JSON line each (default htq-migrate-malformed-<time>.jsonl)")
	f.DurationVar(&minGap, "min-gap", htqconfig.DefaultLegacyMinGap, "the floor gap of variable queues (as HTQ's legacy.min_gap)")
	f.IntVar(&maxAttempts, "max-attempts", htqconfig.DefaultLegacyMaxAttempts, "retry.max_attempts of the queues created (as HTQ's legacy.max_attempts)")
	f.IntVar(&batch, "batch", migrate.DefaultBatch, "tasks per batch request (at most HTQ's api.max_batch)")
	return cmd
}

// progressBar draws "[####----] done/total tasks" on a terminal.
type progressBar struct {
	w     io.Writer
	drawn bool
}

func (p *progressBar) update(done, total int) {
	if p == nil || total == 0 {
		return
	}
	const width = 30
	n := width * done / total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d tasks", strings.Repeat("#", n), strings.Repeat("-", width-n), done, total)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}
