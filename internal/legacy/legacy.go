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
	"math"
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

// TimeError reports an execute_time that is none of the accepted forms.
// The original ran such a task at once, and PHP code written against it
// rarely checks error_code, so by default the API does the same (with a
// warning and a counter); only a strict setting refuses it. It wraps
// ErrInvalid, and its message names the field.
type TimeError struct{ err error }

func (e *TimeError) Error() string { return e.err.Error() }

// Unwrap returns the ErrInvalid-wrapping error.
func (e *TimeError) Unwrap() error { return e.err }

func badTime(s, rule string) error {
	return &TimeError{invalid("execute_time", "%q: %s", clip(s), rule)}
}

// executeTimeRE matches the date and time forms: the legacy
// "YYYY-MM-DD HH:MM:SS" ("/" as date separator, one-digit parts), ISO 8601
// with "T", without seconds, with a fraction, a date alone, and with "Z" or
// a numeric offset (date('c'), RFC 3339).
var executeTimeRE = regexp.MustCompile(`^(\d{4})[-/](\d{1,2})[-/](\d{1,2})` +
	`(?:(?:[ \t]+|[Tt])(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,9}))?)?` +
	`[ \t]*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$`)

// unixRE matches a Unix timestamp: up to 11 digits are seconds (PHP's
// time()), 12 or 13 are milliseconds (JavaScript's Date.now()).
var unixRE = regexp.MustCompile(`^\d{1,13}$`)

// ParseExecuteTime reads execute_time. "0" and "" mean now (ok is false).
// Accepted, each with its plain meaning:
//   - "YYYY-MM-DD HH:MM:SS" ("/" as date separator, one-digit parts), ISO
//     8601 with "T", without seconds, with a fraction of a second, or a date
//     alone (midnight): a real calendar date in loc;
//   - the same with "Z" or an offset ("+08:00", "+0800", "+08"): that
//     instant (PHP's date('c'), RFC 3339);
//   - a Unix timestamp: up to 11 digits in seconds (time()+3600), 12 or 13
//     in milliseconds.
//
// The time returned is in loc. Anything else is a *TimeError naming the
// field.
func ParseExecuteTime(s string, loc *time.Location) (t time.Time, ok bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return time.Time{}, false, nil
	}
	if unixRE.MatchString(s) {
		n, _ := strconv.ParseInt(s, 10, 64)
		if len(s) <= 11 {
			return time.Unix(n, 0).In(loc), true, nil
		}
		return time.UnixMilli(n).In(loc), true, nil
	}
	m := executeTimeRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false, badTime(s, "want YYYY-MM-DD HH:MM:SS, an ISO 8601 time, a Unix timestamp or 0")
	}
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1]) // absent parts are 0
	}
	if n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 || n[3] > 23 || n[4] > 59 || n[5] > 59 {
		return time.Time{}, false, badTime(s, "not a real date and time")
	}
	nsec := 0
	if frac := m[7]; frac != "" {
		nsec, _ = strconv.Atoi((frac + "00000000")[:9])
	}
	zone := loc
	if z := m[8]; z != "" {
		off, err := zoneOffset(z)
		if err != nil {
			return time.Time{}, false, badTime(s, err.Error())
		}
		zone = time.FixedZone("", off)
	}
	t = time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], nsec, zone)
	if t.Day() != n[2] || int(t.Month()) != n[1] {
		return time.Time{}, false, badTime(s, "no such day")
	}
	// In UTC: 9999-12-31 23:59:59 west of UTC is in year 10000, which
	// could be stored but never shown. Refused even where an execute_time
	// not understood would run at once: it was understood, and running a
	// task meant for the far future now would be worse than refusing it.
	if t.After(task.MaxDue) {
		return time.Time{}, false, invalid("execute_time", "%q: out of range: %v", clip(s), task.CheckDue(t))
	}
	// Year 0 with an offset east of the zone is before year 0 there, which
	// has no YYYY-MM-DD text; so long past, it only means "run now" anyway.
	if floor := time.Date(0, 1, 1, 0, 0, 0, 0, loc); t.Before(floor) {
		return floor, true, nil
	}
	return t.In(loc), true, nil
}

// zoneOffset reads "Z", "+08:00", "+0800" or "+08" as seconds east of UTC.
func zoneOffset(z string) (int, error) {
	if z == "Z" || z == "z" {
		return 0, nil
	}
	digits := strings.ReplaceAll(z[1:], ":", "")
	h, _ := strconv.Atoi(digits[:2])
	mins := 0
	if len(digits) == 4 {
		mins, _ = strconv.Atoi(digits[2:])
	}
	if h > 23 || mins > 59 {
		return 0, errors.New("no such time zone offset")
	}
	off := h*3600 + mins*60
	if z[0] == '-' {
		off = -off
	}
	return off, nil
}

// ParseFields reads the header or data field: JSON text whose object
// becomes ordered name/value pairs, or a JSON array (a PHP list, see
// parseList). An empty array, an empty object, "" and "null" mean none (the
// PHP SDK sends "[]"). String values are used as they
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
		return parseList(field, dec, s)
	case json.Delim('{'):
	default:
		return nil, invalid(field, "want a JSON object or array (or [] for none)")
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

// parseList reads the elements of a JSON array (a PHP list), dec having
// read its '['. For data, element i becomes the field "i", as the original
// sent ["x","y"] as 0=x, 1=y. For header, each element is a
// "Name: value" string, as PHP developers write headers for curl: the name
// is what precedes the first colon, the value what follows it, trimmed.
func parseList(field string, dec *json.Decoder, s string) ([]task.Field, error) {
	var out []task.Field
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid(field, "not valid JSON: %v", err)
		}
		if field != "header" {
			out = append(out, task.Field{Name: strconv.Itoa(i), Value: scalarText(raw)})
			continue
		}
		var line string
		if err := json.Unmarshal(raw, &line); err != nil {
			return nil, invalid(field, "element %d: want a \"Name: value\" string, got %s", i, clip(string(raw)))
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, invalid(field, "element %d: %q: want \"Name: value\"", i, clip(line))
		}
		out = append(out, task.Field{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
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

// secondsRE is a non-negative decimal number of seconds, as JavaScript's
// Number() reads it (the original multiplied the posted string): "2",
// "+2", "0.5", ".5", "2.", "1e3".
var secondsRE = regexp.MustCompile(`^\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// ParseSeconds reads stepping_time or max_time_interval: seconds, posted as
// a string ("0" when unused), fractions allowed and kept to the
// millisecond (the original's timer resolution), rounded up; "" is 0, as
// the original read it. Negative numbers, words and units are refused.
func ParseSeconds(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if !secondsRE.MatchString(s) {
		return 0, invalid(field, "%q: want seconds, 0 or more (fractions allowed)", clip(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f > MaxSeconds {
		return 0, invalid(field, "%q: want at most %d seconds (ten years)", clip(s), MaxSeconds)
	}
	ms := math.Ceil(f*1000 - 1e-6) // 0.001 is 1 ms despite binary floating point
	return time.Duration(max(ms, 0)) * time.Millisecond, nil
}

// Limits of the addQueue fields stored as posted.
const (
	MaxTypeBytes    = 64
	MaxSecondsBytes = 32
)

// QueueConfig turns legacy addQueue fields into a queue configuration.
// typ is kept as posted (nil: the field was missing) and only "variable"
// makes a variable queue; anything else is one-shot, as in the original.
//
// A variable queue never calls its target back to back: the original
// called min(k × stepping_time, max_time_interval) seconds apart, which is
// 0 every time with the SDK's defaults (0, 0). Here max_time_interval 0
// means no maximum; a stepping_time of 0 becomes minGap, and a maximum
// below minGap becomes minGap. So (0, 0) calls every minGap after the
// second call; (2, 5) is unchanged (0, 2, 4, 5, 5, … s); (0.5, 0.75) with
// a 1 s floor goes 0, 0.5, 1, 1, … s.
func QueueConfig(base task.QueueConfig, typ, step, maxGap *string, minGap time.Duration) (task.QueueConfig, error) {
	cfg := base
	// Stored as posted and listed by every allQueue: bounded (a 900 KB type
	// was once accepted).
	if typ != nil && len(*typ) > MaxTypeBytes {
		return cfg, invalid("type", "%d bytes, limit %d", len(*typ), MaxTypeBytes)
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
	cfg.Legacy = attr
	cfg.Type = task.KindRealtime
	if typ != nil && *typ == TypeVariable {
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
	if cfg.Type == task.KindVariable {
		minGap = max(minGap, time.Millisecond)
		if cfg.SteppingTime <= 0 {
			cfg.SteppingTime = task.Duration(minGap)
		}
		switch {
		case cfg.MaxTimeInterval <= 0:
			cfg.MaxTimeInterval = task.Duration(NoMaxGap) // 0 is the SDK's "unused"
		case cfg.MaxTimeInterval.Std() < minGap:
			cfg.MaxTimeInterval = task.Duration(minGap)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return cfg, nil
}

// Attribute is a queue as allQueue lists it. Type is nil when addQueue
// had no type field: the original stored the attributes as posted, and
// listed such a queue without "type".
type Attribute struct {
	Type            *string `json:"type,omitempty"`
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
		typ, step, mx := TypeVariable, FormatSeconds(cfg.SteppingTime.Std()), FormatSeconds(cfg.MaxTimeInterval.Std())
		return Attribute{Type: &typ, SteppingTime: &step, MaxTimeInterval: &mx}
	}
	typ := TypeRealtime
	return Attribute{Type: &typ}
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

// EscapeURL percent-encodes what a browser (and the original, through
// node-fetch's WHATWG URL parser) encodes before calling a URL: leading and
// trailing spaces and control characters are dropped, tabs and newlines
// inside removed, and in the path, query and fragment every space, control
// character, byte of a non-ASCII character and character of the WHATWG
// percent-encode set for that part (path: " < > ` { }; query: " < > ';
// fragment: " < > `) becomes %XX, so "/has space?q=a b" is called as
// "/has%20space?q=a%20b". Existing escapes ("%20") and every other
// character are left as they are; the scheme and host are not touched (an
// invalid host is still refused by validation). A URL that needs no
// escaping comes back unchanged.
func EscapeURL(raw string) string {
	s := strings.TrimFunc(raw, func(r rune) bool { return r <= ' ' })
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	start := 0 // the path starts after "scheme://authority"
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
		if j := strings.IndexAny(s[start:], "/?#"); j >= 0 {
			start += j
		} else {
			start = len(s)
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:start])
	set := `"<>` + "`{}" // path
	for i := start; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '?' && set != `"<>'` && set != `"<>`+"`":
			set = `"<>'` // the query starts (a "?" inside it stays)
		case c == '#' && set != `"<>`+"`":
			set = `"<>` + "`" // the fragment starts
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte(set, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
