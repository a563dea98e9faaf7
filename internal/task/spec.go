package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// BodyKind says how a task's body is sent.
type BodyKind string

// Body kinds. Raw bytes are sent as given (with the task's Content-Type, if
// any); form fields as multipart/form-data (what the legacy SDK's PHP targets
// read through $_POST) or as application/x-www-form-urlencoded.
const (
	BodyNone       BodyKind = ""
	BodyRaw        BodyKind = "raw"
	BodyMultipart  BodyKind = "multipart"
	BodyURLEncoded BodyKind = "urlencoded"
)

// Field is one ordered name/value pair, for headers and form fields.
type Field struct {
	Name  string
	Value string
}

// MarshalJSON writes a field as a two-element array, which keeps stored specs
// small.
func (f Field) MarshalJSON() ([]byte, error) { return json.Marshal([2]string{f.Name, f.Value}) }

// UnmarshalJSON reads the two-element array form.
func (f *Field) UnmarshalJSON(b []byte) error {
	var a [2]string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	f.Name, f.Value = a[0], a[1]
	return nil
}

// MaxStartK bounds a task's starting call count (beyond max_time_interval /
// stepping_time every gap is the longest anyway).
const MaxStartK = 1_000_000_000

// Spec is the immutable request of a task: what to call and how. It is stored
// once per task, as written by Encode.
type Spec struct {
	Method      string   `json:"m,omitempty"`
	URL         string   `json:"u"`
	Header      []Field  `json:"h,omitempty"`
	BodyKind    BodyKind `json:"k,omitempty"`
	Body        string   `json:"b,omitempty"` // raw body when valid UTF-8
	BodyBinary  []byte   `json:"x,omitempty"` // raw body otherwise (base64 in JSON)
	Form        []Field  `json:"f,omitempty"`
	TimeoutMs   int64    `json:"o,omitempty"` // 0: the queue's timeout
	MaxAttempts int      `json:"r,omitempty"` // 0: the queue's policy
	// MinBackoffMs and MaxBackoffMs override the queue's retry.min_backoff
	// and retry.max_backoff; nil keeps the queue's (0 is a valid override).
	MinBackoffMs *int64 `json:"bn,omitempty"`
	MaxBackoffMs *int64 `json:"bx,omitempty"`
	CreatedMs    int64  `json:"c,omitempty"`
	RunAtMs      int64  `json:"d,omitempty"` // requested run-at time, 0 for now
	// StartK is a variable task's call count when it was created (0: a new
	// task): a task moved from elsewhere (htq migrate-legacy) keeps its
	// gaps where they were. Its state's k, once written, wins.
	StartK int64 `json:"vk,omitempty"`
}

// ErrBadSpec reports a stored spec that cannot be decoded.
var ErrBadSpec = errors.New("malformed task spec")

// Encode returns the stored form of a spec: the queue name, a newline, then
// compact JSON. The scripts find the queue name without decoding JSON.
func Encode(queue string, s *Spec) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode spec: %w", err)
	}
	var sb strings.Builder
	sb.Grow(len(queue) + 1 + len(b))
	sb.WriteString(queue)
	sb.WriteByte('\n')
	sb.Write(b)
	return sb.String(), nil
}

// Decode parses the stored form written by Encode.
func Decode(stored string) (queue string, s *Spec, err error) {
	i := strings.IndexByte(stored, '\n')
	if i < 0 {
		return "", nil, fmt.Errorf("%w: no queue name", ErrBadSpec)
	}
	s = new(Spec)
	if err := json.Unmarshal([]byte(stored[i+1:]), s); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrBadSpec, err)
	}
	return stored[:i], s, nil
}

// SetBody stores a raw body, as text when it is valid UTF-8.
func (s *Spec) SetBody(b []byte) {
	s.BodyKind = BodyRaw
	if utf8.Valid(b) {
		s.Body, s.BodyBinary = string(b), nil
		return
	}
	s.Body, s.BodyBinary = "", bytes.Clone(b)
}

// RawBody returns the raw body bytes. An empty BodyBinary counts as absent,
// as it does once the spec is stored (omitempty drops it).
func (s *Spec) RawBody() []byte {
	if len(s.BodyBinary) > 0 {
		return s.BodyBinary
	}
	return []byte(s.Body)
}

// Limits bound what a single task may carry.
type Limits struct {
	MaxURLBytes    int
	MaxHeaderBytes int
	MaxBodyBytes   int
}

// Validation errors name the field that is wrong.
var (
	ErrBadURL     error = invalid("invalid url")
	ErrBadMethod  error = invalid("invalid method")
	ErrBadHeader  error = invalid("invalid header")
	ErrTooLarge         = errors.New("too large") // 413, not a validation error
	ErrBadTimeout error = invalid("invalid timeout")
)

// NoBodyMethod reports whether a method never carries a body.
func NoBodyMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// Normalize validates a spec and fills in defaults: the method is upper-cased
// (GET by default). It returns an error naming the first invalid field.
func (s *Spec) Normalize(l Limits) error {
	if s.Method == "" {
		s.Method = http.MethodGet
	}
	s.Method = strings.ToUpper(s.Method)
	if !validToken(s.Method) || len(s.Method) > 32 {
		return fmt.Errorf("%w: %q", ErrBadMethod, truncate(s.Method, 40))
	}
	if err := ValidateURL(s.URL, l.MaxURLBytes); err != nil {
		return err
	}
	size := 0
	for _, h := range s.Header {
		if !validToken(h.Name) {
			return fmt.Errorf("%w: name %q", ErrBadHeader, truncate(h.Name, 40))
		}
		if !validHeaderValue(h.Value) {
			return fmt.Errorf("%w: value of %q has control characters", ErrBadHeader, h.Name)
		}
		size += len(h.Name) + len(h.Value) + 4
	}
	if l.MaxHeaderBytes > 0 && size > l.MaxHeaderBytes {
		return fmt.Errorf("headers: %w: %d bytes, limit %d", ErrTooLarge, size, l.MaxHeaderBytes)
	}
	body := len(s.Body) + len(s.BodyBinary)
	for _, f := range s.Form {
		body += len(f.Name) + len(f.Value)
	}
	if l.MaxBodyBytes > 0 && body > l.MaxBodyBytes {
		return fmt.Errorf("body: %w: %d bytes, limit %d", ErrTooLarge, body, l.MaxBodyBytes)
	}
	if s.TimeoutMs < 0 {
		return fmt.Errorf("%w: negative", ErrBadTimeout)
	}
	return s.validateBackoff()
}

// validateBackoff checks the task's own backoff bounds: not negative, not
// over the longest duration, and min_backoff not above max_backoff when
// both are set.
func (s *Spec) validateBackoff() error {
	for _, f := range []struct {
		name string
		ms   *int64
	}{{"min_backoff", s.MinBackoffMs}, {"max_backoff", s.MaxBackoffMs}} {
		if f.ms != nil && (*f.ms < 0 || *f.ms > maxDuration.Milliseconds()) {
			return fmt.Errorf("%s: %w: %d ms: want 0 to %v", f.name, ErrBadDuration, *f.ms, maxDuration)
		}
	}
	if s.MinBackoffMs != nil && s.MaxBackoffMs != nil && *s.MinBackoffMs > *s.MaxBackoffMs {
		return Invalidf("min_backoff: %v must not exceed max_backoff %v",
			MillisDuration(s.MinBackoffMs).Std(), MillisDuration(s.MaxBackoffMs).Std())
	}
	return nil
}

// ValidateURL accepts absolute http and https URLs with a host.
func ValidateURL(raw string, maxBytes int) error {
	if raw == "" {
		return fmt.Errorf("%w: empty", ErrBadURL)
	}
	if maxBytes > 0 && len(raw) > maxBytes {
		return fmt.Errorf("url: %w: %d bytes, limit %d", ErrTooLarge, len(raw), maxBytes)
	}
	if !utf8.ValidString(raw) || strings.ContainsAny(raw, " \t\r\n\x00") {
		return fmt.Errorf("%w: %q: contains spaces, control characters or invalid UTF-8", ErrBadURL, truncate(raw, 80))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrBadURL, truncate(raw, 80), errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %q: scheme must be http or https", ErrBadURL, truncate(raw, 80))
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q: no host", ErrBadURL, truncate(raw, 80))
	}
	return nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
