package api

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

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
	cfg, err := legacy.QueueConfig(s.cfg.QueueDefaults, f.value("type"), f.ptr("stepping_time"), f.ptr("max_time_interval"))
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
	if err != nil {
		return nil, err
	}
	// an unknown queue is created as real_time, as the original did
	cfg := s.cfg.QueueDefaults
	cfg.Legacy = &task.LegacyAttr{Type: legacy.TypeRealtime}
	if _, err := s.enqueue(c, name, []store.NewTask{nt}, &cfg); err != nil {
		return nil, err
	}
	return legacyResult{Code: legacy.CodeOK, Message: legacy.MsgAdded}, nil
}

// legacyTask turns addTask's form fields into a task: the queue (default
// default_queue), method (default GET), header and data (JSON objects; data
// becomes multipart form fields, not sent for GET and HEAD) and execute_time.
// It does no I/O, so it is fuzzed on its own.
func legacyTask(f *legacyForm, now time.Time, loc *time.Location, limits task.Limits) (string, store.NewTask, error) {
	name, err := legacyQueueName(f, legacy.DefaultQueue)
	if err != nil {
		return "", store.NewTask{}, err
	}
	u, ok := f.get("url")
	if !ok || u == "" {
		return "", store.NewTask{}, fmt.Errorf("%w: url: required", legacy.ErrInvalid)
	}
	spec := &task.Spec{Method: f.value("method"), URL: u, CreatedMs: now.UnixMilli()}
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
