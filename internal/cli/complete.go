package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

// completeQueues completes queue names from the API (the first 1,000), for
// a command's first argument; nothing when it cannot reach the API.
func completeQueues(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return queueNames(g, cmd, prefix)
	}
}

// completeQueueFlag completes the value of -q/--queue.
func completeQueueFlag(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return queueNames(g, cmd, prefix)
	}
}

func queueNames(g *globals, cmd *cobra.Command, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, err := g.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	qs, err := allQueues(cmd, c, 1000)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, q := range qs {
		if strings.HasPrefix(q.Name, prefix) {
			out = append(out, q.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeSchedules completes schedule names for a command's first argument.
func completeSchedules(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := g.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		p, err := c.ListSchedules(cmd.Context(), client.ListOptions{Limit: 1000})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range p.Schedules {
			if strings.HasPrefix(s.Name, prefix) {
				out = append(out, s.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// addCompletions attaches the name completions to the commands that take
// a queue or a schedule.
func addCompletions(root *cobra.Command, g *globals) {
	for _, path := range [][]string{{"queue", "get"}, {"queue", "put"}, {"queue", "pause"}, {"queue", "resume"}, {"queue", "purge"}, {"queue", "rm"}} {
		if c, _, err := root.Find(path); err == nil {
			c.ValidArgsFunction = completeQueues(g)
		}
	}
	for _, path := range [][]string{{"schedule", "get"}, {"schedule", "put"}, {"schedule", "rm"}, {"schedule", "pause"}, {"schedule", "resume"}, {"schedule", "trigger"}} {
		if c, _, err := root.Find(path); err == nil {
			c.ValidArgsFunction = completeSchedules(g)
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.LocalFlags().Lookup("queue") != nil {
			_ = c.RegisterFlagCompletionFunc("queue", completeQueueFlag(g))
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
