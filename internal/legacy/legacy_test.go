package legacy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/task"
)

// testMinGap is the floor of variable queues' gaps in these tests
// (legacy.min_gap's default).
const testMinGap = time.Second

func loadLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load time zone %s: %v", name, err)
	}
	return loc
}

// wantInvalid checks that err is a legacy parse error naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one naming %s", field)
	}
	if !errors.Is(err, legacy.ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	// the field the error is about comes first, right after ErrInvalid's text
	if !strings.HasPrefix(err.Error(), legacy.ErrInvalid.Error()+": "+field+": ") {
		t.Fatalf("error %q is not about %s", err, field)
	}
}

func TestParseExecuteTime(t *testing.T) {
	t.Parallel()
	shanghai := loadLocation(t, "Asia/Shanghai")
	tests := []struct {
		in   string
		want time.Time // zero: "now"
		err  bool
	}{
		{in: "", want: time.Time{}},
		{in: "0", want: time.Time{}},
		{in: "  0  ", want: time.Time{}},
		{in: " \t", want: time.Time{}},
		{in: "2030-01-02 03:04:05", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "2030/01/02 03:04:05", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "2030/1/2 3:04:05", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "2030-1-2 3:4:5", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "2030-12-31 23:59:59", want: time.Date(2030, 12, 31, 23, 59, 59, 0, shanghai)},
		{in: "2024-02-29 00:00:00", want: time.Date(2024, 2, 29, 0, 0, 0, 0, shanghai)},
		{in: "2000-02-29 12:00:00", want: time.Date(2000, 2, 29, 12, 0, 0, 0, shanghai)},
		{in: "  2030-01-02 03:04:05  ", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "\n2030-01-02 03:04:05\r\n", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "2030-01-02T03:04:05", want: time.Date(2030, 1, 2, 3, 4, 5, 0, shanghai)},
		{in: "2020-01-01 00:00:00", want: time.Date(2020, 1, 1, 0, 0, 0, 0, shanghai)}, // the past is allowed

		// the forms PHP callers send besides the SDK's (issue 13)
		{in: "1893456000", want: time.Unix(1893456000, 0)},                                                     // time()+…, seconds
		{in: "1893456000123", want: time.UnixMilli(1893456000123)},                                             // milliseconds
		{in: "2030-01-02T03:04:05+08:00", want: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("", 8*3600))}, // date('c')
		{in: "2030-01-02T03:04:05-05:30", want: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("", -(5*3600+30*60)))},
		{in: "2030-01-02 03:04:05 +0800", want: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("", 8*3600))},
		{in: "2030-01-02T03:04:05Z", want: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		{in: "2030-01-02T03:04:05.250Z", want: time.Date(2030, 1, 2, 3, 4, 5, 250e6, time.UTC)},
		{in: "2030-01-02 03:04:05.123", want: time.Date(2030, 1, 2, 3, 4, 5, 123e6, shanghai)}, // ISO without a zone: local
		{in: "2030-01-02T03:04", want: time.Date(2030, 1, 2, 3, 4, 0, 0, shanghai)},
		{in: "2030-01-02", want: time.Date(2030, 1, 2, 0, 0, 0, 0, shanghai)},

		{in: "2023-02-29 00:00:00", err: true},
		{in: "2023-02-30 00:00:00", err: true},
		{in: "2023-04-31 00:00:00", err: true},
		{in: "1900-02-29 00:00:00", err: true},
		{in: "2023-13-01 00:00:00", err: true},
		{in: "2023-00-01 00:00:00", err: true},
		{in: "2023-01-00 00:00:00", err: true},
		{in: "2023-01-32 00:00:00", err: true},
		{in: "2023-01-01 24:00:00", err: true},
		{in: "2023-01-01 23:60:00", err: true},
		{in: "2023-01-01 23:59:60", err: true},
		{in: "2030-01-02T03:04:05+24:00", err: true},
		{in: "03:04:05", err: true},
		{in: "23-01-01 03:04:05", err: true},
		{in: "20230-01-01 03:04:05", err: true},
		{in: "2023-001-01 03:04:05", err: true},
		{in: "2023-01-01 003:04:05", err: true},
		{in: "2023.01.01 03:04:05", err: true},
		{in: "tomorrow", err: true},
		{in: "now", err: true},
		{in: "null", err: true},
		{in: "-1", err: true},
		{in: "18934560001234", err: true},      // 14 digits: neither seconds nor milliseconds
		{in: "２０３０-01-02 03:04:05", err: true}, // full-width digits
		{in: "2030-01-02 03:04:05\x00", err: true},
		{in: strings.Repeat("9", 10_000), err: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.in), func(t *testing.T) {
			t.Parallel()
			got, ok, err := legacy.ParseExecuteTime(tt.in, shanghai)
			if tt.err {
				wantInvalid(t, err, "execute_time")
				var terr *legacy.TimeError
				if !errors.As(err, &terr) {
					t.Fatalf("error %v is not a *legacy.TimeError (the API runs those at once)", err)
				}
				if ok {
					t.Fatal("ok is true with an error")
				}
				if len(err.Error()) > 200 {
					t.Fatalf("error is not clipped: %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseExecuteTime(%q): %v", tt.in, err)
			}
			if tt.want.IsZero() {
				if ok || !got.IsZero() {
					t.Fatalf("ParseExecuteTime(%q) = %v, %v; want now (zero, false)", tt.in, got, ok)
				}
				return
			}
			if !ok || !got.Equal(tt.want) {
				t.Fatalf("ParseExecuteTime(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
			}
			if got.Location() != shanghai {
				t.Fatalf("location = %v, want the zone passed in", got.Location())
			}
		})
	}
}

func TestParseExecuteTimeZone(t *testing.T) {
	t.Parallel()
	const in = "2030-01-02 03:04:05"
	shanghai, err1 := parseIn(t, in, loadLocation(t, "Asia/Shanghai"))
	utc, err2 := parseIn(t, in, time.UTC)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if d := utc.Sub(shanghai); d != 8*time.Hour {
		t.Fatalf("UTC minus Asia/Shanghai = %v, want 8h", d)
	}
	if want := time.Date(2030, 1, 1, 19, 4, 5, 0, time.UTC); !shanghai.Equal(want) {
		t.Fatalf("Asia/Shanghai %s = %v, want %v", in, shanghai.UTC(), want)
	}
	ny, err := parseIn(t, "2030-07-01 12:00:00", loadLocation(t, "America/New_York"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 7, 1, 16, 0, 0, 0, time.UTC); !ny.Equal(want) { // EDT, UTC-4
		t.Fatalf("America/New_York summer noon = %v, want %v", ny.UTC(), want)
	}
	fixed, err := parseIn(t, in, time.FixedZone("X", -90*60))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 1, 2, 4, 34, 5, 0, time.UTC); !fixed.Equal(want) {
		t.Fatalf("fixed -01:30 = %v, want %v", fixed.UTC(), want)
	}
}

func parseIn(t *testing.T, s string, loc *time.Location) (time.Time, error) {
	t.Helper()
	got, ok, err := legacy.ParseExecuteTime(s, loc)
	if err == nil && !ok {
		t.Fatalf("ParseExecuteTime(%q) = now, want a time", s)
	}
	return got, err
}

func TestParseFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []task.Field
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "null", want: nil},
		{in: " null ", want: nil},
		{in: "[]", want: nil},
		{in: "[ ]", want: nil},
		{in: " [\n] ", want: nil},
		{in: "{}", want: nil},
		{in: "{ }", want: nil},
		{in: `{"a":"1"}`, want: fl("a", "1")},
		{in: `{"z":"1","a":"2","m":"3"}`, want: fl("z", "1", "a", "2", "m", "3")},
		{in: `{"b":"x","a":"y","b":"z"}`, want: fl("b", "x", "a", "y", "b", "z")},
		{in: `{"n":1,"f":1.50,"e":1e3,"neg":-0}`, want: fl("n", "1", "f", "1.50", "e", "1e3", "neg", "-0")},
		{in: `{"big":123456789012345678901234567890}`, want: fl("big", "123456789012345678901234567890")},
		{in: `{"t":true,"f":false,"n":null}`, want: fl("t", "true", "f", "false", "n", "")},
		{in: `{"o":{"x":[1,2]},"a":[1,"2"],"e":[],"eo":{}}`, want: fl("o", `{"x":[1,2]}`, "a", `[1,"2"]`, "e", "[]", "eo", "{}")},
		{in: `{"s":"with \"quotes\" and \\ and \n and \u00e9"}`, want: fl("s", "with \"quotes\" and \\ and \n and é")},
		{in: `{"中文":"值","emoji":"🚀"}`, want: fl("中文", "值", "emoji", "🚀")},
		{in: `{"":"empty name","k":""}`, want: fl("", "empty name", "k", "")},
		{in: `{"Content-Type":"application/json","X-Token":"abc"}`, want: fl("Content-Type", "application/json", "X-Token", "abc")},
		{in: " \n {\"a\" : \"1\" ,\n \"b\":2 } \n", want: fl("a", "1", "b", "2")},
		{in: `{"u":"\ud83d\ude80"}`, want: fl("u", "🚀")},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.in), func(t *testing.T) {
			t.Parallel()
			got, err := legacy.ParseFields("header", tt.in)
			if err != nil {
				t.Fatalf("ParseFields(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseFields(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseFieldsLists: a PHP list in data becomes the fields 0, 1, … as
// the original sent it; in header, a list of "Name: value" strings (what
// PHP developers write for curl) becomes headers (issue 13; both were 1005
// before).
func TestParseFieldsLists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field, in string
		want      []task.Field
		err       bool
	}{
		{field: "data", in: `["x","y"]`, want: fl("0", "x", "1", "y")},
		{field: "data", in: `[1,true,null,{"a":1},[2]]`, want: fl("0", "1", "1", "true", "2", "", "3", `{"a":1}`, "4", "[2]")},
		{field: "header", in: `["X-Token: abc","Host:  example.test ","Accept:"]`, want: fl("X-Token", "abc", "Host", "example.test", "Accept", "")},
		{field: "header", in: `["X-Time: 12:30"]`, want: fl("X-Time", "12:30")},
		{field: "header", in: `["no colon"]`, err: true},
		{field: "header", in: `[": value"]`, err: true},
		{field: "header", in: `[1]`, err: true},
		{field: "header", in: `[{"a":"1"}]`, err: true},
		{field: "header", in: `[[]]`, err: true},
		{field: "data", in: `["a",]`, err: true},
		{field: "data", in: `["a"] x`, err: true},
	}
	for _, tt := range tests {
		got, err := legacy.ParseFields(tt.field, tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseFields(%s, %q) = %q, want an error", tt.field, tt.in, got)
				continue
			}
			wantInvalid(t, err, tt.field)
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFields(%s, %q) = %q, %v; want %q", tt.field, tt.in, got, err, tt.want)
		}
	}
}

func TestParseFieldsErrors(t *testing.T) {
	t.Parallel()
	tests := []string{
		`[`,
		`[]]`,
		`[] []`,
		`[],`,
		`[] x`,
		`{`,
		`{"a"}`,
		`{"a":}`,
		`{"a":1,}`,
		`{"a":1`,
		`{a:1}`,
		`{'a':1}`,
		`{"a":1}}`,
		`{"a":1}]`,
		`{"a":1},`,
		`{"a":1}:`,
		`{"a":1} {"b":2}`,
		`{"a":1} x`,
		`{"a":1}@`,
		`{}}`,
		`{} []`,
		`{}garbage`,
		`{"a":1}` + "\x00",
		`"string"`,
		`1`,
		`true`,
		`nul`,
		`NULL`,
		`{"a":"` + "\xff" + `"}`,
		`{"` + "\xc3" + `":"1"}`,
		"\xff",
		`{"a":"\x01"}`,
		`{"a":01}`,
		`{"a":NaN}`,
	}
	for _, field := range []string{"header", "data"} {
		for _, in := range tests {
			t.Run(fmt.Sprintf("%s/%.40q", field, in), func(t *testing.T) {
				t.Parallel()
				got, err := legacy.ParseFields(field, in)
				if err == nil {
					t.Fatalf("ParseFields(%q) = %q, want an error", in, got)
				}
				wantInvalid(t, err, field)
				if got != nil {
					t.Fatalf("fields %q returned with an error", got)
				}
			})
		}
	}
}

func TestParseSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "0", want: 0},
		{in: "2", want: 2 * time.Second},
		{in: " 5 ", want: 5 * time.Second},
		{in: "+5", want: 5 * time.Second},
		{in: "007", want: 7 * time.Second},
		{in: "315360000", want: 315360000 * time.Second}, // ten years
		{in: "", want: 0},                                // the original read "" as 0
		{in: "1.5", want: 1500 * time.Millisecond},
		{in: ".5", want: 500 * time.Millisecond},
		{in: "2.", want: 2 * time.Second},
		{in: "0.001", want: time.Millisecond},
		{in: "0.0001", want: time.Millisecond}, // rounded up to the timer's millisecond
		{in: "1e3", want: 1000 * time.Second},
		{in: "315360001", err: true},
		{in: "-1", err: true},
		{in: "2s", err: true},
		{in: "abc", err: true},
		{in: "0x10", err: true},
		{in: "NaN", err: true},
		{in: "Infinity", err: true},
		{in: "1,5", err: true},
		{in: "99999999999999999999", err: true},
	}
	for _, tt := range tests {
		got, err := legacy.ParseSeconds("stepping_time", tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseSeconds(%q) = %v, want an error", tt.in, got)
				continue
			}
			if !errors.Is(err, legacy.ErrInvalid) || !strings.Contains(err.Error(), "stepping_time") {
				t.Errorf("ParseSeconds(%q) = %v, want an error naming stepping_time", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSeconds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestQueueConfig(t *testing.T) {
	t.Parallel()
	base := task.DefaultQueueConfig()
	base.Concurrency = 3 // must survive
	tests := []struct {
		name      string
		typ       *string
		step, max *string
		wantKind  task.Kind
		wantStep  time.Duration
		wantMax   time.Duration
		wantType  *string // as echoed
		errField  string
	}{
		{name: "real_time", typ: ptr("real_time"), step: ptr("0"), max: ptr("0"), wantKind: task.KindRealtime, wantType: ptr("real_time")},
		{name: "variable", typ: ptr("variable"), step: ptr("2"), max: ptr("5"), wantKind: task.KindVariable, wantStep: 2 * time.Second, wantMax: 5 * time.Second, wantType: ptr("variable")},
		// the SDK's defaults: never back to back, one call per min_gap (issue 13)
		{name: "variable without times", typ: ptr("variable"), wantKind: task.KindVariable, wantStep: time.Second, wantMax: legacy.NoMaxGap, wantType: ptr("variable")},
		{name: "variable with zero times", typ: ptr("variable"), step: ptr("0"), max: ptr("0"), wantKind: task.KindVariable, wantStep: time.Second, wantMax: legacy.NoMaxGap, wantType: ptr("variable")},
		{name: "variable, zero stepping, a max", typ: ptr("variable"), step: ptr("0"), max: ptr("5"), wantKind: task.KindVariable, wantStep: time.Second, wantMax: 5 * time.Second, wantType: ptr("variable")},
		{name: "variable, fractions", typ: ptr("variable"), step: ptr("0.5"), max: ptr("2.5"), wantKind: task.KindVariable, wantStep: 500 * time.Millisecond, wantMax: 2500 * time.Millisecond, wantType: ptr("variable")},
		{name: "variable, max below the floor", typ: ptr("variable"), step: ptr("0.25"), max: ptr("0.5"), wantKind: task.KindVariable, wantStep: 250 * time.Millisecond, wantMax: time.Second, wantType: ptr("variable")},
		{name: "variable, empty times", typ: ptr("variable"), step: ptr(""), max: ptr(""), wantKind: task.KindVariable, wantStep: time.Second, wantMax: legacy.NoMaxGap, wantType: ptr("variable")},
		// 0 (the SDK's "unused") or no max_time_interval: no maximum gap
		{name: "variable with zero max", typ: ptr("variable"), step: ptr("2"), max: ptr("0"), wantKind: task.KindVariable, wantStep: 2 * time.Second, wantMax: legacy.NoMaxGap, wantType: ptr("variable")},
		{name: "variable without max", typ: ptr("variable"), step: ptr("3"), wantKind: task.KindVariable, wantStep: 3 * time.Second, wantMax: legacy.NoMaxGap, wantType: ptr("variable")},
		{name: "variable with the largest max", typ: ptr("variable"), step: ptr("2"), max: ptr("315360000"), wantKind: task.KindVariable, wantStep: 2 * time.Second, wantMax: legacy.NoMaxGap, wantType: ptr("variable")},
		{name: "variable with spaces", typ: ptr("variable"), step: ptr(" 3 "), max: ptr("10"), wantKind: task.KindVariable, wantStep: 3 * time.Second, wantMax: 10 * time.Second, wantType: ptr("variable")},
		{name: "timing is one-shot", typ: ptr("timing"), wantKind: task.KindRealtime, wantType: ptr("timing")},
		{name: "Variable any case is one-shot", typ: ptr("Variable"), wantKind: task.KindRealtime, wantType: ptr("Variable")},
		{name: "chinese type", typ: ptr("实时"), wantKind: task.KindRealtime, wantType: ptr("实时")},
		{name: "realtime spelling", typ: ptr("realtime"), wantKind: task.KindRealtime, wantType: ptr("realtime")},
		// listed as the original listed them (issue 13): "" as posted, a missing type not at all
		{name: "empty type", typ: ptr(""), wantKind: task.KindRealtime, wantType: ptr("")},
		{name: "missing type", typ: nil, step: ptr("0"), wantKind: task.KindRealtime, wantType: nil},
		{name: "times on a one-shot queue are kept", typ: ptr("real_time"), step: ptr("4"), max: ptr("8"), wantKind: task.KindRealtime, wantStep: 4 * time.Second, wantMax: 8 * time.Second, wantType: ptr("real_time")},

		{name: "bad stepping", typ: ptr("variable"), step: ptr("two"), max: ptr("5"), errField: "stepping_time"},
		{name: "negative stepping", typ: ptr("variable"), step: ptr("-2"), max: ptr("5"), errField: "stepping_time"},
		{name: "bad max", typ: ptr("variable"), step: ptr("2"), max: ptr("5s"), errField: "max_time_interval"},
		{name: "huge max", typ: ptr("variable"), step: ptr("2"), max: ptr("99999999999"), errField: "max_time_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := legacy.QueueConfig(base, tt.typ, tt.step, tt.max, testMinGap)
			if tt.errField != "" {
				wantInvalid(t, err, tt.errField)
				return
			}
			if err != nil {
				t.Fatalf("QueueConfig: %v", err)
			}
			if cfg.Type != tt.wantKind || cfg.SteppingTime.Std() != tt.wantStep || cfg.MaxTimeInterval.Std() != tt.wantMax {
				t.Fatalf("got type %q step %v max %v; want %q %v %v", cfg.Type, cfg.SteppingTime.Std(), cfg.MaxTimeInterval.Std(), tt.wantKind, tt.wantStep, tt.wantMax)
			}
			if cfg.Concurrency != 3 || cfg.Retry != base.Retry || cfg.Timeout != base.Timeout {
				t.Fatalf("base settings lost: %+v", cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("the config is not valid: %v", err)
			}
			if cfg.Legacy == nil {
				t.Fatal("Legacy attributes not kept")
			}
			attr := legacy.AttributeOf(&cfg)
			if !sameString(attr.Type, tt.wantType) {
				t.Fatalf("echoed type %s, want %s", show(attr.Type), show(tt.wantType))
			}
			if !sameString(attr.SteppingTime, tt.step) || !sameString(attr.MaxTimeInterval, tt.max) {
				t.Fatalf("echoed stepping_time %v max_time_interval %v, want as posted %v %v",
					show(attr.SteppingTime), show(attr.MaxTimeInterval), show(tt.step), show(tt.max))
			}
			if base.Legacy != nil {
				t.Fatal("QueueConfig changed its base")
			}
		})
	}
}

func TestAttributeOf(t *testing.T) {
	t.Parallel()
	variable := task.DefaultQueueConfig()
	variable.Type = task.KindVariable
	variable.SteppingTime = task.Duration(2 * time.Second)
	variable.MaxTimeInterval = task.Duration(5*time.Second + 900*time.Millisecond)
	subSecond := variable
	subSecond.SteppingTime = task.Duration(500 * time.Millisecond)
	subSecond.MaxTimeInterval = task.Duration(750 * time.Millisecond)
	realtime := task.DefaultQueueConfig()
	realtime.SteppingTime = task.Duration(7 * time.Second)
	posted := task.DefaultQueueConfig()
	posted.Legacy = &task.LegacyAttr{Type: ptr("timing"), SteppingTime: ptr("01")}
	tests := []struct {
		name string
		cfg  task.QueueConfig
		want string
	}{
		{name: "REST variable", cfg: variable, want: `{"type":"variable","stepping_time":"2","max_time_interval":"5.9"}`},
		{name: "REST variable, sub-second", cfg: subSecond, want: `{"type":"variable","stepping_time":"0.5","max_time_interval":"0.75"}`},
		{name: "REST realtime", cfg: realtime, want: `{"type":"real_time"}`},
		{name: "legacy as posted", cfg: posted, want: `{"type":"timing","stepping_time":"01"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(legacy.AttributeOf(&tt.cfg))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s: AttributeOf = %s, want %s", tt.name, b, tt.want)
		}
	}
}

func TestAllQueueShape(t *testing.T) {
	t.Parallel()
	// LEGACY_API.md's allQueue example: what the SDK posts for a real_time
	// queue comes back unchanged.
	cfg, err := legacy.QueueConfig(task.DefaultQueueConfig(), ptr("real_time"), ptr("0"), ptr("0"), testMinGap)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(legacy.AttributeOf(&cfg))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"real_time","stepping_time":"0","max_time_interval":"0"}`; string(b) != want {
		t.Fatalf("attribute = %s, want %s", b, want)
	}
}

func TestErrorCodesAndMessages(t *testing.T) {
	t.Parallel()
	// The strings legacy clients compare against, byte for byte.
	tests := []struct {
		code int
		msg  string
		want int
		text string
	}{
		{legacy.CodeOK, legacy.MsgAdded, 0, "添加成功"},
		{legacy.CodeOK, legacy.MsgDeleted, 0, "删除成功"},
		{legacy.CodeAuth, legacy.MsgAuth, 1000, "认证失败"},
		{legacy.CodeAddFailed, legacy.MsgAddFailed, 1001, "添加失败"},
		{legacy.CodeQueueExists, legacy.MsgQueueExists, 1002, "队列名已经存在"},
		{legacy.CodeNoQueue, legacy.MsgNoQueue, 1003, "队列不存在，请先创建"},
		{legacy.CodeDeleteFailed, legacy.MsgDeleteFailed, 1004, "删除失败"},
	}
	for _, tt := range tests {
		if tt.code != tt.want || tt.msg != tt.text {
			t.Errorf("code %d %q, want %d %q", tt.code, tt.msg, tt.want, tt.text)
		}
	}
	if legacy.DefaultQueue != "default_queue" || legacy.TypeRealtime != "real_time" || legacy.TypeVariable != "variable" {
		t.Error("legacy names changed")
	}
}

func ptr(s string) *string { return &s }

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func show(p *string) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", *p)
}

// fl builds fields from name, value pairs.
func fl(kv ...string) []task.Field {
	var out []task.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, task.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestVariableWithoutMaximum: max_time_interval 0, what the SDK sends when
// it is unused, means no maximum: the gap keeps growing by stepping_time.
func TestVariableWithoutMaximum(t *testing.T) {
	t.Parallel()
	cfg, err := legacy.QueueConfig(task.DefaultQueueConfig(), ptr(legacy.TypeVariable), ptr("2"), ptr("0"), testMinGap)
	if err != nil {
		t.Fatalf("QueueConfig(variable, 2, 0): %v", err)
	}
	var k int64
	var gaps []time.Duration
	for range 8 {
		var gap time.Duration
		gap, k = task.NextCall(k, task.ActionNone, cfg.SteppingTime.Std(), cfg.MaxTimeInterval.Std(), 0, false)
		gaps = append(gaps, gap)
	}
	want := []time.Duration{0, 2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second, 10 * time.Second, 12 * time.Second, 14 * time.Second}
	if !slices.Equal(gaps, want) {
		t.Fatalf("gaps %v, want %v", gaps, want)
	}
	// far along, the gap is still k × stepping_time, capped only at ten years
	if gap, _ := task.NextCall(1000, task.ActionNone, cfg.SteppingTime.Std(), cfg.MaxTimeInterval.Std(), 0, false); gap != 2000*time.Second {
		t.Fatalf("gap after 1000 calls %v, want 2000s", gap)
	}
	if gap, _ := task.NextCall(1<<40, task.ActionNone, cfg.SteppingTime.Std(), cfg.MaxTimeInterval.Std(), 0, false); gap != legacy.NoMaxGap {
		t.Fatalf("gap after 2^40 calls %v, want %v", gap, legacy.NoMaxGap)
	}
	if b, _ := json.Marshal(legacy.AttributeOf(&cfg)); string(b) != `{"type":"variable","stepping_time":"2","max_time_interval":"0"}` {
		t.Fatalf("allQueue attribute %s: want the 0 as posted", b)
	}
}

func TestFormatSeconds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{time.Nanosecond, "0.000000001"},
		{time.Millisecond, "0.001"},
		{100 * time.Millisecond, "0.1"},
		{300 * time.Millisecond, "0.3"},
		{500 * time.Millisecond, "0.5"},
		{time.Second, "1"},
		{1250 * time.Millisecond, "1.25"},
		{5*time.Second + 900*time.Millisecond, "5.9"},
		{2 * time.Minute, "120"},
		{legacy.NoMaxGap, "315360000"},
		{100*365*24*time.Hour + time.Nanosecond, "3153600000.000000001"},
		{-1500 * time.Millisecond, "-1.5"},
	} {
		if got := legacy.FormatSeconds(tt.d); got != tt.want {
			t.Errorf("FormatSeconds(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestEscapeURL: URLs the original accepted with spaces and the like are
// called percent-encoded, as node-fetch (and a browser) did; everything
// else is kept byte for byte (issue 13: these were refused before).
func TestEscapeURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://h/has space?q=a b", "http://h/has%20space?q=a%20b"},
		{"  http://h/x  ", "http://h/x"},
		{"http://h/a\tb\nc", "http://h/abc"},
		{"http://h/中文?名=值", "http://h/%E4%B8%AD%E6%96%87?%E5%90%8D=%E5%80%BC"},
		{`http://h/p"<>` + "`{}" + `?q="<>'` + "`{}#f\"<>`{}", `http://h/p%22%3C%3E%60%7B%7D?q=%22%3C%3E%27` + "`{}#f%22%3C%3E%60{}"},
		{"http://h/a?b?c#d?e#f", "http://h/a?b?c#d?e#f"},
		{"http://h/already%20escaped?x=%41", "http://h/already%20escaped?x=%41"},
		{"http://h/p|^[]~!$&'()*+,;=:@", "http://h/p|^[]~!$&'()*+,;=:@"},
		{"http://h?q=a b", "http://h?q=a%20b"},
		{"http://h", "http://h"},
		{"http://u:p@h:80/x\x7f", "http://u:p@h:80/x%7F"},
		{"https://example.com/ok?a=1&b=2", "https://example.com/ok?a=1&b=2"},
	}
	for _, tt := range tests {
		if got := legacy.EscapeURL(tt.in); got != tt.want {
			t.Errorf("EscapeURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := task.ValidateURL(legacy.EscapeURL(tt.in), 0); err != nil {
			t.Errorf("EscapeURL(%q) is not a valid task URL: %v", tt.in, err)
		}
	}
}

// TestExecuteTimeBeyondYear9999InUTC: execute_time is read in the
// configured zone and checked in UTC; west of UTC the last second of 9999
// is in year 10000, which could be stored but never shown.
func TestExecuteTimeBeyondYear9999InUTC(t *testing.T) {
	t.Parallel()
	west := time.FixedZone("UTC-8", -8*3600)
	if _, _, err := legacy.ParseExecuteTime("9999-12-31 23:59:59", west); !errors.Is(err, legacy.ErrInvalid) || !strings.Contains(err.Error(), "execute_time") {
		t.Fatalf("west of UTC: err = %v, want an invalid execute_time", err)
	}
	for _, loc := range []*time.Location{time.UTC, time.FixedZone("UTC+8", 8*3600)} {
		if _, ok, err := legacy.ParseExecuteTime("9999-12-31 23:59:59", loc); err != nil || !ok {
			t.Fatalf("%s: ok %v, err %v", loc, ok, err)
		}
	}
	if _, ok, err := legacy.ParseExecuteTime("9999-12-31 15:59:59", west); err != nil || !ok {
		t.Fatalf("last second of 9999 in UTC: ok %v, err %v", ok, err)
	}
}

// TestNewHandlerRefusesUnusableSettings: settings with no usable value are
// refused, not replaced by defaults of the protocol's own (legacy.min_gap
// and api.time_zone had one here besides config's).
func TestNewHandlerRefusesUnusableSettings(t *testing.T) {
	t.Parallel()
	good := legacy.Settings{MaxAttempts: 1, MinGap: time.Second, TimeZone: time.UTC}
	for _, tt := range []struct {
		field string
		edit  func(*legacy.Settings)
	}{
		{"MaxAttempts", func(s *legacy.Settings) { s.MaxAttempts = 0 }},
		{"MaxAttempts", func(s *legacy.Settings) { s.MaxAttempts = task.MaxAttemptsLimit + 1 }},
		{"MinGap", func(s *legacy.Settings) { s.MinGap = 0 }},
		{"TimeZone", func(s *legacy.Settings) { s.TimeZone = nil }},
	} {
		s := good
		tt.edit(&s)
		h, err := legacy.NewHandler(s, legacy.Shared{}, legacy.Deps{})
		if !errors.Is(err, legacy.ErrSettings) || !strings.Contains(err.Error(), tt.field+" ") || h != nil {
			t.Errorf("%s: NewHandler = %v, %v; want an ErrSettings naming it", tt.field, h, err)
		}
	}
	if _, err := legacy.NewHandler(good, legacy.Shared{}, legacy.Deps{}); err != nil {
		t.Fatalf("good settings: %v", err)
	}
}
