package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/htq/htq/client"
)

// stats are the task counts of every queue and their sum.
type stats struct {
	Queues int                      `json:"queues"`
	Paused int                      `json:"paused"`
	Total  client.Counts            `json:"total"`
	ByName map[string]client.Counts `json:"by_queue"`
}

func newStats(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "stats", Short: "Tasks by state, per queue and in total", Args: cobra.NoArgs,
		Example: "  htq stats\n  htq stats -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			qs, err := allQueues(cmd, c, 0)
			if err != nil {
				return err
			}
			s := stats{Queues: len(qs), ByName: make(map[string]client.Counts, len(qs))}
			for _, q := range qs {
				s.ByName[q.Name] = q.Counts
				s.Total.Queued += q.Counts.Queued
				s.Total.Active += q.Counts.Active
				s.Total.Scheduled += q.Counts.Scheduled
				s.Total.Dead += q.Counts.Dead
				if q.Paused {
					s.Paused++
				}
			}
			return g.show(s, func(w io.Writer) {
				row(w, "QUEUE", "QUEUED", "ACTIVE", "SCHEDULED", "DEAD", "PAUSED")
				for _, q := range qs {
					row(w, q.Name, q.Counts.Queued, q.Counts.Active, q.Counts.Scheduled, q.Counts.Dead, q.Paused)
				}
				row(w, "TOTAL", s.Total.Queued, s.Total.Active, s.Total.Scheduled, s.Total.Dead, s.Paused)
			})
		},
	}
}
