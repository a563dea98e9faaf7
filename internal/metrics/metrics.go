// Package metrics defines every Prometheus metric HTQ exports. Each role
// builds its set on an injected Registerer; nothing registers globally.
//
// Names follow htq_<subsystem>_<name>_<unit>. Labels are bounded: route
// templates, outcomes, states and reasons come from fixed lists, and the only
// per-queue label (on htq_queue_tasks) is limited to the top N queues by
// backlog plus "_other".
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Buckets for call and request durations (seconds): 1 ms to 30 s.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Buckets for lags (seconds): 1 ms to 10 min.
var lagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600}

// NewRegistry returns a registry with the Go runtime and process collectors,
// for a role's /metrics.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Build returns the role's build information metric (htq_build_info).
func Build(reg prometheus.Registerer, role, version string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "htq_build_info", Help: "HTQ build and role of this process (always 1).",
		ConstLabels: prometheus.Labels{"role": role, "version": version},
	})
	g.Set(1)
	reg.MustRegister(g)
}

// API holds the API role's metrics.
type API struct {
	Requests        *prometheus.CounterVec   // route, method (see MethodLabel), code
	RequestDuration *prometheus.HistogramVec // route
	Enqueued        *prometheus.CounterVec   // kind: realtime, variable
	EnqueueDuration prometheus.Histogram
	Rejected        *prometheus.CounterVec // reason
	// LegacyTimeFallbacks counts legacy addTask calls whose execute_time
	// was not understood and which were therefore run at once, as the
	// original did (refused instead under legacy.strict_execute_time).
	LegacyTimeFallbacks prometheus.Counter
}

// Rejection reasons (the values of htq_api_tasks_rejected_total's label).
// Only requests that create tasks (REST task and batch creation, legacy
// addTask) count as rejected tasks.
const (
	ReasonInvalid      = "invalid"
	ReasonTooLarge     = "too_large"
	ReasonQueueFull    = "queue_full"
	ReasonNoQueue      = "queue_not_found"
	ReasonUnauthorized = "unauthorized"
	ReasonUnavailable  = "unavailable"
)

// MethodOther is the method label of every request whose method is not one
// of the standard ones MethodLabel keeps.
const MethodOther = "other"

// MethodLabel bounds htq_api_requests_total's method label: a client may
// send any token as its method, so only GET, HEAD, POST, PUT, PATCH, DELETE
// and OPTIONS (case-sensitive, as methods are) are kept; anything else is
// "other".
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return MethodOther
}

// NewAPI registers the API metrics.
func NewAPI(reg prometheus.Registerer) *API {
	m := &API{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_api_requests_total", Help: "HTTP requests handled, by route template, method (a standard method, else other) and status code.",
		}, []string{"route", "method", "code"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "htq_api_request_duration_seconds", Help: "Time to handle an HTTP request, by route template.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		Enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_api_tasks_enqueued_total", Help: "Tasks accepted (idempotent repeats excluded), by queue kind.",
		}, []string{"kind"}),
		EnqueueDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "htq_api_enqueue_duration_seconds", Help: "Time to store an enqueue request in Redis.",
			Buckets: durationBuckets,
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_api_tasks_rejected_total", Help: "Tasks refused, by reason.",
		}, []string{"reason"}),
		LegacyTimeFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "htq_api_legacy_execute_time_fallbacks_total",
			Help: "Legacy addTask calls whose execute_time was not understood, run at once as the original did.",
		}),
	}
	reg.MustRegister(m.Requests, m.RequestDuration, m.Enqueued, m.EnqueueDuration, m.Rejected, m.LegacyTimeFallbacks)
	for _, k := range []string{"realtime", "variable"} {
		m.Enqueued.WithLabelValues(k)
	}
	for _, r := range []string{ReasonInvalid, ReasonTooLarge, ReasonQueueFull, ReasonNoQueue, ReasonUnauthorized, ReasonUnavailable} {
		m.Rejected.WithLabelValues(r)
	}
	return m
}

// Dispatcher holds the dispatcher role's metrics.
type Dispatcher struct {
	Calls        *prometheus.CounterVec // outcome
	CallDuration prometheus.Histogram
	QueueLag     prometheus.Histogram
	Finished     *prometheus.CounterVec // state: succeeded, dead, cancelled
	OwnedQueues  prometheus.Gauge
	MaxQueues    prometheus.Gauge       // dispatcher.max_queues, for saturation
	Leases       *prometheus.CounterVec // event: taken, lost, takeover
	StaleWrites  prometheus.Counter
	InFlight     prometheus.Gauge
	Claims       *prometheus.CounterVec // result of claim attempts
}

// Call outcomes (htq_dispatcher_calls_total's label).
const (
	OutcomeSuccess      = "success"
	OutcomeRetry        = "retry"
	OutcomePermanent    = "permanent"
	OutcomeTimeout      = "timeout"
	OutcomeEgressDenied = "egress_denied"
)

// Lease events (htq_dispatcher_leases_total's label).
const (
	LeaseTaken    = "taken"    // claimed a free queue
	LeaseTakeover = "takeover" // recovered entries a previous owner left pending
	LeaseLost     = "lost"     // found the lease gone or held by another epoch
)

// NewDispatcher registers the dispatcher metrics.
func NewDispatcher(reg prometheus.Registerer) *Dispatcher {
	m := &Dispatcher{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_dispatcher_calls_total", Help: "Calls made to targets, by outcome: success (2xx), retry (a retryable failure, also on the last attempt, after which the task is dead), permanent, timeout, egress_denied.",
		}, []string{"outcome"}),
		CallDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "htq_dispatcher_call_duration_seconds", Help: "Duration of calls to targets.", Buckets: durationBuckets,
		}),
		QueueLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "htq_dispatcher_queue_lag_seconds", Help: "Time from a task being due to its call starting.", Buckets: lagBuckets,
		}),
		Finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_dispatcher_tasks_finished_total", Help: "Tasks that reached a final state, by state.",
		}, []string{"state"}),
		OwnedQueues: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "htq_dispatcher_owned_queues", Help: "Queues this dispatcher holds the lease of.",
		}),
		MaxQueues: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "htq_dispatcher_max_queues", Help: "Queues this dispatcher may own at once (dispatcher.max_queues).",
		}),
		Leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_dispatcher_leases_total", Help: "Queue lease events: taken, takeover (recovered a previous owner's pending entries), lost.",
		}, []string{"event"}),
		StaleWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "htq_dispatcher_stale_writes_total", Help: "Writes refused because this dispatcher's lease epoch was no longer current.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "htq_dispatcher_inflight_calls", Help: "Calls in progress.",
		}),
		Claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "htq_dispatcher_claims_total", Help: "Attempts to claim a queue, by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.Calls, m.CallDuration, m.QueueLag, m.Finished, m.OwnedQueues, m.MaxQueues, m.Leases, m.StaleWrites, m.InFlight, m.Claims)
	for _, o := range []string{OutcomeSuccess, OutcomeRetry, OutcomePermanent, OutcomeTimeout, OutcomeEgressDenied} {
		m.Calls.WithLabelValues(o)
	}
	for _, s := range []string{"succeeded", "dead", "cancelled"} {
		m.Finished.WithLabelValues(s)
	}
	for _, e := range []string{LeaseTaken, LeaseTakeover, LeaseLost} {
		m.Leases.WithLabelValues(e)
	}
	return m
}

// Scheduler holds the scheduler role's metrics.
type Scheduler struct {
	IsLeader      prometheus.Gauge
	LeaderChanges prometheus.Counter
	Promoted      prometheus.Counter
	PromotionLag  prometheus.Histogram
	JanitorFixes  prometheus.Counter
	// ScheduleRuns counts schedule occurrences by outcome (fired,
	// skipped_overlap, missed).
	ScheduleRuns *prometheus.CounterVec
	// ScheduleLateness is the time from an occurrence's instant to the
	// creation of its task.
	ScheduleLateness prometheus.Histogram
}

// Outcomes of a schedule occurrence (label outcome).
const (
	RunFired          = "fired"
	RunSkippedOverlap = "skipped_overlap"
	RunMissed         = "missed"
)

// NewScheduler registers the scheduler metrics.
func NewScheduler(reg prometheus.Registerer) *Scheduler {
	m := &Scheduler{
		IsLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "htq_scheduler_is_leader", Help: "1 while this scheduler is the leader.",
		}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "htq_scheduler_leader_changes_total", Help: "Times this scheduler became or stopped being the leader.",
		}),
		Promoted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "htq_scheduler_tasks_promoted_total", Help: "Delayed tasks moved into their queues.",
		}),
		PromotionLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "htq_scheduler_promotion_lag_seconds", Help: "Time from a delayed task being due to its promotion.", Buckets: lagBuckets,
		}),
		JanitorFixes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "htq_scheduler_janitor_fixes_total", Help: "Index entries the janitor had to put back.",
		}),
	}
	m.ScheduleRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "htq_scheduler_schedule_runs_total",
		Help: "Schedule occurrences by outcome: fired (a task was created), skipped_overlap (the last run was still queued or active), missed (never fired: the scheduler was down past the missed policy, or the queue was gone or full).",
	}, []string{"outcome"})
	for _, o := range []string{RunFired, RunSkippedOverlap, RunMissed} {
		m.ScheduleRuns.WithLabelValues(o)
	}
	m.ScheduleLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "htq_scheduler_schedule_lateness_seconds", Help: "Time from a schedule occurrence's instant to the creation of its task.", Buckets: lagBuckets,
	})
	reg.MustRegister(m.IsLeader, m.LeaderChanges, m.Promoted, m.PromotionLag, m.JanitorFixes, m.ScheduleRuns, m.ScheduleLateness)
	return m
}
