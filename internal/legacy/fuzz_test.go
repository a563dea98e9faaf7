package legacy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/htq/htq/internal/legacy"
)

const executeTimeLayout = "2006-01-02 15:04:05"

func FuzzParseExecuteTime(f *testing.F) {
	zones := []*time.Location{
		time.UTC,
		loadLocation(f, "Asia/Shanghai"),
		loadLocation(f, "America/New_York"),    // DST gaps and overlaps
		loadLocation(f, "Australia/Lord_Howe"), // 30-minute DST shift
		time.FixedZone("odd", -(9*3600 + 30*60)),
	}
	for _, s := range []string{
		"", "0", " 0 ", "2030-01-02 03:04:05", "2030/1/2 3:04:05", "2023-02-30 00:00:00",
		"2023-13-01 00:00:00", "2023-01-01 24:00:00", "2030-03-10 02:30:00", "2030-11-03 01:30:00",
		"0000-01-01 00:00:00", "9999-12-31 23:59:59", "2030-01-02T03:04:05", "2030-01-02 \t 3:4:5",
		"1893456000", "1893456000123", "2030-01-02T03:04:05+08:00", "2030-01-02T03:04:05.5Z", "2030-01-02", "tomorrow",
	} {
		for i := range zones {
			f.Add(s, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, s string, zone uint8) {
		loc := zones[int(zone)%len(zones)]
		got, ok, err := legacy.ParseExecuteTime(s, loc)
		if err != nil {
			if ok || !got.IsZero() {
				t.Fatalf("ParseExecuteTime(%q) = %v, %v with error %v", s, got, ok, err)
			}
			return
		}
		if !ok {
			if !got.IsZero() {
				t.Fatalf("ParseExecuteTime(%q) = %v but not ok", s, got)
			}
			if ts := strings.TrimSpace(s); ts != "" && ts != "0" {
				t.Fatalf("ParseExecuteTime(%q) means now; only \"\" and \"0\" should", s)
			}
			return
		}
		if got.Location() != loc {
			t.Fatalf("ParseExecuteTime(%q) in %v returned a time in %v", s, loc, got.Location())
		}
		text := got.Format(executeTimeLayout)
		again, ok2, err := legacy.ParseExecuteTime(text, loc)
		if err != nil || !ok2 {
			t.Fatalf("ParseExecuteTime(%q) = %v, whose text %q does not parse: %v", s, got, text, err)
		}
		if !again.Equal(got.Truncate(time.Second)) { // the layout has whole seconds
			t.Fatalf("ParseExecuteTime(%q) = %v; its text %q parses to %v", s, got, text, again)
		}
	})
}

func FuzzParseFields(f *testing.F) {
	for _, s := range []string{
		"", "null", "[]", "{}", `{"a":"1","b":2}`, `{"a":{"b":[1,2]}}`, `[1]`, `{"a":1}}`, `{}@`, `[]]`,
		`{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1,"a":2}`, ` { "x" : null } `, `"s"`, `{"a":1e999}`,
		strings.Repeat("[", 20000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := legacy.ParseFields("data", s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			if fields != nil {
				t.Fatalf("ParseFields(%q) returned fields with an error", s)
			}
			if !strings.Contains(err.Error(), "data") {
				t.Fatalf("error %q does not name the field", err)
			}
			// A JSON object or array (a PHP list) in valid UTF-8 must be accepted.
			if utf8.ValidString(trimmed) && json.Valid([]byte(trimmed)) && (isObject(trimmed) || isArray(trimmed)) {
				t.Fatalf("ParseFields(%q) refused valid JSON: %v", s, err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("ParseFields accepted invalid UTF-8 %q", s)
		}
		if trimmed != "" && trimmed != "null" {
			if !json.Valid([]byte(trimmed)) {
				t.Fatalf("ParseFields accepted %q, which is not valid JSON", s)
			}
			if !isObject(trimmed) && !isArray(trimmed) {
				t.Fatalf("ParseFields accepted %q, which is neither an object nor an array", s)
			}
		}
		for _, fl := range fields {
			if !utf8.ValidString(fl.Name) || !utf8.ValidString(fl.Value) {
				t.Fatalf("ParseFields(%q) produced invalid UTF-8: %q", s, fl)
			}
		}
		if isObject(trimmed) && len(fields) > strings.Count(s, ":") {
			t.Fatalf("ParseFields(%q) produced %d fields from %d colons", s, len(fields), strings.Count(s, ":"))
		}
	})
}

func isObject(s string) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal([]byte(s), &m) == nil && m != nil
}

func isArray(s string) bool {
	var a []json.RawMessage
	return json.Unmarshal([]byte(s), &a) == nil && a != nil
}
