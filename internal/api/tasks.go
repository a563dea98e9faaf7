package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// taskJSON is a task as REST shows it.
type taskJSON struct {
	ID              string         `json:"id"`
	Queue           string         `json:"queue"`
	State           task.State     `json:"state"`
	Method          string         `json:"method"`
	URL             string         `json:"url"`
	CreatedAt       *time.Time     `json:"created_at,omitempty"`
	RunAt           *time.Time     `json:"run_at,omitempty"`
	Attempts        int            `json:"attempts"`
	MaxAttempts     int            `json:"max_attempts,omitempty"`
	MinBackoff      *task.Duration `json:"min_backoff,omitempty"`
	MaxBackoff      *task.Duration `json:"max_backoff,omitempty"`
	K               int64          `json:"k,omitempty"`
	LastStatus      int            `json:"last_status,omitempty"`
	LastError       string         `json:"last_error,omitempty"`
	UpdatedAt       *time.Time     `json:"updated_at,omitempty"`
	FinishedAt      *time.Time     `json:"finished_at,omitempty"`
	CancelRequested bool           `json:"cancel_requested,omitempty"`
	History         []attemptJSON  `json:"history"`
	// Request is the rest of what is sent (GET /v1/tasks/{id} only).
	Request *requestJSON `json:"request,omitempty"`
}

// requestJSON is a task's headers and body as they will be sent: the
// headers in order (a name may repeat), and the body as text, as bytes in
// base64, or as form fields sent multipart or urlencoded.
type requestJSON struct {
	Headers    []fieldJSON `json:"headers"`
	BodyKind   string      `json:"body_kind,omitempty"` // raw, multipart, urlencoded
	Body       *string     `json:"body,omitempty"`
	BodyBase64 []byte      `json:"body_base64,omitempty"`
	Form       []fieldJSON `json:"form,omitempty"`
}

type fieldJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// redactedHeaders carry credentials of the target: a read-only token sees
// that they are there, not their values.
var redactedHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true,
	"x-api-key": true, "x-auth-token": true}

// Redacted stands for a header value a read-only token may not see.
const Redacted = "(redacted: read-only token)"

func toRequestJSON(sp *task.Spec, readOnly bool) *requestJSON {
	r := &requestJSON{Headers: []fieldJSON{}, BodyKind: string(sp.BodyKind)}
	for _, h := range sp.Header {
		v := h.Value
		if readOnly && redactedHeaders[strings.ToLower(h.Name)] {
			v = Redacted
		}
		r.Headers = append(r.Headers, fieldJSON{Name: h.Name, Value: v})
	}
	switch {
	case len(sp.BodyBinary) > 0:
		r.BodyBase64 = sp.BodyBinary
	case sp.BodyKind == task.BodyRaw:
		b := sp.Body
		r.Body = &b
	}
	for _, f := range sp.Form {
		r.Form = append(r.Form, fieldJSON{Name: f.Name, Value: f.Value})
	}
	return r
}

type attemptJSON struct {
	At        time.Time `json:"at"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status"`
	LatencyMs int64     `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	Body      string    `json:"body,omitempty"`
	Sequence  int64     `json:"sequence"`
	Redirects []string  `json:"redirects,omitempty"`
}

func toTaskJSON(ti *store.TaskInfo) taskJSON {
	j := taskJSON{
		ID: ti.ID, Queue: ti.Queue, State: ti.State, Method: ti.Spec.Method, URL: ti.Spec.URL,
		Attempts: ti.Attempts, MaxAttempts: ti.Spec.MaxAttempts, K: ti.K, LastStatus: ti.LastStatus,
		LastError: ti.LastError, UpdatedAt: timePtr(ti.Updated), FinishedAt: timePtr(ti.Finished),
		CancelRequested: ti.CancelRequested, History: []attemptJSON{},
	}
	j.MinBackoff, j.MaxBackoff = task.MillisDuration(ti.Spec.MinBackoffMs), task.MillisDuration(ti.Spec.MaxBackoffMs)
	if ti.Spec.CreatedMs > 0 {
		j.CreatedAt = timePtr(time.UnixMilli(ti.Spec.CreatedMs))
	}
	if !ti.RunAt.IsZero() {
		j.RunAt = timePtr(ti.RunAt)
	} else if ti.Spec.RunAtMs > 0 && (ti.State == task.StateScheduled || ti.State == task.StateQueued) {
		j.RunAt = timePtr(time.UnixMilli(ti.Spec.RunAtMs))
	}
	for _, a := range ti.History {
		j.History = append(j.History, attemptJSON{At: time.UnixMilli(a.At).UTC(), Attempt: a.Attempt, Status: a.Status,
			LatencyMs: a.LatencyMs, Error: a.Error, Body: a.Body, Sequence: a.Seq, Redirects: a.Redirects})
	}
	return j
}

// enqueue stores tasks and records the metrics of the attempt.
// A missing queue is created with the given configuration, if any.
func (s *Server) enqueue(ctx context.Context, queue string, tasks []store.NewTask, create *task.QueueConfig) ([]store.Enqueued, error) {
	o := store.EnqueueOptions{IdempotencyWindow: s.cfg.IdempotencyWindow, CreateQueue: create}
	start := time.Now()
	res, err := s.st.Enqueue(ctx, queue, tasks, o)
	s.m.EnqueueDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		if r := toError(err).reason; r != "" {
			s.m.Rejected.WithLabelValues(r).Add(float64(len(tasks)))
		}
		return nil, err
	}
	fresh := 0
	debug := s.log.Enabled(ctx, slog.LevelDebug)
	for _, r := range res.Tasks {
		if !r.Existed {
			fresh++
		}
		if debug {
			s.log.Debug("enqueued", "queue", queue, "task_id", r.ID, "existed", r.Existed, "scheduled", r.Scheduled)
		}
	}
	if fresh > 0 {
		s.m.Enqueued.WithLabelValues(string(res.Kind)).Add(float64(fresh))
	}
	return res.Tasks, nil
}

type createdJSON struct {
	ID      string     `json:"id"`
	Queue   string     `json:"queue"`
	State   task.State `json:"state,omitempty"` // absent for a repeat whose task has expired
	RunAt   *time.Time `json:"run_at,omitempty"`
	Existed bool       `json:"existed,omitempty"`
}

// created describes an enqueued task. For an idempotent repeat it reads the
// stored task, whose state and run time may differ from the repeat's.
func (s *Server) created(c echo.Context, queue string, nt *store.NewTask, r store.Enqueued) createdJSON {
	if r.Existed {
		j := createdJSON{ID: r.ID, Queue: queue, Existed: true}
		if ti, err := s.st.GetTask(c.Request().Context(), r.ID); err == nil {
			j.State, j.RunAt = ti.State, timePtr(ti.RunAt)
		}
		return j
	}
	j := createdJSON{ID: r.ID, Queue: queue, State: task.StateQueued}
	if r.Scheduled {
		j.State, j.RunAt = task.StateScheduled, timePtr(nt.Due.Truncate(time.Millisecond))
	}
	return j
}

func (s *Server) reject(err error) error {
	if ae := toError(err); ae.reason != "" && ae.Status != http.StatusServiceUnavailable {
		s.m.Rejected.WithLabelValues(ae.reason).Inc()
	}
	return err
}

func (s *Server) createTask(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return s.reject(err)
	}
	var req taskRequest
	if err := readJSON(c, &req); err != nil {
		return s.reject(err)
	}
	if h := c.Request().Header.Get("Idempotency-Key"); h != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != h {
			return s.reject(invalidField("idempotency_key", "differs from the Idempotency-Key header"))
		}
		req.IdempotencyKey = h
	}
	nt, err := req.toNewTask(s.now(), s.cfg.Limits)
	if err != nil {
		return s.reject(err)
	}
	res, err := s.enqueue(c.Request().Context(), name, []store.NewTask{nt}, s.autoCreate())
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res[0].Existed {
		status = http.StatusOK
	}
	c.Response().Header().Set("Location", "/v1/tasks/"+res[0].ID)
	return c.JSON(status, s.created(c, name, &nt, res[0]))
}

func (s *Server) createTasks(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return s.reject(err)
	}
	var req struct {
		Tasks []taskRequest `json:"tasks"`
	}
	if err := readJSON(c, &req); err != nil {
		return s.reject(err)
	}
	switch {
	case len(req.Tasks) == 0:
		return s.reject(invalidField("tasks", "want at least one task"))
	case len(req.Tasks) > s.cfg.MaxBatch:
		return s.reject(&Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: "tasks: " + strconv.Itoa(len(req.Tasks)) + " in one batch, limit " + strconv.Itoa(s.cfg.MaxBatch), reason: metrics.ReasonTooLarge})
	}
	for i := range req.Tasks {
		if err := req.Tasks[i].badDuration("tasks[" + strconv.Itoa(i) + "]."); err != nil {
			return s.reject(err)
		}
	}
	now := s.now()
	nts := make([]store.NewTask, len(req.Tasks))
	for i := range req.Tasks {
		nt, err := req.Tasks[i].toNewTask(now, s.cfg.Limits)
		if err != nil {
			ae := toError(err)
			ae = &Error{Status: ae.Status, Code: ae.Code, Message: "tasks[" + strconv.Itoa(i) + "]: " + ae.Message, reason: ae.reason}
			return s.reject(ae)
		}
		nts[i] = nt
	}
	res, err := s.enqueue(c.Request().Context(), name, nts, s.autoCreate())
	if err != nil {
		return err
	}
	out := struct {
		Tasks []createdJSON `json:"tasks"`
	}{}
	status := http.StatusOK
	for i, r := range res {
		out.Tasks = append(out.Tasks, s.created(c, name, &nts[i], r))
		if !r.Existed {
			status = http.StatusCreated
		}
	}
	return c.JSON(status, out)
}

func (s *Server) listTasks(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return err
	}
	if err := onlyParams(c, "state", "q", "code", "since", "until", "cursor", "limit"); err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	state := task.State(c.QueryParam("state"))
	if state == "" {
		state = task.StateQueued
	}
	if !slices.Contains(searchableStates, state) {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "state: %q: want scheduled, queued, active, retrying or dead "+
			"(succeeded and cancelled tasks are not indexed per queue: look them up by id)", clip(string(state)))
	}
	if err := checkCursor(state, cursor); err != nil {
		return err
	}
	f, err := taskFilter(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var tasks []*store.TaskInfo
	var next string
	if f.Empty() && state != task.StateRetrying {
		tasks, next, err = s.st.ListTasks(ctx, name, state, cursor, limit)
	} else {
		tasks, next, err = s.st.SearchTasks(ctx, name, state, f, cursor, limit)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTaskList(tasks, next))
}

// searchableStates are the states a queue's tasks can be listed in.
var searchableStates = []task.State{task.StateScheduled, task.StateQueued, task.StateActive, task.StateRetrying, task.StateDead}

// taskList is a page of tasks as REST shows it.
type taskList struct {
	Tasks      []taskJSON `json:"tasks"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

func toTaskList(tasks []*store.TaskInfo, next string) taskList {
	out := taskList{Tasks: make([]taskJSON, 0, len(tasks)), NextCursor: next}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, toTaskJSON(t))
	}
	return out
}

// streamID is the form of a queued list's cursor (a Redis stream id).
var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// checkCursor refuses a cursor that no earlier page can have returned for
// this state: Redis would refuse it (a 503), or the list would silently
// start over (scheduled, dead) or from the end (a negative offset).
func checkCursor(state task.State, cursor string) error {
	if cursor == "" {
		return nil
	}
	switch state {
	case task.StateQueued, task.StateActive:
		// both parts fit in 64 bits, and the id is not the largest one
		// (nothing can follow it: Redis refuses a range after it)
		if ms, seq, ok := strings.Cut(cursor, "-"); ok && streamID.MatchString(cursor) && fitsUint64(ms) && fitsUint64(seq) &&
			cursor != maxStreamID {
			return nil
		}
	default:
		if n, err := strconv.ParseInt(cursor, 10, 64); err == nil && n >= 0 {
			return nil
		}
	}
	return apiErr(http.StatusBadRequest, CodeBadRequest, "cursor: %q: pass the next_cursor of the previous page", clip(cursor))
}

// maxStreamID is the largest Redis stream id.
const maxStreamID = "18446744073709551615-18446744073709551615"

// fitsUint64 reports whether decimal digits s fit in 64 bits, as the parts
// of a Redis stream id must.
func fitsUint64(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func (s *Server) getTask(c echo.Context) error {
	ti, err := s.st.GetTask(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	j := toTaskJSON(ti)
	j.Request = toRequestJSON(ti.Spec, isReadOnly(c))
	return c.JSON(http.StatusOK, j)
}

func (s *Server) cancelTask(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	r, err := s.st.CancelTask(ctx, id, s.cfg.QueueDefaults.Retention.Std())
	if err != nil {
		return err
	}
	if r == store.Discarded {
		return c.NoContent(http.StatusNoContent)
	}
	ti, err := s.st.GetTask(ctx, id)
	if err != nil {
		if errors.Is(err, task.ErrTaskNotFound) { // retention 0: gone already
			return c.NoContent(http.StatusNoContent)
		}
		return err
	}
	status := http.StatusOK
	if r == store.Cancelling {
		status = http.StatusAccepted
	}
	return c.JSON(status, toTaskJSON(ti))
}

// autoCreate is the configuration REST enqueues create missing queues with
// (nil: they are refused with 404, the default).
func (s *Server) autoCreate() *task.QueueConfig {
	if !s.cfg.AutoCreateQueues {
		return nil
	}
	cfg := s.cfg.QueueDefaults
	return &cfg
}
