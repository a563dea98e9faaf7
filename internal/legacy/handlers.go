package legacy

// The HTTP side of the protocol: the five /api/* endpoints, their form
// codec, their answers (always HTTP 200 with an error_code) and their
// limits. The codec of the fields themselves (execute_time, header, data,
// queue attributes) is in legacy.go.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Settings are the protocol's own settings (the config file's legacy
// section, the legacy credentials and the zone of execute_time).
type Settings struct {
	// AppKey and AppToken are the credentials every call carries; with
	// either empty, every call is refused (1000).
	AppKey, AppToken string
	// MaxAttempts is the retry.max_attempts of a one-shot queue created
	// through the legacy API (legacy.max_attempts; 1: the original called
	// each task once).
	MaxAttempts int
	// MinGap is the floor of a legacy variable queue's gaps (legacy.min_gap;
	// see QueueConfig): more than 0.
	MinGap time.Duration
	// StrictExecuteTime refuses an execute_time that is not understood
	// (1005) instead of running the task at once as the original did.
	StrictExecuteTime bool
	// TimeZone is the zone execute_time is read in (api.time_zone).
	TimeZone *time.Location
}

// ErrSettings wraps every error of Settings.Validate.
var ErrSettings = errors.New("invalid legacy settings")

// Validate refuses settings the protocol cannot serve with. Their defaults
// live in internal/config, which checks them with the keys' names first.
func (s *Settings) Validate() error {
	switch {
	case s.MaxAttempts < 1 || s.MaxAttempts > task.MaxAttemptsLimit:
		return fmt.Errorf("%w: MaxAttempts %d: want 1 to %d", ErrSettings, s.MaxAttempts, task.MaxAttemptsLimit)
	case s.MinGap <= 0:
		return fmt.Errorf("%w: MinGap %v: want more than 0", ErrSettings, s.MinGap)
	case s.TimeZone == nil:
		return fmt.Errorf("%w: TimeZone nil: want the zone of execute_time", ErrSettings)
	}
	return nil
}

// Shared are the API-wide settings the protocol applies too.
type Shared struct {
	// Limits bound a task; MaxBodyBytes also bounds a request body.
	Limits       task.Limits
	MaxBodyBytes int
	// MinVariableGap is every variable queue's floor (queues.min_variable_gap).
	MinVariableGap time.Duration
	// QueueDefaults is the configuration a new queue starts from.
	QueueDefaults task.QueueConfig
}

// Store is what the protocol reads and changes.
type Store interface {
	PutQueue(ctx context.Context, name string, cfg *task.QueueConfig, mode store.PutMode) (bool, error)
	DeleteQueue(ctx context.Context, name string) error
	ListQueues(ctx context.Context, after string, limit int) ([]*store.QueueInfo, bool, error)
	CountUnfinished(ctx context.Context, name string) (int64, error)
}

// Deps are the parts of the API the protocol uses.
type Deps struct {
	Store Store
	// Enqueue adds tasks as the REST API does (idempotency, metrics),
	// creating the queue with create when it does not exist.
	Enqueue func(ctx context.Context, queue string, tasks []store.NewTask, create *task.QueueConfig) error
	// Refuse, when set, may refuse a call before its credentials are
	// checked (an app_token that is one of the API's read-only tokens);
	// its error is returned as it is.
	Refuse  func(appToken string) error
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *metrics.API
}

// Handler serves the legacy protocol.
type Handler struct {
	cfg    Settings
	shared Shared
	d      Deps
}

// NewHandler returns the protocol's handler, or an error when cfg does not
// validate.
func NewHandler(cfg Settings, shared Shared, d Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, shared: shared, d: d}, nil
}

// Prefix is where the protocol is served.
const Prefix = "/api/"

// endpointAddTask is the one endpoint that creates tasks.
const endpointAddTask = "addTask"

// Register adds the five endpoints to g (the /api group).
func (h *Handler) Register(g *echo.Group) {
	for name, fn := range map[string]func(echo.Context, *form) (any, error){
		"addQueue": h.addQueue, "deleteQueue": h.deleteQueue, "allQueue": h.allQueue,
		"countQueue": h.countQueue, endpointAddTask: h.addTask,
	} {
		g.POST("/"+name, h.handle(fn))
	}
}

// result is the body of a legacy answer: always HTTP 200 with
// {"error_code":…, "message":…} (plus "count" for countQueue).
type result struct {
	Code    int    `json:"error_code"`
	Message string `json:"message,omitempty"`
	Count   *int64 `json:"count,omitempty"`
}

// reply writes JSON as the SDK expects it: UTF-8 left unescaped.
// Answers the original also sent (its codes below 1005, allQueue's list)
// stay byte for byte as it wrote them; the messages of the newer codes,
// which quote what the client sent, escape <, > and & (\u003c…), which
// every JSON decoder reads back the same.
func reply(c echo.Context, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	r, ok := v.(result)
	enc.SetEscapeHTML(ok && r.Code >= CodeInvalid)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/json; charset=utf-8", bytes.TrimRight(buf.Bytes(), "\n"))
}

// TooLarge answers a legacy call whose body is over the limit (1006), for
// the API's body limit, which refuses before the form is read.
func (h *Handler) TooLarge(c echo.Context) error {
	h.rejected(c, metrics.ReasonTooLarge)
	return reply(c, result{Code: CodeTooLarge, Message: MsgTooLarge + "：" + strconv.Itoa(h.shared.MaxBodyBytes) + " 字节以内"})
}

type form struct {
	vals map[string][]string
}

func (f *form) get(name string) (string, bool) {
	v, ok := f.vals[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (f *form) value(name string) string {
	v, _ := f.get(name)
	return v
}

func (f *form) ptr(name string) *string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	return &v
}

// addsTasks reports whether the request went to addTask.
func addsTasks(c echo.Context) bool { return strings.HasSuffix(c.Path(), "/"+endpointAddTask) }

// rejected counts a refused task: only addTask's refusals refuse a task
// (htq_api_tasks_rejected_total).
func (h *Handler) rejected(c echo.Context, reason string) {
	if addsTasks(c) && h.d.Metrics != nil {
		h.d.Metrics.Rejected.WithLabelValues(reason).Inc()
	}
}

// RejectedBy counts a call refused by the API before it reached the
// protocol (a read-only bearer token).
func (h *Handler) RejectedBy(c echo.Context, reason string) { h.rejected(c, reason) }

// handle parses the form (multipart or urlencoded), checks
// app_key/app_token first, as the original did, and turns every failure
// into a legacy error code: a legacy call never gets a non-200 answer or a
// dropped connection.
func (h *Handler) handle(fn func(echo.Context, *form) (any, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		var perr error
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "multipart/form-data" {
			perr = r.ParseMultipartForm(int64(h.shared.MaxBodyBytes))
		} else {
			perr = r.ParseForm()
		}
		var mbe *http.MaxBytesError
		if errors.As(perr, &mbe) {
			h.rejected(c, metrics.ReasonTooLarge)
			return reply(c, result{Code: CodeTooLarge, Message: MsgTooLarge})
		}
		f := &form{vals: r.PostForm}
		if perr != nil && len(f.vals) == 0 {
			f.vals = map[string][]string{}
		}
		if h.d.Refuse != nil {
			if err := h.d.Refuse(f.value("app_token")); err != nil {
				h.rejected(c, metrics.ReasonUnauthorized)
				return err
			}
		}
		if !h.authorized(f) {
			h.rejected(c, metrics.ReasonUnauthorized)
			return reply(c, result{Code: CodeAuth, Message: MsgAuth})
		}
		if perr != nil {
			return reply(c, result{Code: CodeInvalid, Message: MsgInvalid + "：表单无法解析（" + clip(perr.Error()) + "）"})
		}
		out, err := fn(c, f)
		if err != nil {
			return reply(c, h.errorResult(c, err))
		}
		return reply(c, out)
	}
}

func (h *Handler) authorized(f *form) bool {
	if h.cfg.AppKey == "" || h.cfg.AppToken == "" {
		return false
	}
	k, t := f.value("app_key"), f.value("app_token")
	okKey := subtle.ConstantTimeCompare([]byte(k), []byte(h.cfg.AppKey))
	okTok := subtle.ConstantTimeCompare([]byte(t), []byte(h.cfg.AppToken))
	return okKey&okTok == 1
}

// errorResult maps an error to a legacy code; what the error was about (add
// or delete) picks between the original's generic codes. It counts a task
// refused before enqueue (enqueue counts its own refusals).
func (h *Handler) errorResult(c echo.Context, err error) result {
	var full *task.QueueFullError
	addFailed := addsTasks(c) || strings.HasSuffix(c.Path(), "/addQueue")
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, task.ErrInvalid): // every validation error of package task
		h.rejected(c, metrics.ReasonInvalid)
		return result{Code: CodeInvalid, Message: MsgInvalid + "：" + strings.TrimPrefix(err.Error(), MsgInvalid+": ")}
	case errors.Is(err, task.ErrTooLarge):
		h.rejected(c, metrics.ReasonTooLarge)
		return result{Code: CodeTooLarge, Message: MsgTooLarge + "：" + err.Error()}
	case errors.As(err, &full):
		return result{Code: CodeAddFailed, Message: MsgAddFailed + "：队列已满（" + full.Error() + "）"}
	case errors.Is(err, task.ErrQueueExists):
		return result{Code: CodeQueueExists, Message: MsgQueueExists}
	case errors.Is(err, task.ErrQueueNotFound):
		return result{Code: CodeNoQueue, Message: MsgNoQueue}
	}
	h.d.Log.Warn("legacy call failed", "route", c.Path(), "err", err)
	switch {
	case addFailed:
		return result{Code: CodeAddFailed, Message: MsgAddFailed}
	case strings.HasSuffix(c.Path(), "/deleteQueue"):
		return result{Code: CodeDeleteFailed, Message: MsgDeleteFailed}
	default:
		return result{Code: CodeUnavailable, Message: MsgUnavailable}
	}
}

func queueName(f *form, def string) (string, error) {
	name, ok := f.get("queue_name")
	if !ok || name == "" {
		if def != "" {
			return def, nil
		}
		return "", fmt.Errorf("%w: queue_name: required", ErrInvalid)
	}
	if err := task.ValidateQueueName(name); err != nil {
		return "", err
	}
	return name, nil
}

func (h *Handler) addQueue(c echo.Context, f *form) (any, error) {
	name, err := queueName(f, "")
	if err != nil {
		return nil, err
	}
	// The SDK's defaults are raised to a gap every variable queue may have.
	minGap := max(h.cfg.MinGap, h.shared.MinVariableGap)
	cfg, err := QueueConfig(h.queueBase(), f.ptr("type"), f.ptr("stepping_time"), f.ptr("max_time_interval"), minGap)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckGapFloor(h.shared.MinVariableGap); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := h.d.Store.PutQueue(c.Request().Context(), name, &cfg, store.PutCreate); err != nil {
		return nil, err
	}
	return result{Code: CodeOK, Message: MsgAdded}, nil
}

// queueBase is the configuration a queue created through the legacy API
// starts from: the server's defaults with legacy.max_attempts attempts per
// task, since the original called each task once and told its users to
// enqueue again themselves when their step failed (retrying here would
// double their work). A REST PUT on the queue can change it.
func (h *Handler) queueBase() task.QueueConfig {
	cfg := h.shared.QueueDefaults
	cfg.Retry.MaxAttempts = h.cfg.MaxAttempts
	return cfg
}

func (h *Handler) deleteQueue(c echo.Context, f *form) (any, error) {
	name, err := queueName(f, "")
	if err != nil {
		return nil, err
	}
	if err := h.d.Store.DeleteQueue(c.Request().Context(), name); err != nil {
		return nil, err
	}
	return result{Code: CodeOK, Message: MsgDeleted}, nil
}

type queueEntry struct {
	Name      string    `json:"queue_name"`
	Attribute Attribute `json:"attribute"`
}

func (h *Handler) allQueue(c echo.Context, _ *form) (any, error) {
	qs, _, err := h.d.Store.ListQueues(c.Request().Context(), "", 0)
	if err != nil {
		return nil, err
	}
	// the original listed queues in the order they were created (a hash's
	// insertion order); the names index is sorted by name
	slices.SortStableFunc(qs, func(a, b *store.QueueInfo) int { return a.Created.Compare(b.Created) })
	out := make([]queueEntry, 0, len(qs))
	for _, q := range qs {
		out = append(out, queueEntry{Name: q.Name, Attribute: AttributeOf(&q.Config)})
	}
	return out, nil
}

func (h *Handler) countQueue(c echo.Context, f *form) (any, error) {
	name, err := queueName(f, "")
	if err != nil {
		return nil, err
	}
	n, err := h.d.Store.CountUnfinished(c.Request().Context(), name)
	if err != nil {
		return nil, err
	}
	return result{Code: CodeOK, Count: &n}, nil
}

func (h *Handler) addTask(c echo.Context, f *form) (any, error) {
	name, nt, err := newTask(f, h.d.Now(), h.cfg.TimeZone, h.shared.Limits)
	var terr *TimeError
	if errors.As(err, &terr) && !h.cfg.StrictExecuteTime {
		// the original ran what it could not parse at once, and PHP code
		// written against it rarely checks error_code
		h.d.Log.Warn("legacy addTask: execute_time not understood; the task runs now, as the original did",
			"queue", name, "err", err)
		if h.d.Metrics != nil {
			h.d.Metrics.LegacyTimeFallbacks.Inc()
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	// an unknown queue is created as real_time, as the original did
	cfg := h.queueBase()
	realtime := TypeRealtime
	cfg.Legacy = &task.LegacyAttr{Type: &realtime}
	if err := h.d.Enqueue(c.Request().Context(), name, []store.NewTask{nt}, &cfg); err != nil {
		return nil, err
	}
	return result{Code: CodeOK, Message: MsgAdded}, nil
}

// newTask turns addTask's form fields into a task: the queue (default
// default_queue), method (default GET), header and data (JSON objects; data
// becomes multipart form fields, not sent for GET and HEAD) and execute_time.
// An execute_time it does not understand is a *TimeError returned with the
// task, due now. It does no I/O, so it is fuzzed on its own.
func newTask(f *form, now time.Time, loc *time.Location, limits task.Limits) (string, store.NewTask, error) {
	name, err := queueName(f, DefaultQueue)
	if err != nil {
		return "", store.NewTask{}, err
	}
	u, ok := f.get("url")
	if !ok || u == "" {
		return "", store.NewTask{}, fmt.Errorf("%w: url: required", ErrInvalid)
	}
	// spaces and the like are percent-encoded as the original (and a
	// browser) did; a URL that needs nothing is kept exactly as given
	spec := &task.Spec{Method: f.value("method"), URL: EscapeURL(u), CreatedMs: now.UnixMilli()}
	if spec.Header, err = ParseFields("header", f.value("header")); err != nil {
		return "", store.NewTask{}, err
	}
	data, err := ParseFields("data", f.value("data"))
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
	due, ok, err := ParseExecuteTime(f.value("execute_time"), loc)
	var terr *TimeError
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
