package api

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// LegacyConfig holds the legacy protocol's settings (the config file's
// legacy section).
type LegacyConfig struct {
	// MaxAttempts is the retry.max_attempts of a one-shot queue created
	// through the legacy API (1: the original called each task once).
	MaxAttempts int
	// MinGap is the floor of a legacy variable queue's gaps (see
	// legacy.QueueConfig); 0 means legacy.DefaultMinGap.
	MinGap time.Duration
	// StrictExecuteTime refuses an execute_time that is not understood
	// (1005) instead of running the task at once as the original did.
	StrictExecuteTime bool
}

// legacyResult is the body of a legacy answer: always HTTP 200 with
// {"error_code":…, "message":…} (plus "count" for countQueue).
type legacyResult struct {
	Code    int    `json:"error_code"`
	Message string `json:"message,omitempty"`
	Count   *int64 `json:"count,omitempty"`
}

// legacyReply writes JSON as the SDK expects it: UTF-8 left unescaped.
// Answers the original also sent (its codes below 1005, allQueue's list)
// stay byte for byte as it wrote them; the messages of the newer codes,
// which quote what the client sent, escape <, > and & (\u003c…), which
// every JSON decoder reads back the same.
func (s *Server) legacyReply(c echo.Context, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	r, ok := v.(legacyResult)
	enc.SetEscapeHTML(ok && r.Code >= legacy.CodeInvalid)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/json; charset=utf-8", bytes.TrimRight(buf.Bytes(), "\n"))
}

type legacyForm struct {
	c    echo.Context
	vals map[string][]string
}

func (f *legacyForm) get(name string) (string, bool) {
	v, ok := f.vals[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (f *legacyForm) value(name string) string {
	v, _ := f.get(name)
	return v
}

func (f *legacyForm) ptr(name string) *string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	return &v
}

// legacyAddTask is the one legacy endpoint that creates tasks.
const legacyAddTask = "addTask"

// legacyAddsTasks reports whether the request went to addTask.
func legacyAddsTasks(c echo.Context) bool { return strings.HasSuffix(c.Path(), "/"+legacyAddTask) }

// legacyRejected counts a refused task: only addTask's refusals refuse a
// task (htq_api_tasks_rejected_total).
func (s *Server) legacyRejected(c echo.Context, reason string) {
	if legacyAddsTasks(c) {
		s.m.Rejected.WithLabelValues(reason).Inc()
	}
}

// legacyHandler parses the form (multipart or urlencoded), checks
// app_key/app_token first, as the original did, and turns every failure
// into a legacy error code: a legacy call never gets a non-200 answer or a
// dropped connection.
func (s *Server) legacyHandler(h func(echo.Context, *legacyForm) (any, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		var perr error
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "multipart/form-data" {
			perr = r.ParseMultipartForm(int64(s.cfg.MaxBodyBytes))
		} else {
			perr = r.ParseForm()
		}
		var mbe *http.MaxBytesError
		if errors.As(perr, &mbe) {
			s.legacyRejected(c, metrics.ReasonTooLarge)
			return s.legacyReply(c, legacyResult{Code: legacy.CodeTooLarge, Message: legacy.MsgTooLarge})
		}
		f := &legacyForm{c: c, vals: r.PostForm}
		if perr != nil && len(f.vals) == 0 {
			f.vals = map[string][]string{}
		}
		if len(s.cfg.ReadOnlyTokens) > 0 {
			if _, ro := s.tokenKind(f.value("app_token")); ro {
				s.legacyRejected(c, metrics.ReasonUnauthorized)
				return forbiddenLegacy
			}
		}
		if !s.legacyAuthorized(f) {
			s.legacyRejected(c, metrics.ReasonUnauthorized)
			return s.legacyReply(c, legacyResult{Code: legacy.CodeAuth, Message: legacy.MsgAuth})
		}
		if perr != nil {
			return s.legacyReply(c, legacyResult{Code: legacy.CodeInvalid, Message: legacy.MsgInvalid + "：表单无法解析（" + clip(perr.Error()) + "）"})
		}
		out, err := h(c, f)
		if err != nil {
			return s.legacyReply(c, s.legacyError(c, err))
		}
		return s.legacyReply(c, out)
	}
}

func (s *Server) legacyAuthorized(f *legacyForm) bool {
	if s.cfg.LegacyAppKey == "" || s.cfg.LegacyAppToken == "" {
		return false
	}
	k, t := f.value("app_key"), f.value("app_token")
	okKey := subtle.ConstantTimeCompare([]byte(k), []byte(s.cfg.LegacyAppKey))
	okTok := subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.LegacyAppToken))
	return okKey&okTok == 1
}

// legacyError maps an error to a legacy code; what the error was about (add
// or delete) picks between the original's generic codes. It counts a task
// refused before enqueue (enqueue counts its own refusals).
func (s *Server) legacyError(c echo.Context, err error) legacyResult {
	var full *task.QueueFullError
	addFailed := legacyAddsTasks(c) || strings.HasSuffix(c.Path(), "/addQueue")
	switch {
	case errors.Is(err, legacy.ErrInvalid), errors.Is(err, task.ErrBadQueue), errors.Is(err, task.ErrBadURL),
		errors.Is(err, task.ErrBadMethod), errors.Is(err, task.ErrBadHeader):
		s.legacyRejected(c, metrics.ReasonInvalid)
		return legacyResult{Code: legacy.CodeInvalid, Message: legacy.MsgInvalid + "：" + strings.TrimPrefix(err.Error(), legacy.MsgInvalid+": ")}
	case errors.Is(err, task.ErrTooLarge):
		s.legacyRejected(c, metrics.ReasonTooLarge)
		return legacyResult{Code: legacy.CodeTooLarge, Message: legacy.MsgTooLarge + "：" + err.Error()}
	case errors.As(err, &full):
		return legacyResult{Code: legacy.CodeAddFailed, Message: legacy.MsgAddFailed + "：队列已满（" + full.Error() + "）"}
	case errors.Is(err, task.ErrQueueExists):
		return legacyResult{Code: legacy.CodeQueueExists, Message: legacy.MsgQueueExists}
	case errors.Is(err, task.ErrQueueNotFound):
		return legacyResult{Code: legacy.CodeNoQueue, Message: legacy.MsgNoQueue}
	}
	s.log.Warn("legacy call failed", "route", c.Path(), "err", err)
	switch {
	case addFailed:
		return legacyResult{Code: legacy.CodeAddFailed, Message: legacy.MsgAddFailed}
	case strings.HasSuffix(c.Path(), "/deleteQueue"):
		return legacyResult{Code: legacy.CodeDeleteFailed, Message: legacy.MsgDeleteFailed}
	default:
		return legacyResult{Code: legacy.CodeUnavailable, Message: legacy.MsgUnavailable}
	}
}

func legacyQueueName(f *legacyForm, def string) (string, error) {
	name, ok := f.get("queue_name")
	if !ok || name == "" {
		if def != "" {
			return def, nil
		}
		return "", fmt.Errorf("%w: queue_name: required", legacy.ErrInvalid)
	}
	if err := task.ValidateQueueName(name); err != nil {
		return "", err
	}
	return name, nil
}

func (s *Server) legacyAddQueue(c echo.Context, f *legacyForm) (any, error) {
	name, err := legacyQueueName(f, "")
	if err != nil {
		return nil, err
	}
	minGap := s.cfg.Legacy.MinGap
	if minGap <= 0 {
		minGap = legacy.DefaultMinGap
	}
	// The SDK's defaults are raised to a gap every variable queue may have.
	minGap = max(minGap, s.cfg.MinVariableGap)
	cfg, err := legacy.QueueConfig(s.legacyQueueBase(), f.ptr("type"), f.ptr("stepping_time"), f.ptr("max_time_interval"), minGap)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckGapFloor(s.cfg.MinVariableGap); err != nil {
		return nil, fmt.Errorf("%w: %w", legacy.ErrInvalid, err)
	}
	if _, err := s.st.PutQueue(c.Request().Context(), name, &cfg, store.PutCreate); err != nil {
		return nil, err
	}
	return legacyResult{Code: legacy.CodeOK, Message: legacy.MsgAdded}, nil
}

// legacyQueueBase is the configuration a queue created through the legacy
// API starts from: the server's defaults with legacy.max_attempts attempts
// per task, since the original called each task once and told its users to
// enqueue again themselves when their step failed (retrying here would
// double their work). A REST PUT on the queue can change it.
func (s *Server) legacyQueueBase() task.QueueConfig {
	cfg := s.cfg.QueueDefaults
	if s.cfg.Legacy.MaxAttempts > 0 {
		cfg.Retry.MaxAttempts = s.cfg.Legacy.MaxAttempts
	}
	return cfg
}

func (s *Server) legacyDeleteQueue(c echo.Context, f *legacyForm) (any, error) {
	name, err := legacyQueueName(f, "")
	if err != nil {
		return nil, err
	}
	if err := s.st.DeleteQueue(c.Request().Context(), name); err != nil {
		return nil, err
	}
	return legacyResult{Code: legacy.CodeOK, Message: legacy.MsgDeleted}, nil
}

type legacyQueue struct {
	Name      string           `json:"queue_name"`
	Attribute legacy.Attribute `json:"attribute"`
}

func (s *Server) legacyAllQueue(c echo.Context, _ *legacyForm) (any, error) {
	ctx := c.Request().Context()
	qs, _, err := s.st.ListQueues(ctx, "", 0)
	if err != nil {
		return nil, err
	}
	// the original listed queues in the order they were created (a hash's
	// insertion order); the names index is sorted by name
	slices.SortStableFunc(qs, func(a, b *store.QueueInfo) int { return a.Created.Compare(b.Created) })
	out := make([]legacyQueue, 0, len(qs))
	for _, q := range qs {
		out = append(out, legacyQueue{Name: q.Name, Attribute: legacy.AttributeOf(&q.Config)})
	}
	return out, nil
}

func (s *Server) legacyCountQueue(c echo.Context, f *legacyForm) (any, error) {
	name, err := legacyQueueName(f, "")
	if err != nil {
		return nil, err
	}
	n, err := s.st.CountUnfinished(c.Request().Context(), name)
	if err != nil {
		return nil, err
	}
	return legacyResult{Code: legacy.CodeOK, Count: &n}, nil
}

func (s *Server) legacyAddTask(c echo.Context, f *legacyForm) (any, error) {
	name, nt, err := legacyTask(f, s.now(), s.cfg.TimeZone, s.cfg.Limits)
	var terr *legacy.TimeError
	if errors.As(err, &terr) && !s.cfg.Legacy.StrictExecuteTime {
		// the original ran what it could not parse at once, and PHP code
		// written against it rarely checks error_code
		s.log.Warn("legacy addTask: execute_time not understood; the task runs now, as the original did",
			"queue", name, "err", err)
		s.m.LegacyTimeFallbacks.Inc()
		err = nil
	}
	if err != nil {
		return nil, err
	}
	// an unknown queue is created as real_time, as the original did
	cfg := s.legacyQueueBase()
	realtime := legacy.TypeRealtime
	cfg.Legacy = &task.LegacyAttr{Type: &realtime}
	if _, err := s.enqueue(c, name, []store.NewTask{nt}, &cfg); err != nil {
		return nil, err
	}
	return legacyResult{Code: legacy.CodeOK, Message: legacy.MsgAdded}, nil
}

// legacyTask turns addTask's form fields into a task: the queue (default
// default_queue), method (default GET), header and data (JSON objects; data
// becomes multipart form fields, not sent for GET and HEAD) and execute_time.
// An execute_time it does not understand is a *legacy.TimeError returned
// with the task, due now. It does no I/O, so it is fuzzed on its own.
func legacyTask(f *legacyForm, now time.Time, loc *time.Location, limits task.Limits) (string, store.NewTask, error) {
	name, err := legacyQueueName(f, legacy.DefaultQueue)
	if err != nil {
		return "", store.NewTask{}, err
	}
	u, ok := f.get("url")
	if !ok || u == "" {
		return "", store.NewTask{}, fmt.Errorf("%w: url: required", legacy.ErrInvalid)
	}
	// spaces and the like are percent-encoded as the original (and a
	// browser) did; a URL that needs nothing is kept exactly as given
	spec := &task.Spec{Method: f.value("method"), URL: legacy.EscapeURL(u), CreatedMs: now.UnixMilli()}
	if spec.Header, err = legacy.ParseFields("header", f.value("header")); err != nil {
		return "", store.NewTask{}, err
	}
	data, err := legacy.ParseFields("data", f.value("data"))
	if err != nil {
		return "", store.NewTask{}, err
	}
	if len(data) > 0 && !task.NoBodyMethod(strings.ToUpper(spec.Method)) {
		spec.Form, spec.BodyKind = data, task.BodyMultipart
	}
	if err := spec.Normalize(limits); err != nil {
		return "", store.NewTask{}, err
	}
	nt := store.NewTask{Spec: spec}
	due, ok, err := legacy.ParseExecuteTime(f.value("execute_time"), loc)
	var terr *legacy.TimeError
	if errors.As(err, &terr) {
		return name, nt, err // the task, due now, for the caller to run or refuse
	}
	if err != nil {
		return "", store.NewTask{}, err
	}
	if ok {
		nt.Due = due
		if due.After(now) {
			spec.RunAtMs = due.UnixMilli()
		}
	}
	return name, nt, nil
}
