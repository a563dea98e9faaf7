package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/task"
)

// noRepeatParam is the URL parameter the original appended to every task.
const noRepeatParam = "htq_no_repeat="

// ErrMalformed reports a source member or queue that cannot be migrated;
// such ones are reported and skipped, never dropped silently.
var ErrMalformed = errors.New("malformed")

// QueueSpec is the REST configuration of a migrated queue.
type QueueSpec struct {
	Type            string      `json:"type"`
	SteppingTime    float64     `json:"stepping_time,omitempty"`
	MaxTimeInterval float64     `json:"max_time_interval,omitempty"`
	Retry           *QueueRetry `json:"retry,omitempty"`
	kind            task.Kind   // realtime or variable
}

// QueueRetry is the part of a queue's retry policy the migration sets.
type QueueRetry struct {
	MaxAttempts int `json:"max_attempts"`
}

type sourceAttr struct {
	Type            *string `json:"type"`
	SteppingTime    any     `json:"stepping_time"`
	MaxTimeInterval any     `json:"max_time_interval"`
}

// ConvertQueue turns the original's attribute JSON into the REST queue
// configuration the legacy API would have made: the same kinds, times and
// floor gap (legacy.QueueConfig), and maxAttempts attempts per task on
// one-shot queues.
func ConvertQueue(name, attrJSON string, minGap time.Duration, maxAttempts int) (QueueSpec, error) {
	if err := task.ValidateQueueName(name); err != nil {
		return QueueSpec{}, fmt.Errorf("%w: queue %q: %w", ErrMalformed, name, err)
	}
	var a sourceAttr
	if err := json.Unmarshal([]byte(attrJSON), &a); err != nil {
		return QueueSpec{}, fmt.Errorf("%w: queue %q: attribute %q: %w", ErrMalformed, name, clip(attrJSON), err)
	}
	step, err := secondsText(a.SteppingTime)
	if err != nil {
		return QueueSpec{}, fmt.Errorf("%w: queue %q: stepping_time: %w", ErrMalformed, name, err)
	}
	maxGap, err := secondsText(a.MaxTimeInterval)
	if err != nil {
		return QueueSpec{}, fmt.Errorf("%w: queue %q: max_time_interval: %w", ErrMalformed, name, err)
	}
	cfg, err := legacy.QueueConfig(task.DefaultQueueConfig(), a.Type, step, maxGap, minGap)
	if err != nil {
		return QueueSpec{}, fmt.Errorf("%w: queue %q: %w", ErrMalformed, name, err)
	}
	qs := QueueSpec{Type: string(cfg.Type), kind: cfg.Type}
	if cfg.Type == task.KindVariable {
		qs.SteppingTime, qs.MaxTimeInterval = cfg.SteppingTime.Std().Seconds(), cfg.MaxTimeInterval.Std().Seconds()
	}
	// one-shot queues call once, as the original did; a variable queue
	// created through REST keeps the server's retries (only a legacy-made
	// variable queue repeats through failures, see docs/migrating.md)
	if maxAttempts > 0 && cfg.Type == task.KindRealtime {
		qs.Retry = &QueueRetry{MaxAttempts: maxAttempts}
	}
	return qs, nil
}

// secondsText reads an attribute time as posted: a string, or a number in
// a hand-edited store; nil when absent.
func secondsText(v any) (*string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return &x, nil
	case float64:
		s := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%f", x), "0"), ".")
		return &s, nil
	}
	return nil, fmt.Errorf("want a string or a number, got %v", v)
}

// TaskRequest is one task of a REST batch.
type TaskRequest struct {
	URL          string            `json:"url"`
	Method       string            `json:"method,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Form         map[string]string `json:"form,omitempty"`
	FormEncoding string            `json:"form_encoding,omitempty"`
	RunAt        string            `json:"run_at,omitempty"`
	// K is a variable task's calls since its last reset (the original's
	// _times hash), so its gaps continue where they were.
	K              int64  `json:"k,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
}

// sourceTask is a member as api.js wrote it.
type sourceTask struct {
	URL    *string         `json:"url"`
	Header json.RawMessage `json:"header"`
	Method any             `json:"method"`
	Data   json.RawMessage `json:"data"`
}

// Converted is a member turned into a REST task.
type Converted struct {
	Task    TaskRequest
	DueNow  bool
	RawURL  string // the member's url as stored (the _times field)
	Member  string
	DueTime time.Time
}

// ConvertMember turns one sorted-set member of queue (prefix: the source
// prefix) into a REST task. The url loses its htq_no_repeat parameter
// exactly as the original cut it: url.substring(0, url.indexOf(
// "htq_no_repeat=") - 1). Due times at or before now run at once.
func ConvertMember(prefix, queue string, m SourceMember, now time.Time) (Converted, error) {
	var st sourceTask
	if err := json.Unmarshal([]byte(m.Member), &st); err != nil {
		return Converted{}, fmt.Errorf("%w: not JSON: %w", ErrMalformed, err)
	}
	if st.URL == nil {
		return Converted{}, fmt.Errorf("%w: no url", ErrMalformed)
	}
	raw := *st.URL
	i := strings.Index(raw, noRepeatParam)
	if i < 1 {
		// the original would have called "" (substring(0, -2))
		return Converted{}, fmt.Errorf("%w: url %q has no htq_no_repeat parameter", ErrMalformed, clip(raw))
	}
	u := legacy.EscapeURL(raw[:i-1])
	if err := task.ValidateURL(u, 0); err != nil {
		return Converted{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	method := "GET"
	switch v := st.Method.(type) {
	case nil:
	case string:
		if v != "" {
			method = strings.ToUpper(v)
		}
	default:
		return Converted{}, fmt.Errorf("%w: method %v is not a string", ErrMalformed, v)
	}
	headers, err := fieldsOf("header", st.Header)
	if err != nil {
		return Converted{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	form, err := fieldsOf("data", st.Data)
	if err != nil {
		return Converted{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	tr := TaskRequest{URL: u, Method: method, Headers: toMap(headers), IdempotencyKey: IdempotencyKey(prefix, queue, m.Member)}
	if len(form) > 0 && !task.NoBodyMethod(method) {
		tr.Form, tr.FormEncoding = toMap(form), "multipart" // as the original sent it
	}
	due := time.UnixMilli(m.DueMs)
	c := Converted{Task: tr, RawURL: raw, Member: m.Member, DueTime: due, DueNow: !due.After(now)}
	if !c.DueNow {
		c.Task.RunAt = due.UTC().Format(time.RFC3339Nano)
	}
	return c, nil
}

func fieldsOf(field string, raw json.RawMessage) ([]task.Field, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	return legacy.ParseFields(field, string(raw))
}

func toMap(fs []task.Field) map[string]string {
	if len(fs) == 0 {
		return nil
	}
	m := make(map[string]string, len(fs))
	for _, f := range fs {
		m[f.Name] = f.Value
	}
	return m
}

// IdempotencyKey derives a task's idempotency key from its source member,
// so a second run (within HTQ's queues.idempotency_window) creates nothing
// twice. A variable task that the original re-added keeps its member, and
// so its key.
func IdempotencyKey(prefix, queue, member string) string {
	h := sha256.New()
	for _, s := range []string{prefix, queue, member} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return "htq-migrate-legacy:" + hex.EncodeToString(h.Sum(nil))
}

func sortQueues(qs []SourceQueue) {
	slices.SortFunc(qs, func(a, b SourceQueue) int { return strings.Compare(a.Name, b.Name) })
}

func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return strings.ToValidUTF8(s[:80], "") + "…"
}
