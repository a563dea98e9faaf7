package api_test

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"

	"github.com/htq/htq/internal/api"
)

// testReadOnlyToken is accepted by newReadOnlyEnv's server for reading only.
const testReadOnlyToken = "read-only-token-0123"

func newReadOnlyEnv(t *testing.T) *testEnv {
	t.Helper()
	return newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.ReadOnlyTokens = newReadOnlyConfig() }})
}

func newReadOnlyConfig() [][sha256.Size]byte {
	return [][sha256.Size]byte{sha256.Sum256([]byte(testReadOnlyToken))}
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	e := newReadOnlyEnv(t)
	for _, tt := range []struct {
		token    string
		readOnly bool
	}{{testToken, false}, {testReadOnlyToken, true}} {
		var got struct {
			ReadOnly *bool `json:"read_only"`
		}
		e.must(e.rest(http.MethodGet, "/v1/whoami", nil, "Authorization", "Bearer "+tt.token), http.StatusOK, &got)
		if got.ReadOnly == nil || *got.ReadOnly != tt.readOnly {
			t.Errorf("whoami with %q: read_only = %v, want %v", tt.token, got.ReadOnly, tt.readOnly)
		}
	}
	e.wantError(e.rest(http.MethodGet, "/v1/whoami", nil, "Authorization", "-"), http.StatusUnauthorized, "unauthorized")
	e.wantError(e.rest(http.MethodGet, "/v1/whoami", nil, "Authorization", "Bearer not-a-token-at-all"), http.StatusUnauthorized, "unauthorized")
}

// TestReadOnlyTokenRefusedEveryChange walks every /v1 route the server
// has: a read-only token gets 403 forbidden on each one that is not a GET,
// and nothing in Redis changes; it may still read.
func TestReadOnlyTokenRefusedEveryChange(t *testing.T) {
	t.Parallel()
	e := newReadOnlyEnv(t)
	e.putQueue("q", map[string]any{})
	tj := e.addTask("q", map[string]any{"url": "http://example.com/x"})
	e.must(e.rest(http.MethodPut, "/v1/schedules/s", map[string]any{"queue": "q", "cron": "@every 1h", "task": map[string]any{"url": "http://example.com/s"}}), http.StatusCreated, nil)

	ec, ok := e.srv.Handler().(*echo.Echo)
	if !ok {
		t.Fatal("the handler is not an *echo.Echo")
	}
	before := e.snapshot()
	ro := []string{"Authorization", "Bearer " + testReadOnlyToken}
	var mutating, reads int
	for _, rt := range ec.Routes() {
		if !strings.HasPrefix(rt.Path, "/v1/") || strings.HasSuffix(rt.Path, "/*") {
			continue
		}
		path := strings.NewReplacer(":queue", "q", ":id", tj.ID, ":name", "s").Replace(rt.Path)
		if rt.Method == http.MethodGet {
			reads++
			if rt.Path == "/v1/events" {
				continue // a stream: tested in its own test
			}
			r := e.rest(rt.Method, path, nil, ro...)
			if r.status != http.StatusOK {
				t.Errorf("GET %s with a read-only token: %v, want 200", path, r)
			}
			continue
		}
		mutating++
		r := e.rest(rt.Method, path, map[string]any{}, ro...)
		e.wantError(r, http.StatusForbidden, "forbidden", "read-only")
	}
	if mutating < 14 || reads < 6 {
		t.Fatalf("only %d mutating and %d reading routes found", mutating, reads)
	}
	// GET /v1/overview may cache its backlog snapshot: not a change
	var d []string
	for _, k := range diffSnapshots(before, e.snapshot()) {
		if !strings.Contains(k, "htq:stats:backlog") {
			d = append(d, k)
		}
	}
	if len(d) > 0 {
		t.Fatalf("a read-only token changed Redis: %v", d)
	}
	// the same change with a full token still works
	e.must(e.rest(http.MethodPost, "/v1/queues/q/pause", nil), http.StatusOK, nil)
}

func TestReadOnlyTokenRefusedLegacy(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) {
		c.ReadOnlyTokens = [][sha256.Size]byte{sha256.Sum256([]byte(testReadOnlyToken))}
	}})
	before := e.snapshot()
	for _, enc := range encodings {
		// the read-only token as the legacy app_token
		f := fields("app_key", testAppKey, "app_token", testReadOnlyToken, "name", "lq", "type", "1")
		r := e.legacy("addQueue", enc, f)
		e.wantError(r, http.StatusForbidden, "forbidden", "read-only")
		// or as a bearer token beside valid legacy credentials
		body, ct := encodeForm(t, enc, creds("name", "lq", "type", "1"))
		r = e.send(http.MethodPost, "/api/addQueue", strings.NewReader(string(body)),
			http.Header{"Content-Type": {ct}, "Authorization": {"Bearer " + testReadOnlyToken}})
		e.wantError(r, http.StatusForbidden, "forbidden", "read-only")
	}
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Fatalf("a read-only token changed Redis through the legacy API: %v", d)
	}
	// the legacy credentials alone still work
	wantLegacy(t, e.legacy("addQueue", encMultipart, creds("queue_name", "lq")), 0)
}

// TestOpenAPIDocumentsReadOnly403: every /v1 operation that changes
// something lists the 403 a read-only token gets.
func TestOpenAPIDocumentsReadOnly403(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rest(http.MethodGet, "/openapi.yaml", nil, "Authorization", "-")
	e.must(r, http.StatusOK, nil)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for m, op := range ops {
			if m != "put" && m != "post" && m != "delete" {
				continue
			}
			n++
			o, _ := op.(map[string]any)
			resp, _ := o["responses"].(map[string]any)
			if _, ok := resp["403"]; !ok {
				t.Errorf("%s %s does not document 403 (read-only token)", strings.ToUpper(m), path)
			}
		}
	}
	if n < 14 {
		t.Fatalf("only %d changing operations found", n)
	}
}

// TestGetTaskShowsRequest: GET /v1/tasks/{id} shows the headers in order
// and the body as they will be sent; a read-only token sees that a
// credential header is there, not its value.
func TestGetTaskShowsRequest(t *testing.T) {
	t.Parallel()
	e := newReadOnlyEnv(t)
	e.putQueue("q", map[string]any{})
	raw := e.addTask("q", map[string]any{"url": "http://example.com/x", "method": "POST",
		"headers": map[string]any{"Authorization": "Bearer target-secret", "X-Shop": "<b>main</b>"},
		"body":    map[string]any{"order": 42}})
	form := e.addTask("q", map[string]any{"url": "http://example.com/f", "method": "POST", "form": map[string]any{"a": "1"}})
	bin := e.addTask("q", map[string]any{"url": "http://example.com/b", "method": "POST", "body_base64": "AP8="})

	type field struct{ Name, Value string }
	type request struct {
		Headers    []field `json:"headers"`
		BodyKind   string  `json:"body_kind"`
		Body       *string `json:"body"`
		BodyBase64 string  `json:"body_base64"`
		Form       []field `json:"form"`
	}
	get := func(id, token string) request {
		var out struct {
			Request *request `json:"request"`
		}
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+id, nil, "Authorization", "Bearer "+token), http.StatusOK, &out)
		if out.Request == nil {
			t.Fatalf("GET /v1/tasks/%s has no request", id)
		}
		return *out.Request
	}
	full := get(raw.ID, testToken)
	header := func(r request, name string) string {
		for _, h := range r.Headers {
			if strings.EqualFold(h.Name, name) {
				return h.Value
			}
		}
		return "(absent)"
	}
	if header(full, "Authorization") != "Bearer target-secret" || header(full, "X-Shop") != "<b>main</b>" {
		t.Errorf("full token: headers %+v", full.Headers)
	}
	if full.BodyKind != "raw" || full.Body == nil || *full.Body != `{"order":42}` {
		t.Errorf("full token: body %q (%s)", deref(full.Body), full.BodyKind)
	}
	ro := get(raw.ID, testReadOnlyToken)
	if header(ro, "Authorization") != api.Redacted || header(ro, "X-Shop") != "<b>main</b>" {
		t.Errorf("read-only token: headers %+v, want the Authorization value redacted only", ro.Headers)
	}
	if f := get(form.ID, testToken); len(f.Form) != 1 || f.Form[0] != (field{"a", "1"}) || f.Body != nil {
		t.Errorf("form task: %+v", f)
	}
	if b := get(bin.ID, testToken); b.BodyBase64 != "AP8=" || b.Body != nil {
		t.Errorf("binary body: %+v", b)
	}
	// lists stay light: no request in them
	r := e.rest(http.MethodGet, "/v1/queues/q/tasks", nil)
	if strings.Contains(string(r.body), `"request"`) {
		t.Errorf("a list carries the requests: %s", r.body)
	}
}

func deref(s *string) string {
	if s == nil {
		return "(nil)"
	}
	return *s
}
