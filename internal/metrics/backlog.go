package metrics

import (
	"cmp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// OtherQueues is the queue label of the total of the queues outside the top N.
const OtherQueues = "_other"

// QueueCounts is one queue's task counts by state.
type QueueCounts struct {
	Queue                           string
	Queued, Active, Scheduled, Dead int64
}

func (c QueueCounts) backlog() int64 { return c.Queued + c.Active + c.Scheduled }

var (
	queueTasksDesc = prometheus.NewDesc("htq_queue_tasks",
		"Tasks by queue and state (queued, active, scheduled, dead). Only the scheduler leader exports it; "+
			"queue is one of the top N queues by backlog, or "+OtherQueues+" for the sum of all others.",
		[]string{"queue", "state"}, nil)
	queuesDesc = prometheus.NewDesc("htq_queues", "Number of queues (exported by the scheduler leader only).", nil, nil)
)

// Backlog exports the last snapshot of every queue's counts. The scheduler
// leader sets it; other schedulers clear it, so exactly one process exports
// the series and sums over replicas do not double count.
type Backlog struct {
	topN  int
	mu    sync.Mutex
	rows  []QueueCounts // top N, then OtherQueues
	total int
	set   bool
}

// NewBacklog registers the backlog collector; topN bounds the queue label.
func NewBacklog(reg prometheus.Registerer, topN int) *Backlog {
	b := &Backlog{topN: topN}
	reg.MustRegister(b)
	return b
}

// Set replaces the snapshot: the counts of the queues that have tasks (the
// others count zero) and the number of queues.
func (b *Backlog) Set(all []QueueCounts, queues int) {
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(x, y QueueCounts) int {
		if c := cmp.Compare(y.backlog()+y.Dead, x.backlog()+x.Dead); c != 0 {
			return c
		}
		return cmp.Compare(x.Queue, y.Queue)
	})
	n := min(b.topN, len(sorted))
	rows := slices.Clone(sorted[:n])
	other := QueueCounts{Queue: OtherQueues}
	for _, c := range sorted[n:] {
		other.Queued += c.Queued
		other.Active += c.Active
		other.Scheduled += c.Scheduled
		other.Dead += c.Dead
	}
	rows = append(rows, other)
	b.mu.Lock()
	b.rows, b.total, b.set = rows, queues, true
	b.mu.Unlock()
}

// Clear stops exporting (this process no longer leads).
func (b *Backlog) Clear() {
	b.mu.Lock()
	b.rows, b.total, b.set = nil, 0, false
	b.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (b *Backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueTasksDesc
	ch <- queuesDesc
}

// Collect implements prometheus.Collector.
func (b *Backlog) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.set {
		return
	}
	ch <- prometheus.MustNewConstMetric(queuesDesc, prometheus.GaugeValue, float64(b.total))
	for _, r := range b.rows {
		for state, v := range map[string]int64{"queued": r.Queued, "active": r.Active, "scheduled": r.Scheduled, "dead": r.Dead} {
			ch <- prometheus.MustNewConstMetric(queueTasksDesc, prometheus.GaugeValue, float64(v), r.Queue, state)
		}
	}
}
