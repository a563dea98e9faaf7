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
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err // 413
		}
		return &bodyReadError{err} // 408 or 400
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
		return jsonError(err)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apiErr(http.StatusBadRequest, CodeInvalidJSON, "want a JSON object, got %s", clip(typ.Value))
		}
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "%s: want %s, got %s", clip(field), jsonType(typ.Type.String()), clip(typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "unknown field %s", clip(strings.TrimPrefix(err.Error(), "json: unknown field ")))
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
	Delay          *durationJSON     `json:"delay"`
	Timeout        *durationJSON     `json:"timeout"`
	MaxAttempts    *int              `json:"max_attempts"`
	K              *int64            `json:"k"`
	MinBackoff     *durationJSON     `json:"min_backoff"`
	MaxBackoff     *durationJSON     `json:"max_backoff"`
	IdempotencyKey string            `json:"idempotency_key"`
}

// durationJSON is a duration field of a request body. A value that does not
// parse is kept as an error, not returned to the JSON decoder, which would
// stop without saying which field it was in; the request's own check
// (badDuration) then names the field from its known path. (Finding the
// field by re-parsing the document instead costs depth × size: one 20 KB
// request nested 9,999 deep took seconds and hundreds of megabytes.)
type durationJSON struct {
	task.Duration
	err error
}

// UnmarshalJSON parses the value and keeps the error for badDuration.
func (d *durationJSON) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '[' || b[0] == '{') {
		// Not worth decoding again (the decoder has checked the JSON).
		kind := "an array"
		if b[0] == '{' {
			kind = "an object"
		}
		d.err = fmt.Errorf("%w: want seconds or a string like \"500ms\", got %s", task.ErrBadDuration, kind)
		return nil
	}
	d.err = d.Duration.UnmarshalJSON(b)
	return nil
}

// std returns the duration (0 when absent).
func (d *durationJSON) std() time.Duration {
	if d == nil {
		return 0
	}
	return d.Std()
}

// ptr returns the duration, nil when absent.
func (d *durationJSON) ptr() *task.Duration {
	if d == nil {
		return nil
	}
	return &d.Duration
}

// namedDuration is a duration field with its path in the request.
type namedDuration struct {
	path string
	d    *durationJSON
}

// badDuration returns a 422 naming the first field, in the given order,
// whose duration did not parse; prefix is the path of the object that holds
// them ("tasks[3]." in a batch).
func badDuration(prefix string, fields ...namedDuration) error {
	for _, f := range fields {
		if f.d != nil && f.d.err != nil {
			return apiErr(http.StatusUnprocessableEntity, CodeValidation, "%s%s: %v", prefix, f.path, f.d.err)
		}
	}
	return nil
}

// badDuration names the task's first duration that did not parse.
func (r *taskRequest) badDuration(prefix string) error {
	return badDuration(prefix, namedDuration{"delay", r.Delay}, namedDuration{"timeout", r.Timeout},
		namedDuration{"min_backoff", r.MinBackoff}, namedDuration{"max_backoff", r.MaxBackoff})
}

// toNewTask validates a task request and builds what the store enqueues.
func (r *taskRequest) toNewTask(now time.Time, l task.Limits) (store.NewTask, error) {
	if err := r.badDuration(""); err != nil {
		return store.NewTask{}, err
	}
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
	s.MinBackoffMs, s.MaxBackoffMs = r.MinBackoff.ptr().MillisPtr(), r.MaxBackoff.ptr().MillisPtr()
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
		t, err := parseInstant("run_at", *r.RunAt)
		if err != nil {
			return store.NewTask{}, err
		}
		nt.Due = t
	case r.Delay != nil:
		nt.Due = now.Add(r.Delay.std())
		if err := task.CheckDue(clock.CeilMillis(nt.Due)); err != nil {
			return store.NewTask{}, invalidField("delay", "out of range: %v", err)
		}
	}
	if nt.Due.After(now) {
		// Times are kept in milliseconds: round up, so that a task never
		// runs before the time it was given.
		nt.Due = clock.CeilMillis(nt.Due)
		s.RunAtMs = nt.Due.UnixMilli()
	}
	if r.Timeout != nil {
		if r.Timeout.Duration <= 0 || r.Timeout.std() > task.MaxTimeout {
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
	if r.K != nil {
		if *r.K < 0 || *r.K > task.MaxStartK {
			return store.NewTask{}, invalidField("k", "want 0 to %d", task.MaxStartK)
		}
		s.StartK = *r.K
	}
	return nt, nil
}

// clip shortens a value quoted in an error to 64 bytes.
func clip(s string) string { return clipTo(s, 64) }

// clipTo shortens s to at most n bytes, on a UTF-8 boundary, and marks the
// cut with an ellipsis.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// queuePatch is the JSON of PUT /v1/queues/{queue}: fields left out keep
// their current value (or the default, for a new queue).
type queuePatch struct {
	Type            *task.Kind    `json:"type"`
	SteppingTime    *durationJSON `json:"stepping_time"`
	MaxTimeInterval *durationJSON `json:"max_time_interval"`
	Concurrency     *int          `json:"concurrency"`
	Rate            *float64      `json:"rate"`
	Burst           *int          `json:"burst"`
	Timeout         *durationJSON `json:"timeout"`
	Retry           *struct {
		MaxAttempts *int          `json:"max_attempts"`
		MinBackoff  *durationJSON `json:"min_backoff"`
		MaxBackoff  *durationJSON `json:"max_backoff"`
	} `json:"retry"`
	Ordering      *task.Ordering `json:"ordering"`
	MaxBacklog    *int64         `json:"max_backlog"`
	Retention     *durationJSON  `json:"retention"`
	DeadRetention *durationJSON  `json:"dead_retention"`
}

// badDuration names the patch's first duration that did not parse.
func (p *queuePatch) badDuration() error {
	fields := []namedDuration{{"stepping_time", p.SteppingTime}, {"max_time_interval", p.MaxTimeInterval},
		{"timeout", p.Timeout}, {"retention", p.Retention}, {"dead_retention", p.DeadRetention}}
	if r := p.Retry; r != nil {
		fields = append(fields, namedDuration{"retry.min_backoff", r.MinBackoff}, namedDuration{"retry.max_backoff", r.MaxBackoff})
	}
	return badDuration("", fields...)
}

func (p *queuePatch) apply(c *task.QueueConfig) {
	set := func(dst *task.Duration, v *durationJSON) {
		if v != nil {
			*dst = v.Duration
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

// parseInstant reads an RFC 3339 time a request gives (a task's run_at, a
// schedule's start_at or end_at). It is checked in UTC after rounding up to
// the millisecond it is kept in: 9999-12-31T23:59:59-23:59 is in year
// 10000, and so is the last nanosecond of 9999 rounded up.
func parseInstant(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalidField(field, "%q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", clip(v))
	}
	if err := task.CheckDue(clock.CeilMillis(t)); err != nil {
		return time.Time{}, invalidField(field, "%q: out of range: %v", clip(v), err)
	}
	return t, nil
}
