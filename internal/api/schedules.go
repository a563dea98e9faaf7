package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Error codes of the schedule routes.
const (
	CodeScheduleNotFound = "schedule_not_found"
	CodeScheduleChanged  = "schedule_changed"
	CodeScheduleOverlap  = "schedule_overlap"
)

// nextRuns is how many instants a schedule's answer shows.
const nextRuns = 5

// scheduleRoutes adds the schedule routes to the /v1 group.
func (s *Server) scheduleRoutes(v1 *echo.Group) {
	v1.PUT("/schedules/:name", s.putSchedule)
	v1.GET("/schedules", s.listSchedules)
	v1.GET("/schedules/:name", s.getSchedule)
	v1.DELETE("/schedules/:name", s.deleteSchedule)
	v1.POST("/schedules/:name/pause", s.pauseSchedule)
	v1.POST("/schedules/:name/resume", s.resumeSchedule)
	v1.POST("/schedules/:name/trigger", s.triggerSchedule)
}

// scheduleError maps the schedule outcomes to API errors (toError calls
// it first); nil for any other error.
func scheduleError(err error) *Error {
	switch {
	case errors.Is(err, store.ErrScheduleNotFound):
		return apiErr(http.StatusNotFound, CodeScheduleNotFound, "%s", err.Error())
	case errors.Is(err, store.ErrScheduleChanged):
		return apiErr(http.StatusConflict, CodeScheduleChanged, "%s: try again", err.Error())
	case errors.Is(err, recur.ErrBadSchedule):
		return apiErr(http.StatusUnprocessableEntity, CodeValidation, "%s", strings.TrimPrefix(err.Error(), recur.ErrBadSchedule.Error()+": "))
	}
	return nil
}

// scheduleRequest is the JSON of PUT /v1/schedules/{name}.
type scheduleRequest struct {
	Queue    string          `json:"queue"`
	Cron     string          `json:"cron"`
	TimeZone string          `json:"time_zone"`
	Task     json.RawMessage `json:"task"`
	Missed   string          `json:"missed"`
	CatchUp  json.RawMessage `json:"catch_up"`
	Overlap  string          `json:"overlap"`
	Jitter   json.RawMessage `json:"jitter"`
	Paused   *bool           `json:"paused"`
	StartAt  *string         `json:"start_at"`
	EndAt    *string         `json:"end_at"`
}

type lastRunJSON struct {
	ScheduledAt time.Time  `json:"scheduled_at"`
	TaskID      string     `json:"task_id"`
	State       task.State `json:"state,omitempty"` // absent once the task has expired
}

type scheduleJSON struct {
	Name      string          `json:"name"`
	Queue     string          `json:"queue"`
	Cron      string          `json:"cron"`
	TimeZone  string          `json:"time_zone"`
	Task      json.RawMessage `json:"task"`
	Missed    string          `json:"missed"`
	CatchUp   task.Duration   `json:"catch_up"`
	Overlap   string          `json:"overlap"`
	Jitter    task.Duration   `json:"jitter"`
	Paused    bool            `json:"paused"`
	StartAt   *time.Time      `json:"start_at,omitempty"`
	EndAt     *time.Time      `json:"end_at,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	NextRuns  []string        `json:"next_runs"`
	LastRun   *lastRunJSON    `json:"last_run,omitempty"`
}

// toScheduleJSON describes a stored schedule; its next runs start at its
// stored next instant (none while paused or once ended).
func toScheduleJSON(st *store.ScheduleState) scheduleJSON {
	d := st.Def
	j := scheduleJSON{Name: d.Name, Queue: d.Queue, Cron: d.Cron, TimeZone: d.TimeZone, Task: d.Task,
		Missed: d.Missed, CatchUp: d.CatchUp, Overlap: d.Overlap, Jitter: d.Jitter, Paused: d.Paused,
		StartAt: d.StartAt, EndAt: d.EndAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, NextRuns: []string{}}
	if p, err := recur.Parse(d.Cron, d.TimeZone); err == nil && !d.Paused && !st.Next.IsZero() {
		for t := st.Next.In(p.Location()); len(j.NextRuns) < nextRuns; t = p.Next(t) {
			if t.IsZero() || d.EndAt != nil && t.After(*d.EndAt) {
				break
			}
			j.NextRuns = append(j.NextRuns, t.Format(time.RFC3339))
		}
	}
	if st.LastTask != "" {
		j.LastRun = &lastRunJSON{ScheduledAt: st.LastAt.UTC(), TaskID: st.LastTask}
	}
	return j
}

// scheduleName reads and validates the {name} path parameter.
func scheduleName(c echo.Context) (string, error) {
	name := c.Param("name")
	if c.Request().URL.RawPath != "" { // see queueName
		var err error
		if name, err = url.PathUnescape(name); err != nil {
			return "", apiErr(http.StatusBadRequest, CodeBadRequest, "schedule name in the path is not validly escaped")
		}
	}
	if err := recur.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

// readSchedule decodes a schedule body strictly; an unknown field is a 422
// that names it, like every other bad field of a schedule.
func readSchedule(c echo.Context, v any) error {
	err := readJSON(c, v)
	var ae *Error
	if errors.As(err, &ae) && strings.HasPrefix(ae.Message, "unknown field ") {
		return apiErr(http.StatusUnprocessableEntity, CodeValidation, "%s", ae.Message)
	}
	return err
}

// parseDuration reads an optional duration field (seconds, or a Go or ISO
// 8601 duration string).
func parseDuration(field string, raw json.RawMessage, dst *task.Duration) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := dst.UnmarshalJSON(raw); err != nil {
		return invalidField(field, "%v", err)
	}
	return nil
}

// optionalInstant reads an optional time field (parseInstant).
func optionalInstant(field string, v *string) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := parseInstant(field, *v)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// scheduleTask validates a schedule's task as a task request (the fields
// that place a single task in time are refused) and returns its spec.
func (s *Server) scheduleTask(raw json.RawMessage, now time.Time) (*task.Spec, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalidField("task", "required")
	}
	var tr taskRequest
	if err := decodeStrict(raw, &tr); err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return nil, apiErr(http.StatusUnprocessableEntity, CodeValidation, "task: %s", ae.Message)
		}
		return nil, err
	}
	switch {
	case tr.RunAt != nil:
		return nil, invalidField("task.run_at", "not allowed: the schedule decides when its tasks run")
	case tr.Delay != nil:
		return nil, invalidField("task.delay", "not allowed: the schedule decides when its tasks run")
	case tr.IdempotencyKey != "":
		return nil, invalidField("task.idempotency_key", "not allowed: each occurrence is its own key")
	}
	nt, err := tr.toNewTask(now, s.cfg.Limits)
	if err != nil {
		ae := toError(err)
		if ae.Status == http.StatusUnprocessableEntity {
			return nil, apiErr(ae.Status, ae.Code, "task.%s", ae.Message)
		}
		return nil, err
	}
	nt.Spec.CreatedMs = 0
	return nt.Spec, nil
}

func (s *Server) putSchedule(c echo.Context) error {
	name, err := scheduleName(c)
	if err != nil {
		return err
	}
	var req scheduleRequest
	if err := readSchedule(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := s.now()
	def := &recur.Schedule{Name: name, Queue: req.Queue, Cron: req.Cron, TimeZone: req.TimeZone,
		Missed: req.Missed, Overlap: req.Overlap, CreatedAt: now.UTC(), UpdatedAt: now.UTC()}
	if req.Paused != nil {
		def.Paused = *req.Paused
	}
	if err := parseDuration("catch_up", req.CatchUp, &def.CatchUp); err != nil {
		return err
	}
	if err := parseDuration("jitter", req.Jitter, &def.Jitter); err != nil {
		return err
	}
	if def.StartAt, err = optionalInstant("start_at", req.StartAt); err != nil {
		return err
	}
	if def.EndAt, err = optionalInstant("end_at", req.EndAt); err != nil {
		return err
	}
	if req.Queue == "" {
		return invalidField("queue", "required")
	}
	if req.Cron == "" {
		return invalidField("cron", "required")
	}
	if def.Spec, err = s.scheduleTask(req.Task, now); err != nil {
		return err
	}
	plan, err := def.Normalize()
	if err != nil {
		return err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, req.Task); err == nil {
		def.Task = compact.Bytes()
	}
	next := def.First(plan, now)
	if next.IsZero() {
		if def.EndAt != nil && !def.EndAt.After(now) {
			return invalidField("end_at", "in the past: the schedule would never run")
		}
		return invalidField("cron", "%q never fires", def.Cron)
	}
	// The queue must exist, or be created as api.auto_create_queues says.
	if _, err := s.st.GetQueue(ctx, def.Queue); errors.Is(err, task.ErrQueueNotFound) {
		cfg := s.autoCreate()
		if cfg == nil {
			return invalidField("queue", "%q does not exist (create it with PUT /v1/queues/{queue})", def.Queue)
		}
		if _, err := s.st.PutQueue(ctx, def.Queue, cfg, store.PutCreate); err != nil && !errors.Is(err, task.ErrQueueExists) {
			return err
		}
	} else if err != nil {
		return err
	}
	if cur, err := s.st.GetSchedule(ctx, name); err == nil {
		def.CreatedAt = cur.Def.CreatedAt
	} else if !errors.Is(err, store.ErrScheduleNotFound) {
		return err
	}
	created, err := s.st.PutSchedule(ctx, def, next, 0)
	if err != nil {
		return err
	}
	return s.answerSchedule(c, name, created)
}

// answerSchedule reads a schedule back and answers with it.
func (s *Server) answerSchedule(c echo.Context, name string, created bool) error {
	st, err := s.st.GetSchedule(c.Request().Context(), name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, toScheduleJSON(st))
}

func (s *Server) getSchedule(c echo.Context) error {
	name, err := scheduleName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	st, err := s.st.GetSchedule(ctx, name)
	if err != nil {
		return err
	}
	j := toScheduleJSON(st)
	if j.LastRun != nil {
		if ti, err := s.st.GetTask(ctx, j.LastRun.TaskID); err == nil {
			j.LastRun.State = ti.State
		}
	}
	return c.JSON(http.StatusOK, j)
}

func (s *Server) listSchedules(c echo.Context) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	sts, more, err := s.st.ListSchedules(c.Request().Context(), cursor, limit)
	if err != nil {
		return err
	}
	out := struct {
		Schedules  []scheduleJSON `json:"schedules"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}{Schedules: []scheduleJSON{}}
	for _, st := range sts {
		out.Schedules = append(out.Schedules, toScheduleJSON(st))
	}
	if more && len(sts) > 0 {
		out.NextCursor = sts[len(sts)-1].Def.Name
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteSchedule(c echo.Context) error {
	name, err := scheduleName(c)
	if err != nil {
		return err
	}
	if err := s.st.DeleteSchedule(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) pauseSchedule(c echo.Context) error  { return s.setSchedulePaused(c, true) }
func (s *Server) resumeSchedule(c echo.Context) error { return s.setSchedulePaused(c, false) }

// setSchedulePaused pauses or resumes a schedule. A resumed schedule goes
// on from its first instant after now: what passed while it was paused is
// not run.
func (s *Server) setSchedulePaused(c echo.Context, paused bool) error {
	name, err := scheduleName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	for range 3 {
		st, err := s.st.GetSchedule(ctx, name)
		if err != nil {
			return err
		}
		def := st.Def
		plan, err := def.Normalize()
		if err != nil {
			return err
		}
		next := st.Next
		if !paused && def.Paused {
			next = def.First(plan, s.now())
		}
		def.Paused = paused
		def.UpdatedAt = s.now().UTC()
		_, err = s.st.PutSchedule(ctx, def, next, st.Version)
		if errors.Is(err, store.ErrScheduleChanged) {
			continue
		}
		if err != nil {
			return err
		}
		return s.answerSchedule(c, name, false)
	}
	return apiErr(http.StatusConflict, CodeScheduleChanged, "schedule %q keeps changing: try again", name)
}

// triggerSchedule creates one run now, outside the plan. It follows the
// schedule's overlap policy, and works while the schedule is paused.
func (s *Server) triggerSchedule(c echo.Context) error {
	name, err := scheduleName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	st, err := s.st.GetSchedule(ctx, name)
	if err != nil {
		return err
	}
	def := st.Def
	plan, err := def.Normalize()
	if err != nil {
		return err
	}
	now := s.now()
	at := now.In(plan.Location())
	occ := store.Occurrence{At: at, Due: at, Spec: def.Occurrence(at, now), Key: def.TriggerKey(now)}
	outs, err := s.st.FireSchedule(ctx, &store.Fire{State: st, Trigger: true, Occ: []store.Occurrence{occ}, Window: time.Hour})
	if err != nil {
		return err
	}
	o := outs[0]
	switch o.Outcome {
	case store.FireSkipped:
		return apiErr(http.StatusConflict, CodeScheduleOverlap,
			"the schedule's last run %s is still queued or active (overlap: skip)", o.TaskID)
	case store.FireNoQueue:
		return apiErr(http.StatusNotFound, CodeQueueNotFound, "queue not found: %q", def.Queue)
	case store.FireFull:
		return apiErr(http.StatusTooManyRequests, CodeQueueFull, "queue %q is full", def.Queue)
	}
	c.Response().Header().Set("Location", "/v1/tasks/"+o.TaskID)
	return c.JSON(http.StatusCreated, struct {
		TaskID      string `json:"task_id"`
		Queue       string `json:"queue"`
		ScheduledAt string `json:"scheduled_at"`
	}{o.TaskID, def.Queue, at.Format(time.RFC3339Nano)})
}
