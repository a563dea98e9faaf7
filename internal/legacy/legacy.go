// Package legacy implements the parsing rules of the original HTQ wire
// protocol (docs/legacy-api.md): its error codes and messages, the
// execute_time format, the JSON-in-a-form-field header and data fields, and
// queue attributes posted as strings. It does no I/O.
package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/htq/htq/internal/task"
)

// Error codes, as legacy clients read them. 0 to 1004 are the original's;
// 1005 onwards report failures the original never reported (it crashed or
// silently did something else).
const (
	CodeOK           = 0
	CodeAuth         = 1000
	CodeAddFailed    = 1001
	CodeQueueExists  = 1002
	CodeNoQueue      = 1003
	CodeDeleteFailed = 1004
	CodeInvalid      = 1005
	CodeTooLarge     = 1006
	CodeUnavailable  = 1007
)

// Messages, exactly as the original sent them (UTF-8).
const (
	MsgAdded        = "添加成功"
	MsgDeleted      = "删除成功"
	MsgAuth         = "认证失败"
	MsgAddFailed    = "添加失败"
	MsgQueueExists  = "队列名已经存在"
	MsgNoQueue      = "队列不存在，请先创建"
	MsgDeleteFailed = "删除失败"
	MsgInvalid      = "参数错误"
	MsgTooLarge     = "请求体过大"
	MsgUnavailable  = "服务暂不可用"
)

// DefaultQueue is the queue of an addTask without queue_name.
const DefaultQueue = "default_queue"

// Legacy queue types as clients post them.
const (
	TypeRealtime = "real_time"
	TypeVariable = "variable"
)

// ErrInvalid wraps every parse error; its message names the field.
var ErrInvalid = errors.New(MsgInvalid)

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

var executeTimeRE = regexp.MustCompile(`^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T]+(\d{1,2}):(\d{1,2}):(\d{1,2})$`)

// ParseExecuteTime reads execute_time: "YYYY-MM-DD HH:MM:SS" (or with "/",
// one-digit parts allowed), a real calendar date in loc. "0" and "" mean
// now (ok is false). Anything else is an error naming the field.
func ParseExecuteTime(s string, loc *time.Location) (t time.Time, ok bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return time.Time{}, false, nil
	}
	m := executeTimeRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false, invalid("execute_time", "%q: want YYYY-MM-DD HH:MM:SS or 0", clip(s))
	}
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	if n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 || n[3] > 23 || n[4] > 59 || n[5] > 59 {
		return time.Time{}, false, invalid("execute_time", "%q: not a real date and time", clip(s))
	}
	t = time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, loc)
	if t.Day() != n[2] || int(t.Month()) != n[1] {
		return time.Time{}, false, invalid("execute_time", "%q: no such day", clip(s))
	}
	// In UTC: 9999-12-31 23:59:59 west of UTC is in year 10000, which
	// could be stored but never shown.
	if t.After(task.MaxDue) {
		return time.Time{}, false, invalid("execute_time", "%q: out of range: %v", clip(s), task.CheckDue(t))
	}
	return t, true, nil
}

// ParseFields reads the header or data field: JSON text whose object
// becomes ordered name/value pairs. An empty array, an empty object, "" and
// "null" mean none (the PHP SDK sends "[]"). String values are used as they
// are; numbers, booleans and nested values as their JSON text.
func ParseFields(field, s string) ([]task.Field, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return nil, nil
	}
	if !utf8.ValidString(s) {
		return nil, invalid(field, "not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, invalid(field, "not valid JSON: %v", err)
	}
	switch tok {
	case json.Delim('['):
		if t, err := dec.Token(); err != nil || t != json.Delim(']') {
			return nil, invalid(field, "want a JSON object (or [] for none), got a non-empty array")
		}
		if trailing(dec, s) {
			return nil, invalid(field, "unexpected data after the JSON value")
		}
		return nil, nil
	case json.Delim('{'):
	default:
		return nil, invalid(field, "want a JSON object (or [] for none)")
	}
	var out []task.Field
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, invalid(field, "not valid JSON: %v", err)
		}
		name, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid(field, "not valid JSON: %v", err)
		}
		out = append(out, task.Field{Name: name, Value: scalarText(raw)})
	}
	if _, err := dec.Token(); err != nil {
		return nil, invalid(field, "not valid JSON: %v", err)
	}
	if trailing(dec, s) {
		return nil, invalid(field, "unexpected data after the JSON value")
	}
	return out, nil
}

// trailing reports whether anything but whitespace follows the value dec
// has read from s. (Asking dec.Token for one more token does not tell: it
// answers a stray ']', '}', ',', ':' or invalid byte with an error, not a
// token, so "{}}" or "{}@" would pass.)
func trailing(dec *json.Decoder, s string) bool {
	return strings.TrimSpace(s[dec.InputOffset():]) != ""
}

func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

// MaxSeconds bounds stepping_time and max_time_interval (ten years).
const MaxSeconds = 10 * 365 * 24 * 3600

// NoMaxGap is the maximum gap of a variable queue added with
// max_time_interval 0 (or without it): the SDK sends 0 when the field is
// unused, so 0 means no maximum, and the gap grows by stepping_time with
// every call. It is the largest max_time_interval the protocol accepts.
const NoMaxGap = MaxSeconds * time.Second

// ParseSeconds reads stepping_time or max_time_interval: whole seconds,
// posted as a string ("0" when unused).
func ParseSeconds(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxSeconds {
		return 0, invalid(field, "%q: want whole seconds, 0 or more", clip(s))
	}
	return time.Duration(n) * time.Second, nil
}

// Limits of the addQueue fields stored as posted.
const (
	MaxTypeBytes    = 64
	MaxSecondsBytes = 32
)

// QueueConfig turns legacy addQueue fields into a queue configuration.
// typ is stored as posted; only "variable" makes a variable queue.
func QueueConfig(base task.QueueConfig, typ string, step, maxGap *string) (task.QueueConfig, error) {
	cfg := base
	// Stored as posted and listed by every allQueue: bounded (a 900 KB type
	// was once accepted).
	if len(typ) > MaxTypeBytes {
		return cfg, invalid("type", "%d bytes, limit %d", len(typ), MaxTypeBytes)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"stepping_time", step}, {"max_time_interval", maxGap}} {
		if f.v != nil && len(*f.v) > MaxSecondsBytes {
			return cfg, invalid(f.name, "%d bytes, limit %d", len(*f.v), MaxSecondsBytes)
		}
	}
	attr := &task.LegacyAttr{Type: typ, SteppingTime: step, MaxTimeInterval: maxGap}
	if attr.Type == "" {
		attr.Type = TypeRealtime
	}
	cfg.Legacy = attr
	cfg.Type = task.KindRealtime
	if typ == TypeVariable {
		cfg.Type = task.KindVariable
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *task.Duration
	}{{"stepping_time", step, &cfg.SteppingTime}, {"max_time_interval", maxGap, &cfg.MaxTimeInterval}} {
		if f.v == nil {
			continue
		}
		d, err := ParseSeconds(f.name, *f.v)
		if err != nil {
			return cfg, err
		}
		*f.dst = task.Duration(d)
	}
	if cfg.Type == task.KindVariable && cfg.MaxTimeInterval <= 0 {
		// 0 is what the SDK sends for "unused": no maximum gap. The original
		// accepted it; with stepping_time 0 as well every gap would be 0
		// and the task would call its target back to back, so that stays
		// refused.
		if cfg.SteppingTime <= 0 {
			return cfg, invalid("stepping_time", "a variable queue without a max_time_interval (0: no maximum) needs stepping_time above 0, else its tasks are called back to back")
		}
		cfg.MaxTimeInterval = task.Duration(NoMaxGap)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return cfg, nil
}

// Attribute is a queue as allQueue lists it.
type Attribute struct {
	Type            string  `json:"type"`
	SteppingTime    *string `json:"stepping_time,omitempty"`
	MaxTimeInterval *string `json:"max_time_interval,omitempty"`
}

// AttributeOf returns a queue's legacy attributes: as posted through the
// legacy API, or derived from a REST-created queue's configuration.
func AttributeOf(cfg *task.QueueConfig) Attribute {
	if cfg.Legacy != nil {
		return Attribute{Type: cfg.Legacy.Type, SteppingTime: cfg.Legacy.SteppingTime, MaxTimeInterval: cfg.Legacy.MaxTimeInterval}
	}
	if cfg.Type == task.KindVariable {
		step, mx := FormatSeconds(cfg.SteppingTime.Std()), FormatSeconds(cfg.MaxTimeInterval.Std())
		return Attribute{Type: TypeVariable, SteppingTime: &step, MaxTimeInterval: &mx}
	}
	return Attribute{Type: TypeRealtime}
}

// FormatSeconds writes d as allQueue lists a REST-created queue's times: in
// seconds, whole ("2") when d is, else as an exact decimal fraction ("0.5",
// "1.25"), never in exponent form. A legacy client that reads the field as a
// number gets the real value (PHP: is_numeric is true, (float) is exact),
// and one that casts it to an integer gets what it got before (intval("0.5")
// is 0). Truncating to whole seconds would show a 500 ms interval as "0",
// which means "unused" in this protocol.
func FormatSeconds(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	whole, frac := int64(d/time.Second), int64(d%time.Second)
	s := strconv.FormatInt(whole, 10)
	if frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	i := 64
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
