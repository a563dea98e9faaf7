package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

func newContext(g *globals) *cobra.Command {
	var url, token string
	var use bool
	add := &cobra.Command{
		Use:   "add NAME --url URL [--token -|TOKEN]",
		Short: "Add or replace a named API and token (the first one added becomes current)",
		Example: `  echo "$TOKEN" | htq context add prod --url https://htq.example.com --token -
  htq context add local --url http://127.0.0.1:5999 --token dev-token --use`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			name := args[0]
			if strings.TrimSpace(name) == "" {
				return usagef("context name: empty")
			}
			if url == "" {
				return usagef("--url is required")
			}
			if _, err := client.New(url); err != nil {
				return usagef("--url: %w", err)
			}
			if token == "-" {
				t, err := readToken(g.env.Stdin)
				if err != nil {
					return err
				}
				token = t
			}
			path, cfg, err := g.config()
			if err != nil {
				return err
			}
			entry := contextEntry{Name: name, URL: url, Token: token}
			if c := cfg.find(name); c != nil {
				*c = entry
			} else {
				cfg.Contexts = append(cfg.Contexts, entry)
			}
			if use || cfg.Current == "" {
				cfg.Current = name
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			return g.show(contextChange{Context: name, Current: cfg.Current, File: path}, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "context %q saved in %s (current: %s)\n", name, path, cfg.Current)
			})
		},
	}
	add.Flags().StringVar(&url, "url", "", "the API, e.g. https://htq.example.com (required)")
	add.Flags().StringVar(&token, "token", "", `the bearer token; "-" reads it from stdin (keeps it out of the shell's history)`)
	add.Flags().BoolVar(&use, "use", false, "make it the current context")

	useCmd := &cobra.Command{
		Use: "use NAME", Short: "Make a context the current one", Args: cobra.ExactArgs(1),
		Example: "  htq context use prod",
		RunE: func(_ *cobra.Command, args []string) error {
			path, cfg, err := g.config()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) == nil {
				return &notFoundError{fmt.Errorf("context %q is not in %s", args[0], path)}
			}
			cfg.Current = args[0]
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			return g.show(contextChange{Context: args[0], Current: args[0], File: path}, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "current context: %s\n", args[0])
			})
		},
	}
	ls := &cobra.Command{
		Use: "ls", Short: "List the contexts (tokens are never shown)", Args: cobra.NoArgs,
		Example: "  htq context ls",
		RunE: func(*cobra.Command, []string) error {
			_, cfg, err := g.config()
			if err != nil {
				return err
			}
			type shown struct {
				Name    string `json:"name"`
				URL     string `json:"url"`
				Token   bool   `json:"token"` // whether one is set
				Current bool   `json:"current"`
			}
			out := make([]shown, 0, len(cfg.Contexts))
			for _, c := range cfg.Contexts {
				out = append(out, shown{c.Name, c.URL, c.Token != "", c.Name == cfg.Current})
			}
			return g.show(out, func(w io.Writer) {
				row(w, "CURRENT", "NAME", "URL", "TOKEN")
				for _, c := range out {
					cur := ""
					if c.Current {
						cur = "*"
					}
					tok := "none"
					if c.Token {
						tok = "set"
					}
					row(w, cur, c.Name, c.URL, tok)
				}
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm NAME", Short: "Remove a context", Args: cobra.ExactArgs(1),
		Example: "  htq context rm staging",
		RunE: func(_ *cobra.Command, args []string) error {
			path, cfg, err := g.config()
			if err != nil {
				return err
			}
			kept := cfg.Contexts[:0]
			for _, c := range cfg.Contexts {
				if c.Name != args[0] {
					kept = append(kept, c)
				}
			}
			if len(kept) == len(cfg.Contexts) {
				return &notFoundError{fmt.Errorf("context %q is not in %s", args[0], path)}
			}
			cfg.Contexts = kept
			if cfg.Current == args[0] {
				cfg.Current = ""
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			return g.show(contextChange{Context: args[0], Current: cfg.Current, File: path, Removed: true}, func(w io.Writer) {
				_, _ = fmt.Fprintf(w, "context %q removed\n", args[0])
			})
		},
	}
	return group("context", "Named APIs and tokens in ~/.config/htq/config.yaml", add, useCmd, ls, rm)
}

// contextChange is what add, use and rm did (never the token).
type contextChange struct {
	Context string `json:"context"`
	Current string `json:"current"`
	File    string `json:"file"`
	Removed bool   `json:"removed,omitempty"`
}

// config loads the config file, for the context commands.
func (g *globals) config() (string, *config, error) {
	path, err := configPath(g.env.Getenv)
	if err != nil {
		return "", nil, usagef("%w", err)
	}
	cfg, err := loadConfig(path)
	return path, cfg, err
}

// readToken reads a token from the first line of r.
func readToken(r io.Reader) (string, error) {
	if r == nil {
		return "", usagef("--token -: no stdin")
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the token from stdin: %w", err)
	}
	t := strings.TrimSpace(line)
	if t == "" {
		return "", usagef("--token -: stdin held no token")
	}
	return t, nil
}
