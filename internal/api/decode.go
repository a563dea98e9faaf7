package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// maxIdempotencyKey bounds idempotency keys.
const maxIdempotencyKey = 256

// readJSON decodes a request body into v strictly: valid UTF-8, one JSON
// value, no unknown fields. Errors name the field and say what was wanted.
func readJSON(c echo.Context, v any) error {
	r := c.Request()
	// The body is read as JSON whatever its Content-Type says (curl -d
	// labels JSON as a urlencoded form), except a multipart form, which
	// cannot be JSON.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		return apiErr(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "multipart/form-data: send a JSON object (application/json)")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err // *http.MaxBytesError becomes 413
	}
	return decodeStrict(body, v)
}

// decodeStrict is readJSON's decoder, on bytes (also used by the fuzz test).
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "empty request body: send a JSON object")
	}
	if !utf8.Valid(body) {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid UTF-8")
	}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("null")) {
		// null decodes into a struct as "no fields": PUT would create a queue
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "want a JSON object, got null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, body)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error, body []byte) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apiErr(http.StatusBadRequest, CodeInvalidJSON, "want a JSON object, got %s", typ.Value)
		}
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "%s: want %s, got %s", field, jsonType(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, task.ErrBadDuration):
		if field := badDurationField(body, ""); field != "" {
			return apiErr(http.StatusUnprocessableEntity, CodeValidation, "%s: %v", field, err)
		}
		return apiErr(http.StatusUnprocessableEntity, CodeValidation, "%v", err)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return apiErr(http.StatusBadRequest, CodeInvalidJSON, "%v", err)
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"), goType == "task.Duration":
		return "a number"
	case goType == "bool":
		return "true or false"
	default:
		return "a string"
	}
}

func invalidField(field, format string, args ...any) error {
	return apiErr(http.StatusUnprocessableEntity, CodeValidation, "%s: %s", field, fmt.Sprintf(format, args...))
}

// taskRequest is the JSON of a task to create.
type taskRequest struct {
	URL            string            `json:"url"`
	Method         string            `json:"method"`
	Headers        map[string]string `json:"headers"`
	Body           json.RawMessage   `json:"body"`
	BodyBase64     *string           `json:"body_base64"`
	Form           map[string]string `json:"form"`
	FormEncoding   string            `json:"form_encoding"`
	RunAt          *string           `json:"run_at"`
	Delay          *task.Duration    `json:"delay"`
	Timeout        *task.Duration    `json:"timeout"`
	MaxAttempts    *int              `json:"max_attempts"`
	MinBackoff     *task.Duration    `json:"min_backoff"`
	MaxBackoff     *task.Duration    `json:"max_backoff"`
	IdempotencyKey string            `json:"idempotency_key"`
}

// toNewTask validates a task request and builds what the store enqueues.
func (r *taskRequest) toNewTask(now time.Time, l task.Limits) (store.NewTask, error) {
	if r.URL == "" {
		return store.NewTask{}, invalidField("url", "required")
	}
	s := &task.Spec{Method: r.Method, URL: r.URL, CreatedMs: now.UnixMilli()}
	names := make([]string, 0, len(r.Headers))
	for n := range r.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s.Header = append(s.Header, task.Field{Name: n, Value: r.Headers[n]})
	}
	bodies := 0
	if len(r.Body) > 0 && string(r.Body) != "null" {
		bodies++
		if r.Body[0] == '"' {
			var text string
			if err := json.Unmarshal(r.Body, &text); err != nil {
				return store.NewTask{}, invalidField("body", "%v", err)
			}
			s.SetBody([]byte(text))
		} else {
			var compact bytes.Buffer
			if err := json.Compact(&compact, r.Body); err != nil {
				return store.NewTask{}, invalidField("body", "%v", err)
			}
			s.SetBody(compact.Bytes())
			if !hasHeader(r.Headers, "Content-Type") {
				s.Header = append(s.Header, task.Field{Name: "Content-Type", Value: "application/json"})
			}
		}
	}
	if r.BodyBase64 != nil {
		bodies++
		b, err := base64.StdEncoding.DecodeString(*r.BodyBase64)
		if err != nil {
			return store.NewTask{}, invalidField("body_base64", "not valid base64: %v", err)
		}
		s.SetBody(b)
	}
	if r.Form != nil {
		bodies++
		keys := make([]string, 0, len(r.Form))
		for k := range r.Form {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s.Form = append(s.Form, task.Field{Name: k, Value: r.Form[k]})
		}
		switch r.FormEncoding {
		case "", "urlencoded":
			s.BodyKind = task.BodyURLEncoded
		case "multipart":
			s.BodyKind = task.BodyMultipart
		default:
			return store.NewTask{}, invalidField("form_encoding", "%q: want \"urlencoded\" or \"multipart\"", r.FormEncoding)
		}
	} else if r.FormEncoding != "" {
		return store.NewTask{}, invalidField("form_encoding", "set only with form")
	}
	if bodies > 1 {
		return store.NewTask{}, invalidField("body", "set at most one of body, body_base64 and form")
	}
	// The task's own backoff bounds, like the queue's retry.min_backoff and
	// retry.max_backoff (Normalize checks them); one set alone replaces only
	// that bound of the queue's policy.
	s.MinBackoffMs, s.MaxBackoffMs = r.MinBackoff.MillisPtr(), r.MaxBackoff.MillisPtr()
	if err := s.Normalize(l); err != nil {
		return store.NewTask{}, err
	}
	if bodies > 0 && task.NoBodyMethod(s.Method) {
		return store.NewTask{}, invalidField("body", "%s tasks are sent without a body; use POST, PUT or PATCH", s.Method)
	}
	nt := store.NewTask{Spec: s, IdempotencyKey: r.IdempotencyKey}
	if len(r.IdempotencyKey) > maxIdempotencyKey {
		return store.NewTask{}, invalidField("idempotency_key", "%d bytes, limit %d", len(r.IdempotencyKey), maxIdempotencyKey)
	}
	switch {
	case r.RunAt != nil && r.Delay != nil:
		return store.NewTask{}, invalidField("run_at", "set run_at or delay, not both")
	case r.RunAt != nil:
		t, err := time.Parse(time.RFC3339Nano, *r.RunAt)
		if err != nil {
			return store.NewTask{}, invalidField("run_at", "%q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", clip(*r.RunAt))
		}
		if t.Year() > 9999 || t.Year() < 1970 {
			return store.NewTask{}, invalidField("run_at", "%q: out of range", *r.RunAt)
		}
		nt.Due = t
	case r.Delay != nil:
		nt.Due = now.Add(r.Delay.Std())
	}
	if nt.Due.After(now) {
		// Times are kept in milliseconds: round up, so that a task never
		// runs before the time it was given.
		nt.Due = clock.CeilMillis(nt.Due)
		s.RunAtMs = nt.Due.UnixMilli()
	}
	if r.Timeout != nil {
		if *r.Timeout <= 0 || r.Timeout.Std() > task.MaxTimeout {
			return store.NewTask{}, invalidField("timeout", "want more than 0 and at most 24h")
		}
		s.TimeoutMs = r.Timeout.Millis()
	}
	if r.MaxAttempts != nil {
		if *r.MaxAttempts < 1 || *r.MaxAttempts > task.MaxAttemptsLimit {
			return store.NewTask{}, invalidField("max_attempts", "want 1 to %d", task.MaxAttemptsLimit)
		}
		s.MaxAttempts = *r.MaxAttempts
	}
	return nt, nil
}

func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}

// queuePatch is the JSON of PUT /v1/queues/{queue}: fields left out keep
// their current value (or the default, for a new queue).
type queuePatch struct {
	Type            *task.Kind     `json:"type"`
	SteppingTime    *task.Duration `json:"stepping_time"`
	MaxTimeInterval *task.Duration `json:"max_time_interval"`
	Concurrency     *int           `json:"concurrency"`
	Rate            *float64       `json:"rate"`
	Burst           *int           `json:"burst"`
	Timeout         *task.Duration `json:"timeout"`
	Retry           *struct {
		MaxAttempts *int           `json:"max_attempts"`
		MinBackoff  *task.Duration `json:"min_backoff"`
		MaxBackoff  *task.Duration `json:"max_backoff"`
	} `json:"retry"`
	Ordering      *task.Ordering `json:"ordering"`
	MaxBacklog    *int64         `json:"max_backlog"`
	Retention     *task.Duration `json:"retention"`
	DeadRetention *task.Duration `json:"dead_retention"`
}

func (p *queuePatch) apply(c *task.QueueConfig) {
	set := func(dst *task.Duration, v *task.Duration) {
		if v != nil {
			*dst = *v
		}
	}
	c.Legacy = nil // allQueue shows the REST configuration from now on
	if p.Type != nil {
		c.Type = *p.Type
	}
	set(&c.SteppingTime, p.SteppingTime)
	set(&c.MaxTimeInterval, p.MaxTimeInterval)
	if p.Concurrency != nil {
		c.Concurrency = *p.Concurrency
	}
	if p.Rate != nil {
		c.Rate = *p.Rate
	}
	if p.Burst != nil {
		c.Burst = *p.Burst
	}
	set(&c.Timeout, p.Timeout)
	if r := p.Retry; r != nil {
		if r.MaxAttempts != nil {
			c.Retry.MaxAttempts = *r.MaxAttempts
		}
		set(&c.Retry.MinBackoff, r.MinBackoff)
		set(&c.Retry.MaxBackoff, r.MaxBackoff)
	}
	if p.Ordering != nil {
		c.Ordering = *p.Ordering
	}
	if p.MaxBacklog != nil {
		c.MaxBacklog = *p.MaxBacklog
	}
	set(&c.Retention, p.Retention)
	set(&c.DeadRetention, p.DeadRetention)
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// durationKeys are the JSON fields that hold durations.
var durationKeys = map[string]bool{
	"timeout": true, "delay": true, "stepping_time": true, "max_time_interval": true,
	"retention": true, "dead_retention": true, "min_backoff": true, "max_backoff": true,
}

// badDurationField finds the field whose duration failed to parse, so the
// error can name it: the JSON decoder does not say which field a type's own
// parser refused. It looks into nested objects and arrays ("tasks[3].delay").
func badDurationField(raw json.RawMessage, path string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if durationKeys[k] {
				var d task.Duration
				if d.UnmarshalJSON(obj[k]) != nil {
					return p
				}
			}
			if f := badDurationField(obj[k], p); f != "" {
				return f
			}
		}
		return ""
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		for i, v := range arr {
			if f := badDurationField(v, fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	}
	return ""
}
