package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/buildinfo"
)

// globals are the flags every command shares and what comes of them.
type globals struct {
	env                         Env
	url, token, context, output string
	ran                         bool // a command's RunE was entered
	api                         *client.Client
}

// client returns the API client for --url/--token, $HTQ_URL/$HTQ_TOKEN or
// the context (each of URL and token from the first place that has it).
func (g *globals) client() (*client.Client, error) {
	if g.api != nil {
		return g.api, nil
	}
	url, token := g.url, g.token
	if url == "" {
		url = g.env.Getenv("HTQ_URL")
	}
	if token == "" {
		token = g.env.Getenv("HTQ_TOKEN")
	}
	if url == "" || token == "" || g.context != "" {
		ctx, err := g.currentContext()
		if err != nil {
			return nil, err
		}
		if ctx != nil {
			if url == "" {
				url = ctx.URL
			}
			if token == "" {
				token = ctx.Token
			}
		}
	}
	if url == "" {
		return nil, usagef("no HTQ URL: pass --url, set HTQ_URL or add a context (htq context add NAME --url URL --token -)")
	}
	c, err := client.New(url, client.WithToken(token), client.WithUserAgent(buildinfo.UserAgent()),
		client.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}))
	if err != nil {
		return nil, usagef("--url: %w", err)
	}
	g.api = c
	return c, nil
}

// currentContext is the context named by --context, else the config's
// current one (nil when there is none and none was asked for).
func (g *globals) currentContext() (*contextEntry, error) {
	path, err := configPath(g.env.Getenv)
	if err != nil {
		if g.context != "" {
			return nil, usagef("--context %q: %w", g.context, err)
		}
		return nil, nil
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	name := g.context
	if name == "" {
		name = cfg.Current
	}
	if name == "" {
		return nil, nil
	}
	c := cfg.find(name)
	if c == nil {
		return nil, &notFoundError{fmt.Errorf("context %q is not in %s", name, path)}
	}
	return c, nil
}

// group makes a command that only holds subcommands: run alone or with an
// unknown subcommand it is a usage error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names := make([]string, 0, len(cmd.Commands()))
			for _, s := range cmd.Commands() {
				names = append(names, s.Name())
			}
			return usagef("%s: want a subcommand: %s", cmd.CommandPath(), strings.Join(names, ", "))
		},
	}
	c.AddCommand(subs...)
	return c
}

// ctxT is the context type of the client's methods.
type ctxT = context.Context
