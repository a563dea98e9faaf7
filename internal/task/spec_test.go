package task_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/htq/htq/internal/task"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	binary := &task.Spec{Method: "POST", URL: "http://example.com/bin"}
	binary.SetBody([]byte{0xff, 0x00, 0xfe, '\n', 0x80, 'a'})
	tests := []struct {
		name  string
		queue string
		spec  *task.Spec
	}{
		{name: "minimal", queue: "q", spec: &task.Spec{URL: "http://example.com/"}},
		{name: "everything", queue: "orders", spec: &task.Spec{
			Method: "PUT", URL: "https://example.com/a?b=c&d=%20e#frag",
			Header:   []task.Field{{"X-A", "1"}, {"X-A", "2"}, {"Content-Type", "text/plain; charset=utf-8"}},
			BodyKind: task.BodyRaw, Body: "hello\nworld\x00\"quoted\" ✓",
			TimeoutMs: 1500, MaxAttempts: 3, MinBackoffMs: i64(0), MaxBackoffMs: i64(90_000),
			CreatedMs: 1_700_000_000_000, RunAtMs: 1_800_000_000_000,
		}},
		{name: "form", queue: "forms", spec: &task.Spec{
			Method: "POST", URL: "http://example.com/form", BodyKind: task.BodyMultipart,
			Form: []task.Field{{"b", "2"}, {"a", "1"}, {"a", ""}, {"", "empty name"}, {"名字", "值"}},
		}},
		{name: "binary body", queue: "bin", spec: binary},
		{name: "unicode queue", queue: "队列-テスト-🚀", spec: &task.Spec{URL: "http://例子.测试/路径"}},
		{name: "queue with spaces and json", queue: `q {"u":"x"} "`, spec: &task.Spec{URL: "http://x/"}},
		{name: "empty queue name", queue: "", spec: &task.Spec{URL: "http://x/"}},
		{name: "long body", queue: "q", spec: &task.Spec{URL: "http://x/", BodyKind: task.BodyRaw, Body: strings.Repeat("ab", 100_000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stored, err := task.Encode(tt.queue, tt.spec)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !strings.HasPrefix(stored, tt.queue+"\n") {
				t.Fatalf("stored form does not start with the queue name and a newline: %.60q", stored)
			}
			q, got, err := task.Decode(stored)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if q != tt.queue {
				t.Fatalf("queue = %q, want %q", q, tt.queue)
			}
			if !reflect.DeepEqual(got, tt.spec) {
				t.Fatalf("round trip changed the spec:\n got  %+v\n want %+v", got, tt.spec)
			}
			if !bytes.Equal(got.RawBody(), tt.spec.RawBody()) {
				t.Fatalf("RawBody = %q, want %q", got.RawBody(), tt.spec.RawBody())
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"no newline",
		"q\n",
		"q\nnot json",
		"q\n{",
		`q` + "\n" + `{"u":1}`,
		`q` + "\n" + `{"h":[["a"],"b"]}`,
		`q` + "\n" + `{"x":"not base64!"}`,
		`q` + "\n" + `{"o":"1"}`,
		`q` + "\n" + `{"o":1.5}`,
		`q` + "\n" + `{"u":"x"} trailing`,
	} {
		if q, s, err := task.Decode(in); !errors.Is(err, task.ErrBadSpec) {
			t.Errorf("Decode(%q) = %q, %+v, %v; want ErrBadSpec", in, q, s, err)
		}
	}
}

func TestDecodeSplitsAtFirstNewline(t *testing.T) {
	t.Parallel()
	q, s, err := task.Decode("q\n" + `{"u":"http://x/","b":"line1\nline2"}`)
	if err != nil {
		t.Fatal(err)
	}
	if q != "q" || s.URL != "http://x/" || s.Body != "line1\nline2" {
		t.Fatalf("Decode = %q, %+v", q, s)
	}
}

func TestFieldJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal([]task.Field{{"a", "1"}, {"名", "\"v\""}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `[["a","1"],["名","\"v\""]]`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var f task.Field
	if err := json.Unmarshal([]byte(`{"a":1}`), &f); err == nil {
		t.Fatalf("Unmarshal of an object = %+v, want an error", f)
	}
	if err := json.Unmarshal([]byte(`["n"]`), &f); err != nil || f != (task.Field{Name: "n"}) {
		t.Fatalf("Unmarshal of a one-element array = %+v, %v", f, err)
	}
}

func TestSetBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     []byte
		binary bool
	}{
		{name: "empty", in: []byte{}},
		{name: "nil", in: nil},
		{name: "text", in: []byte("héllo\x00")},
		{name: "invalid utf8", in: []byte{'a', 0xff}, binary: true},
		{name: "truncated rune", in: []byte("é")[:1], binary: true},
		{name: "all bytes", in: allBytes(), binary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &task.Spec{Body: "stale", BodyBinary: []byte("stale")}
			in := bytes.Clone(tt.in)
			s.SetBody(in)
			if s.BodyKind != task.BodyRaw {
				t.Fatalf("BodyKind = %q", s.BodyKind)
			}
			if (s.BodyBinary != nil) != tt.binary {
				t.Fatalf("BodyBinary = %q, want binary=%v", s.BodyBinary, tt.binary)
			}
			if tt.binary && s.Body != "" {
				t.Fatalf("Body = %q, want empty for a binary body", s.Body)
			}
			if !bytes.Equal(s.RawBody(), tt.in) {
				t.Fatalf("RawBody = %q, want %q", s.RawBody(), tt.in)
			}
			if len(in) > 0 {
				in[0] ^= 0xff // the spec must not alias the caller's slice
				if !bytes.Equal(s.RawBody(), tt.in) {
					t.Fatal("SetBody kept a reference to the caller's slice")
				}
			}
		})
	}
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		max  int
		want error // nil: valid
	}{
		{url: "http://example.com"},
		{url: "https://example.com/path?q=1&r=%20#f"},
		{url: "HTTP://EXAMPLE.COM/"},
		{url: "http://127.0.0.1:8080/x"},
		{url: "http://[::1]:8080/x"},
		{url: "http://user:pass@example.com/"},
		{url: "http://例子.测试/路径?名=值"},
		{url: "http://localhost"},
		{url: "http://x/" + strings.Repeat("a", 91), max: 100},

		{url: "", want: task.ErrBadURL},
		{url: "example.com/path", want: task.ErrBadURL},
		{url: "/relative", want: task.ErrBadURL},
		{url: "ftp://example.com/", want: task.ErrBadURL},
		{url: "file:///etc/passwd", want: task.ErrBadURL},
		{url: "javascript:alert(1)", want: task.ErrBadURL},
		{url: "mailto:a@b.c", want: task.ErrBadURL},
		{url: "http:/example.com", want: task.ErrBadURL},
		{url: "http://", want: task.ErrBadURL},
		{url: "http:///path", want: task.ErrBadURL},
		{url: "http://:8080/", want: task.ErrBadURL},
		{url: "http://host:port/", want: task.ErrBadURL},
		{url: "http://[::1/", want: task.ErrBadURL},
		{url: "http://exa mple.com/", want: task.ErrBadURL},
		{url: "http://example.com/a b", want: task.ErrBadURL},
		{url: "http://example.com/\t", want: task.ErrBadURL},
		{url: "http://example.com/\r\nX-Injected: 1", want: task.ErrBadURL},
		{url: "http://example.com/\x00", want: task.ErrBadURL},
		{url: "http://example.com/\x01", want: task.ErrBadURL},
		{url: "http://example.com/\x7f", want: task.ErrBadURL},
		{url: "http://example.com/\xff", want: task.ErrBadURL},
		{url: " http://example.com/", want: task.ErrBadURL},
		{url: "http://example.com/%zz", want: task.ErrBadURL},
		{url: "http://x/" + strings.Repeat("a", 92), max: 100, want: task.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.50q", tt.url), func(t *testing.T) {
			t.Parallel()
			err := task.ValidateURL(tt.url, tt.max)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateURL(%q): %v", tt.url, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ValidateURL(%q) = %v, want %v", tt.url, err, tt.want)
			}
			if errors.Is(tt.want, task.ErrTooLarge) && !strings.Contains(err.Error(), "url") {
				t.Fatalf("size error %q does not name the url", err)
			}
		})
	}
}

func TestValidateURLErrorIsBounded(t *testing.T) {
	t.Parallel()
	err := task.ValidateURL("ftp://"+strings.Repeat("x", 100_000), 0)
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error for a 100 kB URL: %d bytes", len(fmt.Sprint(err)))
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	limits := task.Limits{MaxURLBytes: 100, MaxHeaderBytes: 50, MaxBodyBytes: 20}
	tests := []struct {
		name       string
		spec       task.Spec
		limits     task.Limits
		want       error // nil: valid
		wantField  string
		wantMethod string
	}{
		{name: "defaults to GET", spec: task.Spec{URL: "http://x/"}, wantMethod: "GET"},
		{name: "upper-cases method", spec: task.Spec{Method: "post", URL: "http://x/"}, wantMethod: "POST"},
		{name: "mixed case", spec: task.Spec{Method: "dElEtE", URL: "http://x/"}, wantMethod: "DELETE"},
		{name: "extension method", spec: task.Spec{Method: "PURGE", URL: "http://x/"}, wantMethod: "PURGE"},
		{name: "method with space", spec: task.Spec{Method: "GE T", URL: "http://x/"}, want: task.ErrBadMethod},
		{name: "method with slash", spec: task.Spec{Method: "GET/", URL: "http://x/"}, want: task.ErrBadMethod},
		{name: "method with newline", spec: task.Spec{Method: "GET\n", URL: "http://x/"}, want: task.ErrBadMethod},
		{name: "method non-ascii", spec: task.Spec{Method: "GÉT", URL: "http://x/"}, want: task.ErrBadMethod},
		{name: "method 32 bytes", spec: task.Spec{Method: strings.Repeat("A", 32), URL: "http://x/"}, wantMethod: strings.Repeat("A", 32)},
		{name: "method 33 bytes", spec: task.Spec{Method: strings.Repeat("A", 33), URL: "http://x/"}, want: task.ErrBadMethod},
		{name: "bad url", spec: task.Spec{URL: "ftp://x/"}, want: task.ErrBadURL},
		{name: "url too long", spec: task.Spec{URL: "http://x/" + strings.Repeat("a", 100)}, limits: limits, want: task.ErrTooLarge, wantField: "url"},
		{name: "headers ok", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A", "v\tw"}, {"Accept", "*/*"}, {"X-Utf8", "é"}}}},
		{name: "empty header value", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A", ""}}}},
		{name: "empty header name", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"", "v"}}}, want: task.ErrBadHeader},
		{name: "header name with space", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X A", "v"}}}, want: task.ErrBadHeader},
		{name: "header name with colon", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A:", "v"}}}, want: task.ErrBadHeader},
		{name: "header name non-ascii", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"名", "v"}}}, want: task.ErrBadHeader},
		{name: "header value CRLF", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A", "v\r\nX-B: 1"}}}, want: task.ErrBadHeader},
		{name: "header value LF", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A", "v\nw"}}}, want: task.ErrBadHeader},
		{name: "header value NUL", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A", "\x00"}}}, want: task.ErrBadHeader},
		{name: "header value DEL", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X-A", "\x7f"}}}, want: task.ErrBadHeader},
		{name: "headers at limit", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X", strings.Repeat("v", 45)}}}, limits: limits},
		{name: "headers over limit", spec: task.Spec{URL: "http://x/", Header: []task.Field{{"X", strings.Repeat("v", 46)}}}, limits: limits, want: task.ErrTooLarge, wantField: "headers"},
		{name: "raw body at limit", spec: task.Spec{Method: "POST", URL: "http://x/", BodyKind: task.BodyRaw, Body: strings.Repeat("b", 20)}, limits: limits},
		{name: "raw body over limit", spec: task.Spec{Method: "POST", URL: "http://x/", BodyKind: task.BodyRaw, Body: strings.Repeat("b", 21)}, limits: limits, want: task.ErrTooLarge, wantField: "body"},
		{name: "binary body over limit", spec: task.Spec{Method: "POST", URL: "http://x/", BodyKind: task.BodyRaw, BodyBinary: bytes.Repeat([]byte{0xff}, 21)}, limits: limits, want: task.ErrTooLarge, wantField: "body"},
		{name: "form over limit", spec: task.Spec{Method: "POST", URL: "http://x/", BodyKind: task.BodyMultipart, Form: []task.Field{{"aaaaa", "bbbbb"}, {"ccccc", "dddddd"}}}, limits: limits, want: task.ErrTooLarge, wantField: "body"},
		{name: "no limits", spec: task.Spec{Method: "POST", URL: "http://x/" + strings.Repeat("a", 10_000), BodyKind: task.BodyRaw, Body: strings.Repeat("b", 1<<20)}},
		{name: "negative timeout", spec: task.Spec{URL: "http://x/", TimeoutMs: -1}, want: task.ErrBadTimeout},
		{name: "zero timeout", spec: task.Spec{URL: "http://x/", TimeoutMs: 0}},
		{name: "backoff bounds", spec: task.Spec{URL: "http://x/", MinBackoffMs: i64(0), MaxBackoffMs: i64(5000)}},
		{name: "equal backoff bounds", spec: task.Spec{URL: "http://x/", MinBackoffMs: i64(5000), MaxBackoffMs: i64(5000)}},
		{name: "min backoff only", spec: task.Spec{URL: "http://x/", MinBackoffMs: i64(1 << 40)}},
		{name: "negative min backoff", spec: task.Spec{URL: "http://x/", MinBackoffMs: i64(-1)}, want: task.ErrBadDuration, wantField: "min_backoff"},
		{name: "negative max backoff", spec: task.Spec{URL: "http://x/", MaxBackoffMs: i64(-1)}, want: task.ErrBadDuration, wantField: "max_backoff"},
		{name: "max backoff over 100 years", spec: task.Spec{URL: "http://x/", MaxBackoffMs: i64(math.MaxInt64)}, want: task.ErrBadDuration, wantField: "max_backoff"},
		{name: "min backoff above max", spec: task.Spec{URL: "http://x/", MinBackoffMs: i64(2), MaxBackoffMs: i64(1)}, want: task.ErrInvalid, wantField: "min_backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.spec
			err := s.Normalize(tt.limits)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if tt.wantMethod != "" && s.Method != tt.wantMethod {
					t.Fatalf("Method = %q, want %q", s.Method, tt.wantMethod)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Normalize = %v, want %v", err, tt.want)
			}
			if tt.wantField != "" && !strings.HasPrefix(err.Error(), tt.wantField+":") {
				t.Fatalf("error %q does not start with the field %q", err, tt.wantField)
			}
		})
	}
}

func TestNoBodyMethod(t *testing.T) {
	t.Parallel()
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "POST": false, "PUT": false, "DELETE": false, "OPTIONS": false, "get": false} {
		if got := task.NoBodyMethod(m); got != want {
			t.Errorf("NoBodyMethod(%q) = %v, want %v", m, got, want)
		}
	}
}

func i64(v int64) *int64 { return &v }

// TestBackoffOverridesStored: a task's backoff bounds survive storage, 0
// included (0 is an override, unlike an absent bound), and a spec without
// them stores no trace of them.
func TestBackoffOverridesStored(t *testing.T) {
	t.Parallel()
	stored, err := task.Encode("q", &task.Spec{URL: "http://x/", MinBackoffMs: i64(0), MaxBackoffMs: i64(250)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stored, `"bn":0`) || !strings.Contains(stored, `"bx":250`) {
		t.Fatalf("stored %q: want bn 0 and bx 250", stored)
	}
	_, s, err := task.Decode(stored)
	if err != nil || s.MinBackoffMs == nil || *s.MinBackoffMs != 0 || s.MaxBackoffMs == nil || *s.MaxBackoffMs != 250 {
		t.Fatalf("decoded %+v, %v", s, err)
	}
	plain, err := task.Encode("q", &task.Spec{URL: "http://x/"})
	if err != nil || strings.Contains(plain, "bn") || strings.Contains(plain, "bx") {
		t.Fatalf("a spec without overrides stored %q (%v)", plain, err)
	}
}
