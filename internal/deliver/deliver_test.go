package deliver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/task"
)

// seen is what a test server received.
type seen struct {
	Method           string
	RequestURI       string
	Header           http.Header
	Body             []byte
	Host             string
	ContentLength    int64
	TransferEncoding []string
}

// recorder starts a server that records every request on the returned
// channel and answers with reply (200 and "ok" when nil).
func recorder(t *testing.T, reply http.HandlerFunc) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: read body: %v", err)
		}
		ch <- seen{
			Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, Host: r.Host,
			ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		}
		if reply != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			reply(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// server starts a plain test server.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// released returns a channel closed when the test ends, before its servers
// close, so that handlers blocking on it let the servers shut down.
func released(t *testing.T) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// testMaxResponse is the answer prefix the tests keep unless they say.
const testMaxResponse = 64 << 10

// newClient returns a client with o (MaxResponseBytes testMaxResponse
// when 0), idle connections closed at the end of the test.
func newClient(t *testing.T, o deliver.Options) *deliver.Client {
	t.Helper()
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = testMaxResponse
	}
	c, err := deliver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

func call(spec *task.Spec) *deliver.Call {
	return &deliver.Call{TaskID: "0a00000000002a", Queue: "q", Attempt: 1, Seq: 7, Spec: spec, Timeout: 10 * time.Second}
}

// one receives the single request a server recorded.
func one(t *testing.T, ch <-chan seen) seen {
	t.Helper()
	select {
	case s := <-ch:
		select {
		case extra := <-ch:
			t.Fatalf("server got a second request: %s %s", extra.Method, extra.RequestURI)
		default:
		}
		return s
	default:
		t.Fatal("server got no request")
		return seen{}
	}
}

func mustSucceed(t *testing.T, r deliver.Result, status int) {
	t.Helper()
	if r.Err != nil || r.Kind != deliver.ErrNone {
		t.Fatalf("call failed: %v (kind %d)", r.Err, r.Kind)
	}
	if r.Status != status {
		t.Fatalf("status %d, want %d", r.Status, status)
	}
}

func TestMethodAndURLAsGiven(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path, wantURI string
	}{
		{method: "GET", path: "/"},
		{method: "GET", path: "/path?b=2&a=1&a=3&empty=&flag"},
		{method: "GET", path: "/p?enc=%20%2F%3D%26&plus=a+b&pct=%25"},
		{method: "GET", path: "/a%2Fb/c%20d/"},
		{method: "GET", path: "/p?htq_no_repeat=1"},
		{method: "GET", path: "/p?q=1#fragment", wantURI: "/p?q=1"},
		{method: "GET", path: "/p?x=%E4%B8%AD"},
		{method: "POST", path: "/submit?id=42"},
		{method: "PUT", path: "/r/1"},
		{method: "DELETE", path: "/r/1?hard=true"},
		{method: "PATCH", path: "/r/1"},
		{method: "OPTIONS", path: "/"},
		{method: "PURGE", path: "/cache/key"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			srv, ch := recorder(t, nil)
			c := newClient(t, deliver.Options{})
			r := c.Do(context.Background(), call(&task.Spec{Method: tt.method, URL: srv.URL + tt.path}))
			mustSucceed(t, r, 200)
			s := one(t, ch)
			want := tt.wantURI
			if want == "" {
				want = tt.path
			}
			if s.Method != tt.method || s.RequestURI != want {
				t.Fatalf("server saw %s %s, want %s %s", s.Method, s.RequestURI, tt.method, want)
			}
			if string(r.Body) != "ok" {
				t.Fatalf("body %q", r.Body)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		userAgent string // Options.UserAgent
		header    []task.Field
		queue     string
		want      map[string][]string
	}{
		{
			name: "htq headers and default user agent", userAgent: "HTQ/1.2.3", queue: "orders",
			want: map[string][]string{
				"X-Htq-Task-Id": {"0a00000000002a"}, "X-Htq-Queue": {"orders"}, "X-Htq-Attempt": {"3"},
				"X-Htq-Sequence": {"99"}, "User-Agent": {"HTQ/1.2.3"},
			},
		},
		{
			name: "spec headers kept, repeated ones too", userAgent: "HTQ/1", queue: "q",
			header: []task.Field{{Name: "X-Token", Value: "abc"}, {Name: "X-Multi", Value: "1"}, {Name: "x-multi", Value: "2"}, {Name: "Accept", Value: "application/json"}},
			want: map[string][]string{
				"X-Token": {"abc"}, "X-Multi": {"1", "2"}, "Accept": {"application/json"}, "User-Agent": {"HTQ/1"},
			},
		},
		{
			name: "spec user agent wins", userAgent: "HTQ/1", queue: "q",
			header: []task.Field{{Name: "User-Agent", Value: "MyApp/2"}},
			want:   map[string][]string{"User-Agent": {"MyApp/2"}},
		},
		{
			name: "spec cannot forge htq headers", queue: "real",
			header: []task.Field{{Name: "X-HTQ-Task-Id", Value: "forged"}, {Name: "X-HTQ-Queue", Value: "forged"}},
			want:   map[string][]string{"X-Htq-Task-Id": {"0a00000000002a"}, "X-Htq-Queue": {"real"}},
		},
		{
			name: "unicode queue is percent-encoded", queue: "订单 队列",
			want: map[string][]string{"X-Htq-Queue": {"%E8%AE%A2%E5%8D%95%20%E9%98%9F%E5%88%97"}},
		},
		{
			name: "header value with non-ascii bytes", queue: "q",
			header: []task.Field{{Name: "X-Name", Value: "café"}},
			want:   map[string][]string{"X-Name": {"café"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, ch := recorder(t, nil)
			c := newClient(t, deliver.Options{UserAgent: tt.userAgent})
			cl := call(&task.Spec{Method: "GET", URL: srv.URL, Header: tt.header})
			cl.Queue, cl.Attempt, cl.Seq = tt.queue, 3, 99
			mustSucceed(t, c.Do(context.Background(), cl), 200)
			s := one(t, ch)
			for name, want := range tt.want {
				if got := s.Header.Values(name); !equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if q := s.Header.Get(deliver.HeaderQueue); q != tt.queue {
				if back, err := url.PathUnescape(q); err != nil || back != tt.queue {
					t.Errorf("X-HTQ-Queue %q does not decode to %q", q, tt.queue)
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	return fmt.Sprintf("%q", a) == fmt.Sprintf("%q", b)
}

// TestHostHeaderAsGiven: a task's Host header is sent as given (name-based
// virtual hosts), as the original did, while the connection goes to the
// URL's address (issue 13: net/http dropped it and sent the URL's host).
func TestHostHeaderAsGiven(t *testing.T) {
	t.Parallel()
	srv, ch := recorder(t, nil)
	c := newClient(t, deliver.Options{})
	for _, name := range []string{"Host", "host"} {
		r := c.Do(context.Background(), call(&task.Spec{Method: http.MethodGet, URL: srv.URL + "/vh",
			Header: []task.Field{{Name: name, Value: "shop.example.test"}}}))
		mustSucceed(t, r, http.StatusOK)
		if s := one(t, ch); s.Host != "shop.example.test" || s.RequestURI != "/vh" {
			t.Fatalf("%s header: the target saw Host %q for %s, want shop.example.test", name, s.Host, s.RequestURI)
		}
	}
	r := c.Do(context.Background(), call(&task.Spec{Method: http.MethodGet, URL: srv.URL + "/plain"}))
	mustSucceed(t, r, http.StatusOK)
	if s := one(t, ch); s.Host != strings.TrimPrefix(srv.URL, "http://") {
		t.Fatalf("without a Host header the target saw %q, want the URL's host", s.Host)
	}
}

func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"orders", "orders"},
		{"with space", "with space"},
		{"a/b:c?d=e&fg", "a/b:c?d=e&fg"},
		{"100%", "100%25"}, // % is encoded, so decoding always gives the name back
		{"队列", "%E9%98%9F%E5%88%97"},
		{"café", "caf%C3%A9"},
		{"tab\there", "tab%09here"},
		{"del\x7f", "del%7F"},
		{"nl\nx", "nl%0Ax"},
		{"\xff", "%EF%BF%BD"}, // invalid UTF-8 becomes U+FFFD first
		{"a\xffé", "a%EF%BF%BD%C3%A9"},
	}
	for _, tt := range tests {
		got := deliver.HeaderSafe(tt.in)
		if got != tt.want {
			t.Errorf("HeaderSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < ' ' || got[i] >= 0x7f {
				t.Errorf("HeaderSafe(%q) = %q has a byte that is not printable ASCII", tt.in, got)
				break
			}
		}
	}
}

func TestBodies(t *testing.T) {
	t.Parallel()
	binary := &task.Spec{Method: "PUT"}
	binary.SetBody([]byte{0x00, 0xff, 0xfe, 'x', '\r', '\n'})
	tests := []struct {
		name     string
		spec     task.Spec
		wantBody []byte
		wantCT   string
	}{
		{
			name: "raw json", spec: task.Spec{Method: "POST", BodyKind: task.BodyRaw, Body: `{"a":1}`, Header: []task.Field{{Name: "Content-Type", Value: "application/json"}}},
			wantBody: []byte(`{"a":1}`), wantCT: "application/json",
		},
		{name: "raw without content type", spec: task.Spec{Method: "POST", BodyKind: task.BodyRaw, Body: "plain"}, wantBody: []byte("plain")},
		{name: "raw binary", spec: task.Spec{Method: "PUT", BodyKind: task.BodyRaw, BodyBinary: binary.BodyBinary}, wantBody: binary.BodyBinary},
		{name: "raw empty", spec: task.Spec{Method: "POST", BodyKind: task.BodyRaw}, wantBody: nil},
		{name: "no body kind", spec: task.Spec{Method: "POST"}, wantBody: nil},
		{
			name: "urlencoded", spec: task.Spec{Method: "POST", BodyKind: task.BodyURLEncoded, Form: []task.Field{
				{Name: "b", Value: "2"}, {Name: "a", Value: "1"}, {Name: "a", Value: "3"}, {Name: "sp ace", Value: "a b&c=d"}, {Name: "名", Value: "值"},
			}},
			wantBody: []byte("b=2&a=1&a=3&sp+ace=a+b%26c%3Dd&%E5%90%8D=%E5%80%BC"), wantCT: "application/x-www-form-urlencoded",
		},
		{name: "urlencoded empty", spec: task.Spec{Method: "POST", BodyKind: task.BodyURLEncoded}, wantBody: nil, wantCT: "application/x-www-form-urlencoded"},
		{name: "GET drops raw body", spec: task.Spec{Method: "GET", BodyKind: task.BodyRaw, Body: "must not be sent"}},
		{name: "GET drops form", spec: task.Spec{Method: "GET", BodyKind: task.BodyMultipart, Form: []task.Field{{Name: "a", Value: "1"}}}},
		{name: "GET drops urlencoded form", spec: task.Spec{Method: "GET", BodyKind: task.BodyURLEncoded, Form: []task.Field{{Name: "a", Value: "1"}}}},
		{name: "HEAD drops raw body", spec: task.Spec{Method: "HEAD", BodyKind: task.BodyRaw, BodyBinary: []byte{0xff}}},
		{name: "HEAD drops form", spec: task.Spec{Method: "HEAD", BodyKind: task.BodyMultipart, Form: []task.Field{{Name: "a", Value: "1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, ch := recorder(t, nil)
			c := newClient(t, deliver.Options{})
			spec := tt.spec
			spec.URL = srv.URL + "/target"
			mustSucceed(t, c.Do(context.Background(), call(&spec)), 200)
			s := one(t, ch)
			if !bytes.Equal(s.Body, tt.wantBody) {
				t.Fatalf("server got body %q, want %q", s.Body, tt.wantBody)
			}
			if got := s.Header.Get("Content-Type"); got != tt.wantCT {
				t.Fatalf("Content-Type %q, want %q", got, tt.wantCT)
			}
			if task.NoBodyMethod(spec.Method) {
				if s.ContentLength > 0 || len(s.TransferEncoding) > 0 {
					t.Fatalf("%s sent with Content-Length %d, Transfer-Encoding %q", spec.Method, s.ContentLength, s.TransferEncoding)
				}
			} else if s.ContentLength != int64(len(tt.wantBody)) {
				t.Fatalf("Content-Length %d, want %d (no chunking)", s.ContentLength, len(tt.wantBody))
			}
		})
	}
}

func TestMultipartForm(t *testing.T) {
	t.Parallel()
	form := []task.Field{
		{Name: "title", Value: "hello"},
		{Name: "tags", Value: "a"},
		{Name: "empty", Value: ""},
		{Name: "tags", Value: "b"},
		{Name: "名字", Value: "值 with \"quotes\"\r\nand lines"},
		{Name: "json", Value: `{"nested":[1,2]}`},
		{Name: "big", Value: strings.Repeat("x", 100_000)},
	}
	type parsed struct {
		values map[string][]string
		order  []task.Field
		err    error
	}
	got := make(chan parsed, 1)
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		var p parsed
		defer func() { got <- p }()
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			p.err = err
			return
		}
		// What PHP's $_POST (and Go's ParseMultipartForm) sees.
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if p.err = r.ParseMultipartForm(1 << 20); p.err != nil {
			return
		}
		p.values = r.MultipartForm.Value
		// The order on the wire.
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			p.err = err
			return
		}
		mr := multipart.NewReader(bytes.NewReader(raw), params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				p.err = err
				return
			}
			v, _ := io.ReadAll(part)
			p.order = append(p.order, task.Field{Name: part.FormName(), Value: string(v)})
		}
	})
	c := newClient(t, deliver.Options{})
	spec := &task.Spec{
		Method: "POST", URL: srv.URL, BodyKind: task.BodyMultipart, Form: form,
		// A Content-Type from the spec must not break the boundary.
		Header: []task.Field{{Name: "Content-Type", Value: "text/plain"}},
	}
	mustSucceed(t, c.Do(context.Background(), call(spec)), 200)
	p := <-got
	if p.err != nil {
		t.Fatalf("server could not parse the form: %v", p.err)
	}
	want := map[string][]string{
		"title": {"hello"}, "tags": {"a", "b"}, "empty": {""}, "名字": {"值 with \"quotes\"\r\nand lines"},
		"json": {`{"nested":[1,2]}`}, "big": {strings.Repeat("x", 100_000)},
	}
	if len(p.values) != len(want) {
		t.Fatalf("form has %d names, want %d: %q", len(p.values), len(want), keys(p.values))
	}
	for k, v := range want {
		if !equal(p.values[k], v) {
			t.Fatalf("form[%q] = %.60q, want %.60q", k, p.values[k], v)
		}
	}
	if len(p.order) != len(form) {
		t.Fatalf("%d parts, want %d", len(p.order), len(form))
	}
	for i := range form {
		if p.order[i] != form[i] {
			t.Fatalf("part %d = %.60q, want %.60q", i, p.order[i], form[i])
		}
	}
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestResponse(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(task.HeaderAction, "done")
		w.Header().Set(task.HeaderNextIn, "5")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, " done\n")
	})
	c := newClient(t, deliver.Options{})
	r := c.Do(context.Background(), call(&task.Spec{Method: "POST", URL: srv.URL}))
	mustSucceed(t, r, http.StatusAccepted)
	if string(r.Body) != " done\n" || r.Header.Get(task.HeaderAction) != "done" || r.Header.Get(task.HeaderNextIn) != "5" {
		t.Fatalf("body %q header %v", r.Body, r.Header)
	}
	if r.Latency <= 0 {
		t.Fatalf("latency %v", r.Latency)
	}
	if a := task.ParseAction(r.Header, r.Body); a != task.ActionDone {
		t.Fatalf("ParseAction = %v", a)
	}
}

func TestStatusesAreReturned(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "status %d", code)
	})
	c := newClient(t, deliver.Options{})
	for _, code := range []int{200, 204, 400, 404, 429, 500, 503} {
		r := c.Do(context.Background(), call(&task.Spec{Method: "POST", URL: fmt.Sprintf("%s/%d", srv.URL, code)}))
		if r.Err != nil || r.Status != code {
			t.Fatalf("status %d: got %d, %v", code, r.Status, r.Err)
		}
		if want := fmt.Sprintf("status %d", code); code != 204 && string(r.Body) != want {
			t.Fatalf("body %q, want %q", r.Body, want)
		}
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	stop := released(t)
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	c := newClient(t, deliver.Options{})
	cl := call(&task.Spec{Method: "GET", URL: srv.URL})
	cl.Timeout = 200 * time.Millisecond
	r := c.Do(context.Background(), cl)
	if r.Kind != deliver.ErrTimeout || r.Err == nil || r.Status != 0 {
		t.Fatalf("got kind %d, status %d, err %v; want a timeout", r.Kind, r.Status, r.Err)
	}
	if r.Latency < 200*time.Millisecond || r.Latency > 5*time.Second {
		t.Fatalf("latency %v, want about the 200ms timeout", r.Latency)
	}
}

func TestTimeoutWhileReadingBody(t *testing.T) {
	t.Parallel()
	stop := released(t)
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	c := newClient(t, deliver.Options{})
	cl := call(&task.Spec{Method: "GET", URL: srv.URL})
	cl.Timeout = 200 * time.Millisecond
	r := c.Do(context.Background(), cl)
	if r.Kind != deliver.ErrTimeout || r.Err == nil {
		t.Fatalf("got kind %d, err %v; want a timeout", r.Kind, r.Err)
	}
	if r.Status != 200 || string(r.Body) != "partial" {
		t.Fatalf("status %d body %q; want what arrived", r.Status, r.Body)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, deliver.Options{})
	r := c.Do(context.Background(), call(&task.Spec{Method: "POST", URL: "http://" + addr + "/x", BodyKind: task.BodyRaw, Body: "b"}))
	if r.Kind != deliver.ErrConnection || r.Err == nil || r.Status != 0 {
		t.Fatalf("got kind %d, status %d, err %v; want a connection error", r.Kind, r.Status, r.Err)
	}
}

func TestConnectionReset(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	})
	c := newClient(t, deliver.Options{})
	r := c.Do(context.Background(), call(&task.Spec{Method: "POST", URL: srv.URL}))
	if r.Kind != deliver.ErrConnection || r.Err == nil {
		t.Fatalf("got kind %d, err %v; want a connection error", r.Kind, r.Err)
	}
}

func TestBadRequest(t *testing.T) {
	t.Parallel()
	c := newClient(t, deliver.Options{})
	for _, spec := range []*task.Spec{
		{Method: "BAD METHOD", URL: "http://127.0.0.1:1/"},
		{Method: "GET", URL: "http://[::1/"},
		{Method: "GET", URL: "http://127.0.0.1:1/\x7f"},
	} {
		r := c.Do(context.Background(), call(spec))
		if r.Kind != deliver.ErrRequest || r.Err == nil {
			t.Errorf("%s %q: got kind %d, err %v; want ErrRequest", spec.Method, spec.URL, r.Kind, r.Err)
		}
	}
}

func TestResponseTruncated(t *testing.T) {
	t.Parallel()
	full := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB
	srv := server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(full) })
	for _, limit := range []int{16, 1000, 99_999, 100_000, 200_000} {
		c := newClient(t, deliver.Options{MaxResponseBytes: limit})
		r := c.Do(context.Background(), call(&task.Spec{Method: "GET", URL: srv.URL}))
		mustSucceed(t, r, 200)
		want := full[:min(limit, len(full))]
		if !bytes.Equal(r.Body, want) {
			t.Fatalf("limit %d: body of %d bytes, want the first %d", limit, len(r.Body), len(want))
		}
	}
}

// TestNewRefusesUnusableOptions: no limit on the answer kept is not a
// limit New replaces with its own; it is refused, as are negative options.
func TestNewRefusesUnusableOptions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		o    deliver.Options
	}{
		{"MaxResponseBytes", deliver.Options{}},
		{"MaxResponseBytes", deliver.Options{MaxResponseBytes: -1}},
		{"MaxIdleConnsPerHost", deliver.Options{MaxResponseBytes: 1, MaxIdleConnsPerHost: -1}},
		{"DialTimeout", deliver.Options{MaxResponseBytes: 1, DialTimeout: -time.Second}},
	} {
		c, err := deliver.New(tt.o)
		if !errors.Is(err, deliver.ErrOptions) || !strings.Contains(err.Error(), tt.name+" ") || c != nil {
			t.Errorf("New(%+v) = %v, %v; want an ErrOptions naming %s", tt.o, c, err, tt.name)
		}
	}
}

func TestHugeResponse(t *testing.T) {
	t.Parallel()
	const size = 10 << 20
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up: it did not read it all
			}
		}
	})
	const limit = 4096
	c := newClient(t, deliver.Options{MaxResponseBytes: limit})
	cl := call(&task.Spec{Method: "GET", URL: srv.URL})
	cl.Timeout = 30 * time.Second
	r := c.Do(context.Background(), cl)
	mustSucceed(t, r, 200)
	if len(r.Body) != limit {
		t.Fatalf("body of %d bytes, want %d", len(r.Body), limit)
	}
	if r.Latency > 10*time.Second {
		t.Fatalf("took %v", r.Latency)
	}
}

func TestEndlessResponse(t *testing.T) {
	t.Parallel()
	// A target that never stops answering: only a client that stops
	// reading can return before its timeout.
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("y"), 32<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	c := newClient(t, deliver.Options{})
	cl := call(&task.Spec{Method: "GET", URL: srv.URL})
	cl.Timeout = 30 * time.Second
	r := c.Do(context.Background(), cl)
	mustSucceed(t, r, 200)
	if len(r.Body) != testMaxResponse {
		t.Fatalf("body of %d bytes, want %d", len(r.Body), testMaxResponse)
	}
}

// redirector answers /hop/N with a redirect to /hop/N-1, and /hop/0 with 200.
func redirector(t *testing.T, code int, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	return server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		if n == 0 {
			_, _ = fmt.Fprintf(w, "arrived by %s", r.Method)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), code)
	})
}

// TestRedirectsLikeNodeFetch: with FollowAllRedirects (the legacy
// protocol's queues) a POST answered 301/302/303 goes on as a GET without
// body, 307/308 keep method and body, at most 5 hops, each hop listed
// (issue 13: a POST answered 302 became a dead letter).
func TestRedirectsLikeNodeFetch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code             int
		hops             int
		wantMethod, body string
		fail             bool
	}{
		{code: 301, hops: 1, wantMethod: "GET"},
		{code: 302, hops: 2, wantMethod: "GET"},
		{code: 303, hops: 1, wantMethod: "GET"},
		{code: 307, hops: 3, wantMethod: "POST", body: "payload"},
		{code: 308, hops: 5, wantMethod: "POST", body: "payload"},
		{code: 302, hops: 6, fail: true},
	}
	for _, tt := range tests {
		var hits atomic.Int64
		srv := server(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n > 0 {
				http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), tt.code)
				return
			}
			b, _ := io.ReadAll(r.Body)
			_, _ = fmt.Fprintf(w, "%s %s", r.Method, b)
		})
		c := newClient(t, deliver.Options{})
		cl := call(&task.Spec{Method: "POST", URL: fmt.Sprintf("%s/hop/%d", srv.URL, tt.hops), BodyKind: task.BodyRaw, Body: "payload"})
		cl.FollowAllRedirects = true
		r := c.Do(context.Background(), cl)
		if tt.fail {
			if r.Err == nil || r.Kind != deliver.ErrRequest {
				t.Errorf("%d × %d: status %d err %v, want the too-many-redirects error", tt.code, tt.hops, r.Status, r.Err)
			}
			continue
		}
		mustSucceed(t, r, http.StatusOK)
		if want := strings.TrimSpace(tt.wantMethod + " " + tt.body); strings.TrimSpace(string(r.Body)) != want {
			t.Errorf("%d × %d: arrived as %q, want %q", tt.code, tt.hops, r.Body, want)
		}
		if len(r.Redirects) != tt.hops || !strings.HasPrefix(r.Redirects[0], strconv.Itoa(tt.code)+" http://") {
			t.Errorf("%d × %d: hops %q", tt.code, tt.hops, r.Redirects)
		}
	}
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		code     int
		hops     int
		status   int // 0: an error
		body     string
		wantHits int64
	}{
		{name: "GET no redirect", method: "GET", code: 302, hops: 0, status: 200, body: "arrived by GET", wantHits: 1},
		{name: "GET one", method: "GET", code: 302, hops: 1, status: 200, body: "arrived by GET", wantHits: 2},
		{name: "GET five", method: "GET", code: 301, hops: 5, status: 200, body: "arrived by GET", wantHits: 6},
		{name: "GET 307 five", method: "GET", code: 307, hops: 5, status: 200, body: "arrived by GET", wantHits: 6},
		{name: "GET six", method: "GET", code: 302, hops: 6, status: 0, wantHits: 6},
		{name: "HEAD follows", method: "HEAD", code: 302, hops: 2, status: 200, wantHits: 3},
		{name: "POST 302 not followed", method: "POST", code: 302, hops: 1, status: 302, wantHits: 1},
		{name: "POST 303 not followed", method: "POST", code: 303, hops: 3, status: 303, wantHits: 1},
		{name: "POST 307 not followed", method: "POST", code: 307, hops: 1, status: 307, wantHits: 1},
		{name: "POST 308 not followed", method: "POST", code: 308, hops: 1, status: 308, wantHits: 1},
		{name: "PUT not followed", method: "PUT", code: 301, hops: 1, status: 301, wantHits: 1},
		{name: "DELETE not followed", method: "DELETE", code: 302, hops: 1, status: 302, wantHits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int64
			srv := redirector(t, tt.code, &hits)
			c := newClient(t, deliver.Options{})
			spec := &task.Spec{Method: tt.method, URL: fmt.Sprintf("%s/hop/%d", srv.URL, tt.hops)}
			if tt.method != "GET" && tt.method != "HEAD" {
				spec.BodyKind, spec.Body = task.BodyRaw, "payload"
			}
			r := c.Do(context.Background(), call(spec))
			if got := hits.Load(); got != tt.wantHits {
				t.Fatalf("server hit %d times, want %d", got, tt.wantHits)
			}
			if tt.status == 0 {
				if r.Err == nil || r.Kind != deliver.ErrRequest || !strings.Contains(r.Err.Error(), "redirects") {
					t.Fatalf("got status %d, kind %d, err %v; want a permanent (request) redirect error", r.Status, r.Kind, r.Err)
				}
				return
			}
			mustSucceed(t, r, tt.status)
			if tt.body != "" && string(r.Body) != tt.body {
				t.Fatalf("body %q, want %q", r.Body, tt.body)
			}
			if tt.status >= 300 && r.Header.Get("Location") == "" {
				t.Fatal("the 3xx answer has no Location")
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		respSize int
		limit    int
	}{
		{name: "small answers", respSize: 2},
		{name: "answers longer than the limit but drainable", respSize: 100 << 10, limit: 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int64
			resp := bytes.Repeat([]byte("z"), tt.respSize)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = w.Write(resp)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			c := newClient(t, deliver.Options{MaxResponseBytes: tt.limit})
			for i := range 50 {
				var spec *task.Spec
				switch i % 4 {
				case 0:
					spec = &task.Spec{Method: "GET", URL: srv.URL + "/get"}
				case 1:
					spec = &task.Spec{Method: "POST", URL: srv.URL + "/raw", BodyKind: task.BodyRaw, Body: strings.Repeat("b", 1000)}
				case 2:
					spec = &task.Spec{Method: "POST", URL: srv.URL + "/form", BodyKind: task.BodyMultipart, Form: []task.Field{{Name: "a", Value: "1"}}}
				default:
					spec = &task.Spec{Method: "HEAD", URL: srv.URL + "/head"}
				}
				r := c.Do(context.Background(), call(spec))
				mustSucceed(t, r, 200)
			}
			// One connection, give or take: net/http does not reuse a
			// connection whose request write it has not seen finish within
			// 50 ms of the answer (maxWriteWaitBeforeConnReuse), which a
			// loaded machine can cause now and then. Without keep-alive,
			// or without draining a long answer, it is one per call.
			if n := conns.Load(); n > 3 {
				t.Fatalf("50 sequential calls opened %d connections, want 1 (at most 3 on a loaded machine)", n)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	t.Parallel()
	stop := released(t)
	arrived := make(chan struct{}, 1)
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	c := newClient(t, deliver.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan deliver.Result, 1)
	go func() { done <- c.Do(ctx, call(&task.Spec{Method: "GET", URL: srv.URL})) }()
	select {
	case <-arrived:
	case r := <-done:
		t.Fatalf("call returned before the server saw it: %+v", r)
	}
	cancel()
	r := <-done
	if r.Kind != deliver.ErrCancelled || !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("got kind %d, err %v; want ErrCancelled", r.Kind, r.Err)
	}
}

func TestCancelledBeforeCall(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	c := newClient(t, deliver.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := c.Do(ctx, call(&task.Spec{Method: "GET", URL: srv.URL}))
	if r.Kind != deliver.ErrCancelled {
		t.Fatalf("got kind %d, err %v; want ErrCancelled", r.Kind, r.Err)
	}
	if hits.Load() != 0 {
		t.Fatal("a cancelled call reached the server")
	}
}

func TestParentDeadlineIsATimeout(t *testing.T) {
	t.Parallel()
	stop := released(t)
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	c := newClient(t, deliver.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := c.Do(ctx, call(&task.Spec{Method: "GET", URL: srv.URL}))
	if r.Kind != deliver.ErrTimeout {
		t.Fatalf("got kind %d, err %v; want ErrTimeout", r.Kind, r.Err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get(deliver.HeaderSequence))
	})
	c := newClient(t, deliver.Options{})
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			cl := call(&task.Spec{Method: "GET", URL: srv.URL})
			cl.Seq = int64(i)
			r := c.Do(context.Background(), cl)
			if r.Err != nil || string(r.Body) != strconv.Itoa(i) {
				errs <- fmt.Errorf("call %d: body %q, err %w", i, r.Body, r.Err)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestHopByHopHeadersAreNotForwarded: headers that describe one connection
// (Connection and the names it lists, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-*) given with a task are dropped at
// delivery; they are not the task's to set (Proxy-Authorization would go
// to a proxy, Upgrade would turn the call into another protocol).
func TestHopByHopHeadersAreNotForwarded(t *testing.T) {
	t.Parallel()
	srv, ch := recorder(t, nil)
	c := newClient(t, deliver.Options{})
	hdr := []task.Field{
		{Name: "Connection", Value: "keep-alive, X-Hop"}, {Name: "X-Hop", Value: "1"}, {Name: "keep-alive", Value: "timeout=5"},
		{Name: "TE", Value: "trailers"}, {Name: "Trailer", Value: "X-T"}, {Name: "Upgrade", Value: "websocket"},
		{Name: "Proxy-Authorization", Value: "Basic c2VjcmV0"}, {Name: "Proxy-Connection", Value: "keep-alive"},
		{Name: "proxy-whatever", Value: "x"}, {Name: "X-Kept", Value: "yes"}, {Name: "Authorization", Value: "Bearer t"},
	}
	mustSucceed(t, c.Do(context.Background(), call(&task.Spec{Method: "POST", URL: srv.URL, Header: hdr, BodyKind: task.BodyRaw, Body: "x"})), 200)
	s := one(t, ch)
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Te", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Proxy-Whatever"} {
		if v := s.Header.Values(name); len(v) > 0 {
			t.Errorf("%s forwarded: %q", name, v)
		}
	}
	for name, want := range map[string]string{"X-Kept": "yes", "Authorization": "Bearer t"} {
		if got := s.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
