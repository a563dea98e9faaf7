package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/htq/htq/internal/buildinfo"
)

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print htq's version", Args: cobra.NoArgs,
		Example: "  htq version\n  htq version -o json",
		RunE: func(*cobra.Command, []string) error {
			v := struct {
				Version string `json:"version"`
				Go      string `json:"go"`
				OS      string `json:"os"`
				Arch    string `json:"arch"`
			}{buildinfo.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH}
			if g.output == outTable {
				_, err := fmt.Fprintf(g.env.Stdout, "htq %s (%s, %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
				return err
			}
			return g.show(v, nil)
		},
	}
}

func newCompletion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		Example:   "  source <(htq completion bash)\n  htq completion zsh > \"${fpath[1]}/_htq\"\n  htq completion fish > ~/.config/fish/completions/htq.fish",
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, w := cmd.Root(), g.env.Stdout
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			default:
				return root.GenFishCompletion(w, true)
			}
		},
	}
}
