package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

// eventColours are ANSI colours per event type, used when stdout is a
// terminal.
var eventColours = map[string]string{"created": "34", "started": "36", "succeeded": "32", "failed": "33", "dead": "31"}

func newTail(g *globals) *cobra.Command {
	var queue string
	var types []string
	var count int
	cmd := &cobra.Command{
		Use:   "tail [-q QUEUE] [--type T]... [--count N]",
		Short: "Follow task events live (created, started, succeeded, failed, dead) until Ctrl-C",
		Long: `Prints the API's live event stream (GET /v1/events), one line an event,
coloured on a terminal; -o json writes one JSON object a line. Best effort:
events before the stream starts, or missed by a reader far behind, are not
shown (the task lists remain the truth).`,
		Example: "  htq tail\n  htq tail -q emails --type failed --type dead\n  htq tail -o json --count 100 > events.ndjson",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			want := map[string]bool{}
			for _, t := range types {
				if _, ok := eventColours[t]; !ok {
					return usagef("--type %q: want created, started, succeeded, failed or dead", t)
				}
				want[t] = true
			}
			if count < 0 {
				return usagef("--count %d: want 0 (no end) or more", count)
			}
			if g.output == outYAML {
				return usagef("-o yaml: tail writes a table or JSON lines")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			n := 0
			enc := json.NewEncoder(g.env.Stdout)
			err = c.Events(cmd.Context(), queue, func(e client.Event) error {
				if len(want) > 0 && !want[e.Type] {
					return nil
				}
				if g.output == outJSON {
					if err := enc.Encode(e); err != nil {
						return err
					}
				} else if _, err := fmt.Fprintln(g.env.Stdout, eventLine(e, g.env.ColorOut)); err != nil {
					return err
				}
				if n++; count > 0 && n >= count {
					return client.ErrStopEvents
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("event stream: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&queue, "queue", "q", "", "only this queue's events")
	cmd.Flags().StringArrayVar(&types, "type", nil, "only events of this type (repeatable)")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many events (0: at Ctrl-C)")
	return cmd
}

// eventLine is one event for people: time, type, queue, task, attempt
// and status.
func eventLine(e client.Event, colour bool) string {
	typ := fmt.Sprintf("%-9s", e.Type)
	if colour {
		typ = "\x1b[" + eventColours[e.Type] + "m" + typ + "\x1b[0m"
	}
	parts := []string{e.Time.UTC().Format(time.RFC3339Nano), typ, e.Queue, e.ID}
	if e.Attempt > 0 {
		parts = append(parts, fmt.Sprintf("attempt %d", e.Attempt))
	}
	if e.Status > 0 {
		parts = append(parts, fmt.Sprintf("status %d", e.Status))
	}
	return strings.Join(parts, "  ")
}
