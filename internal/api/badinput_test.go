package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// badRow is one malformed request: REST (method, target) or legacy
// (endpoint), and what it must get.
type badRow struct {
	name string

	// REST
	method, target string
	body           string
	hdr            []string // name, value pairs; "-" removes
	status         int
	code           string // "" accepts any non-empty code
	netHTTP        bool   // refused by net/http before HTQ sees it (plain text)

	// legacy
	endpoint string
	enc      string // "" with form: both encodings
	form     form
	rawCT    string // with body: a raw legacy body of this Content-Type
	lcode    int

	chunked bool     // send without Content-Length
	msgHas  []string // the message names these
}

func restRow(name, method, target, body string, status int, code string, msgHas ...string) badRow {
	return badRow{name: name, method: method, target: target, body: body, status: status, code: code, msgHas: msgHas}
}

func legacyRow(name, endpoint string, f form, lcode int, msgHas ...string) badRow {
	return badRow{name: name, endpoint: endpoint, form: f, lcode: lcode, msgHas: msgHas}
}

func (r badRow) with(hdr ...string) badRow { r.hdr = append(r.hdr, hdr...); return r }
func (r badRow) chunk() badRow             { r.chunked = true; r.name += " (chunked)"; return r }

// send runs one row and checks the answer.
func (row badRow) run(t *testing.T, e *testEnv) {
	t.Helper()
	var body io.Reader
	var b []byte
	h := http.Header{}
	switch {
	case row.endpoint != "" && row.form != nil:
		var ct string
		b, ct = encodeForm(t, row.enc, row.form)
		h.Set("Content-Type", ct)
	case row.endpoint != "":
		b = []byte(row.body)
		h.Set("Content-Type", row.rawCT)
	default:
		b = []byte(row.body)
		h.Set("Authorization", "Bearer "+testToken)
		if row.body != "" {
			h.Set("Content-Type", "application/json")
		}
	}
	if b != nil {
		body = bytes.NewReader(b)
		if row.chunked {
			body = io.MultiReader(body) // unknown length: chunked
		}
	}
	for i := 0; i+1 < len(row.hdr); i += 2 {
		if row.hdr[i+1] == "-" {
			h.Del(row.hdr[i])
		} else {
			h.Set(row.hdr[i], row.hdr[i+1])
		}
	}
	if row.endpoint != "" {
		r := e.send(http.MethodPost, "/api/"+row.endpoint, body, h)
		b := wantLegacy(t, r, row.lcode, row.msgHas...)
		// one line, the generic part once: "参数错误：url: required"
		if strings.Contains(b.Message, "\n") || strings.Count(b.Message, "参数错误") > 1 {
			t.Errorf("legacy message %q: want one line naming the field once", b.Message)
		}
		return
	}
	r := e.send(row.method, row.target, body, h)
	if row.netHTTP {
		if r.status != row.status || len(r.body) == 0 {
			t.Fatalf("got %v, want HTTP %d with a message", r, row.status)
		}
		return
	}
	e.wantError(r, row.status, row.code, row.msgHas...)
	switch r.status {
	case http.StatusUnauthorized:
		if a := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(a, "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", a)
		}
	case http.StatusMethodNotAllowed:
		if r.header.Get("Allow") == "" {
			t.Logf("NOTE: 405 without an Allow header")
		}
	}
}

// TestBadInput sends a malformed request to every REST route and every
// legacy endpoint: each gets the documented 4xx (or legacy error code) with
// a message, the server stays up, and nothing stored before is changed.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// What is stored before: a REST queue with queued, scheduled and
	// idempotent tasks, a legacy queue with tasks, a dead task.
	e.putQueue("pre", map[string]any{"type": "variable", "stepping_time": "1s", "max_time_interval": 5, "concurrency": 2})
	var preIDs []string
	for i := range 3 {
		preIDs = append(preIDs, e.addTask("pre", map[string]any{"url": fmt.Sprintf("http://example.com/pre/%d", i)}).ID)
	}
	preIDs = append(preIDs, e.addTask("pre", map[string]any{"url": "http://example.com/pre/later", "delay": "1h", "idempotency_key": "pre-key"}).ID)
	preIDs = append(preIDs, e.addTask("pre", map[string]any{"url": "http://example.com/pre/at", "run_at": "2031-01-01T00:00:00Z"}).ID)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "legacyq", "type", "real_time", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
	wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "legacyq", "url", "http://example.com/l1", "execute_time", "0", "method", "post",
		"header", `{"X-A":"1"}`, "data", `{"a":"1"}`)), bodyAdded)
	wantBody(t, e.legacy("addTask", encURLEncoded, creds("queue_name", "legacyq", "url", "http://example.com/l2", "execute_time", "2030-01-01 00:00:00")), bodyAdded)
	e.putQueue("deadq", map[string]any{})
	deadID := e.addTask("deadq", map[string]any{"url": "http://example.com/dead"}).ID
	e.killTasks("deadq", 1)

	before := e.snapshot()
	preView := e.rest(http.MethodGet, "/v1/queues/pre", nil).body
	allView := e.legacy("allQueue", encMultipart, creds()).body

	long := func(n int) string { return strings.Repeat("a", n) }
	task := func(fields string) string { return `{"url":"http://example.com/x"` + fields + `}` }
	const (
		s400 = http.StatusBadRequest
		s401 = http.StatusUnauthorized
		s404 = http.StatusNotFound
		s405 = http.StatusMethodNotAllowed
		s413 = http.StatusRequestEntityTooLarge
		s415 = http.StatusUnsupportedMediaType
		s422 = http.StatusUnprocessableEntity
	)
	const (
		get, put, post, del, patch = http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch
	)
	bigJSON := `{"url":"http://example.com/` + long(1<<20) + `"}`
	var batch1001 strings.Builder
	batch1001.WriteString(`{"tasks":[`)
	for i := range 1001 {
		if i > 0 {
			batch1001.WriteByte(',')
		}
		batch1001.WriteString(`{"url":"http://example.com/b"}`)
	}
	batch1001.WriteString(`]}`)
	bigHeaders := `{"url":"http://example.com/x","headers":{"X-Big":"` + long(70000) + `"}}`
	longName := long(201)

	rows := []badRow{
		// authentication
		restRow("no token", get, "/v1/queues", "", s401, "unauthorized").with("Authorization", "-"),
		restRow("wrong token", get, "/v1/queues", "", s401, "unauthorized").with("Authorization", "Bearer wrong"),
		restRow("basic auth", get, "/v1/queues", "", s401, "unauthorized").with("Authorization", "Basic "+testToken),
		restRow("empty bearer", get, "/v1/queues", "", s401, "unauthorized").with("Authorization", "Bearer "),
		restRow("token without scheme", get, "/v1/queues", "", s401, "unauthorized").with("Authorization", testToken),
		restRow("create task without token", post, "/v1/queues/pre/tasks", task(""), s401, "unauthorized").with("Authorization", "-"),
		restRow("batch without token", post, "/v1/queues/pre/tasks/batch", `{"tasks":[`+task("")+`]}`, s401, "unauthorized").with("Authorization", "-"),
		restRow("update queue with wrong token", put, "/v1/queues/pre", `{"concurrency":9}`, s401, "unauthorized").with("Authorization", "Bearer x"),
		restRow("create queue without token", put, "/v1/queues/newq", `{}`, s401, "unauthorized").with("Authorization", "-"),
		restRow("delete queue without token", del, "/v1/queues/pre", "", s401, "unauthorized").with("Authorization", "-"),
		restRow("pause without token", post, "/v1/queues/pre/pause", "", s401, "unauthorized").with("Authorization", "-"),
		restRow("resume without token", post, "/v1/queues/pre/resume", "", s401, "unauthorized").with("Authorization", "-"),
		restRow("get queue without token", get, "/v1/queues/pre", "", s401, "unauthorized").with("Authorization", "-"),
		restRow("list tasks without token", get, "/v1/queues/pre/tasks", "", s401, "unauthorized").with("Authorization", "-"),
		restRow("get task without token", get, "/v1/tasks/"+preIDs[0], "", s401, "unauthorized").with("Authorization", "-"),
		restRow("cancel task without token", del, "/v1/tasks/"+preIDs[0], "", s401, "unauthorized").with("Authorization", "-"),
		restRow("delete dead task without token", del, "/v1/tasks/"+deadID, "", s401, "unauthorized").with("Authorization", "-"),
		restRow("legacy app_token is no bearer token", get, "/v1/queues", "", s401, "unauthorized").with("Authorization", "Bearer "+testAppToken),

		// PUT /v1/queues/{queue}: bodies
		restRow("put invalid JSON", put, "/v1/queues/pre", `{`, s400, "invalid_json"),
		restRow("put invalid JSON new", put, "/v1/queues/newq", `{"type":}`, s400, "invalid_json"),
		restRow("put truncated JSON", put, "/v1/queues/newq", `{"concurrency":3`, s400, "invalid_json"),
		restRow("put invalid UTF-8", put, "/v1/queues/pre", "{\"type\":\"\xff\"}", s400, "invalid_json", "UTF-8"),
		restRow("put empty body", put, "/v1/queues/newq", "", s400, "invalid_json"),
		restRow("put blank body", put, "/v1/queues/pre", " \n", s400, "invalid_json"),
		restRow("put array", put, "/v1/queues/newq", `[]`, s400, "invalid_json"),
		restRow("put string", put, "/v1/queues/newq", `"x"`, s400, "invalid_json"),
		restRow("put two objects", put, "/v1/queues/pre", `{} {}`, s400, "invalid_json"),
		restRow("put null", put, "/v1/queues/newq", `null`, s400, "invalid_json", "null"),
		restRow("put null on an existing queue", put, "/v1/queues/pre", ` null `, s400, "invalid_json"),
		restRow("task null", post, "/v1/queues/pre/tasks", `null`, s400, "invalid_json"),
		restRow("batch null", post, "/v1/queues/pre/tasks/batch", `null`, s400, "invalid_json"),
		restRow("put unknown field", put, "/v1/queues/pre", `{"concurrency":3,"bogus":1}`, s400, "invalid_json", "bogus"),
		restRow("put unknown nested field", put, "/v1/queues/newq", `{"retry":{"tries":3}}`, s400, "invalid_json", "tries"),
		restRow("put legacy field", put, "/v1/queues/newq", `{"legacy":{"type":"foo"}}`, s400, "invalid_json", "legacy"),
		restRow("put concurrency string", put, "/v1/queues/pre", `{"concurrency":"x"}`, s400, "invalid_json", "concurrency"),
		restRow("put concurrency fraction", put, "/v1/queues/pre", `{"concurrency":1.5}`, s400, "invalid_json", "concurrency"),
		restRow("put concurrency huge", put, "/v1/queues/pre", `{"concurrency":1e400}`, s400, "invalid_json"),
		restRow("put type number", put, "/v1/queues/pre", `{"type":5}`, s400, "invalid_json", "type"),
		restRow("put retry array", put, "/v1/queues/pre", `{"retry":[]}`, s400, "invalid_json", "retry"),
		restRow("put type unknown", put, "/v1/queues/pre", `{"type":"foo"}`, s422, "validation_failed", "type"),
		restRow("put type legacy spelling", put, "/v1/queues/newq", `{"type":"real_time"}`, s422, "validation_failed", "type"),
		restRow("put concurrency 0", put, "/v1/queues/pre", `{"concurrency":0}`, s422, "validation_failed", "concurrency"),
		restRow("put concurrency 1001", put, "/v1/queues/newq", `{"concurrency":1001}`, s422, "validation_failed", "concurrency"),
		restRow("put negative rate", put, "/v1/queues/pre", `{"rate":-1}`, s422, "validation_failed", "rate"),
		restRow("put negative burst", put, "/v1/queues/pre", `{"burst":-1}`, s422, "validation_failed", "burst"),
		restRow("put stepping_time -1s", put, "/v1/queues/pre", `{"stepping_time":"-1s"}`, s422, "validation_failed"),
		restRow("put stepping_time abc", put, "/v1/queues/pre", `{"stepping_time":"abc"}`, s422, "validation_failed"),
		restRow("put stepping_time -5", put, "/v1/queues/newq", `{"stepping_time":-5}`, s422, "validation_failed"),
		restRow("put max_time_interval bool", put, "/v1/queues/pre", `{"max_time_interval":true}`, s422, "validation_failed"),
		restRow("put timeout 0", put, "/v1/queues/pre", `{"timeout":0}`, s422, "validation_failed", "timeout"),
		restRow("put timeout 25h", put, "/v1/queues/pre", `{"timeout":"25h"}`, s422, "validation_failed", "timeout"),
		restRow("put max_attempts 0", put, "/v1/queues/pre", `{"retry":{"max_attempts":0}}`, s422, "validation_failed", "max_attempts"),
		restRow("put max_attempts 1001", put, "/v1/queues/pre", `{"retry":{"max_attempts":1001}}`, s422, "validation_failed", "max_attempts"),
		restRow("put backoffs crossed", put, "/v1/queues/pre", `{"retry":{"min_backoff":"10s","max_backoff":"1s"}}`, s422, "validation_failed", "min_backoff"),
		restRow("put ordering unknown", put, "/v1/queues/pre", `{"ordering":"chaos"}`, s422, "validation_failed", "ordering"),
		restRow("put max_backlog 0", put, "/v1/queues/pre", `{"max_backlog":0}`, s422, "validation_failed", "max_backlog"),
		restRow("put multipart", put, "/v1/queues/newq", "--x--", s415, "unsupported_media_type").with("Content-Type", "multipart/form-data; boundary=x"),
		restRow("put body over max_body_bytes", put, "/v1/queues/newq", bigJSON, s413, "payload_too_large"),
		restRow("put body over max_body_bytes", put, "/v1/queues/pre", bigJSON, s413, "payload_too_large").chunk(),

		// queue names in the path
		restRow("put name with a control character", put, "/v1/queues/a%01b", `{}`, s422, "validation_failed", "queue_name"),
		restRow("put name with a newline", put, "/v1/queues/a%0Ab", `{}`, s422, "validation_failed", "queue_name"),
		restRow("put name with DEL", put, "/v1/queues/a%7Fb", `{}`, s422, "validation_failed", "queue_name"),
		restRow("put name over 200 bytes", put, "/v1/queues/"+longName, `{}`, s422, "validation_failed", "queue_name"),
		restRow("put name invalid UTF-8", put, "/v1/queues/a%FFb", `{}`, s422, "validation_failed", "queue_name"),
		restRow("get name over 200 bytes", get, "/v1/queues/"+longName, "", s422, "validation_failed", "queue_name"),
		restRow("create task name with a control character", post, "/v1/queues/a%01b/tasks", task(""), s422, "validation_failed", "queue_name"),
		restRow("list tasks name over 200 bytes", get, "/v1/queues/"+longName+"/tasks", "", s422, "validation_failed", "queue_name"),
		{name: "put bad percent-escape", method: put, target: "/v1/queues/%zz", body: `{}`, status: s400, netHTTP: true},
		{name: "create task bad percent-escape", method: post, target: "/v1/queues/a%2Fb%zz/tasks", body: task(""), status: s400, netHTTP: true},
		{name: "get bad percent-escape", method: get, target: "/v1/queues/%", status: s400, netHTTP: true},

		// queue routes on unknown queues
		restRow("get unknown queue", get, "/v1/queues/newq", "", s404, "queue_not_found"),
		restRow("delete unknown queue", del, "/v1/queues/newq", "", s404, "queue_not_found"),
		restRow("pause unknown queue", post, "/v1/queues/newq/pause", "", s404, "queue_not_found"),
		restRow("resume unknown queue", post, "/v1/queues/newq/resume", "", s404, "queue_not_found"),
		restRow("list tasks of unknown queue", get, "/v1/queues/newq/tasks", "", s404, "queue_not_found"),
		restRow("create task in unknown queue", post, "/v1/queues/newq/tasks", task(""), s404, "queue_not_found"),
		restRow("batch in unknown queue", post, "/v1/queues/newq/tasks/batch", `{"tasks":[`+task("")+`]}`, s404, "queue_not_found"),
		restRow("create task in a legacy name's REST twin", post, "/v1/queues/legacyq%20/tasks", task(""), s404, "queue_not_found"),

		// list queues
		restRow("list queues limit 0", get, "/v1/queues?limit=0", "", s400, "bad_request", "limit"),
		restRow("list queues limit 5000", get, "/v1/queues?limit=5000", "", s400, "bad_request", "limit"),
		restRow("list queues limit -1", get, "/v1/queues?limit=-1", "", s400, "bad_request", "limit"),
		restRow("list queues limit abc", get, "/v1/queues?limit=abc", "", s400, "bad_request", "limit"),
		restRow("list queues limit huge", get, "/v1/queues?limit=99999999999999999999", "", s400, "bad_request", "limit"),

		// POST /v1/queues/{queue}/tasks
		restRow("task missing url", post, "/v1/queues/pre/tasks", `{}`, s422, "validation_failed", "url"),
		restRow("task null url", post, "/v1/queues/pre/tasks", `{"url":null}`, s422, "validation_failed", "url"),
		restRow("task url number", post, "/v1/queues/pre/tasks", `{"url":5}`, s400, "invalid_json", "url"),
		restRow("task headers array", post, "/v1/queues/pre/tasks", task(`,"headers":[]`), s400, "invalid_json", "headers"),
		restRow("task header value number", post, "/v1/queues/pre/tasks", task(`,"headers":{"X-A":5}`), s400, "invalid_json", "headers"),
		restRow("task form array", post, "/v1/queues/pre/tasks", task(`,"method":"POST","form":["a"]`), s400, "invalid_json", "form"),
		restRow("task method number", post, "/v1/queues/pre/tasks", task(`,"method":1`), s400, "invalid_json", "method"),
		restRow("task unknown field", post, "/v1/queues/pre/tasks", task(`,"extra":1`), s400, "invalid_json", "extra"),
		restRow("task legacy field", post, "/v1/queues/pre/tasks", task(`,"execute_time":"0"`), s400, "invalid_json", "execute_time"),
		restRow("task invalid JSON", post, "/v1/queues/pre/tasks", `{"url":"http://example.com/",}`, s400, "invalid_json"),
		restRow("task truncated JSON", post, "/v1/queues/pre/tasks", `{"url":"http://exam`, s400, "invalid_json"),
		restRow("task invalid UTF-8", post, "/v1/queues/pre/tasks", "{\"url\":\"http://example.com/\xc3\x28\"}", s400, "invalid_json", "UTF-8"),
		restRow("task empty body", post, "/v1/queues/pre/tasks", "", s400, "invalid_json"),
		restRow("task two objects", post, "/v1/queues/pre/tasks", task("")+task(""), s400, "invalid_json"),
		restRow("task multipart", post, "/v1/queues/pre/tasks", "--x--", s415, "unsupported_media_type").with("Content-Type", "multipart/form-data; boundary=x"),
		restRow("task url over max_url_bytes", post, "/v1/queues/pre/tasks", `{"url":"http://example.com/`+long(8200)+`"}`, s413, "payload_too_large", "url"),
		restRow("task headers over max_header_bytes", post, "/v1/queues/pre/tasks", bigHeaders, s413, "payload_too_large", "header"),
		restRow("task body over max_body_bytes", post, "/v1/queues/pre/tasks", bigJSON, s413, "payload_too_large"),
		restRow("task body over max_body_bytes", post, "/v1/queues/pre/tasks", bigJSON, s413, "payload_too_large").chunk(),
		restRow("task url ftp", post, "/v1/queues/pre/tasks", `{"url":"ftp://example.com/f"}`, s422, "validation_failed", "url"),
		restRow("task url javascript", post, "/v1/queues/pre/tasks", `{"url":"javascript:alert(1)"}`, s422, "validation_failed", "url"),
		restRow("task url file", post, "/v1/queues/pre/tasks", `{"url":"file:///etc/passwd"}`, s422, "validation_failed", "url"),
		restRow("task url no host", post, "/v1/queues/pre/tasks", `{"url":"http://"}`, s422, "validation_failed", "url"),
		restRow("task url empty host", post, "/v1/queues/pre/tasks", `{"url":"http:///path"}`, s422, "validation_failed", "url"),
		restRow("task url port only", post, "/v1/queues/pre/tasks", `{"url":"http://:80/"}`, s422, "validation_failed", "url"),
		restRow("task url relative", post, "/v1/queues/pre/tasks", `{"url":"/relative"}`, s422, "validation_failed", "url"),
		restRow("task url without scheme", post, "/v1/queues/pre/tasks", `{"url":"example.com/x"}`, s422, "validation_failed", "url"),
		restRow("task url with spaces", post, "/v1/queues/pre/tasks", `{"url":"http://exa mple.com/a b"}`, s422, "validation_failed", "url"),
		restRow("task url with newline", post, "/v1/queues/pre/tasks", `{"url":"http://example.com/\n"}`, s422, "validation_failed", "url"),
		restRow("task url bad IPv6", post, "/v1/queues/pre/tasks", `{"url":"http://[::1/"}`, s422, "validation_failed", "url"),
		restRow("task url bad escape", post, "/v1/queues/pre/tasks", `{"url":"http://example.com/%zz"}`, s422, "validation_failed", "url"),
		restRow("task delay -1s", post, "/v1/queues/pre/tasks", task(`,"delay":"-1s"`), s422, "validation_failed"),
		restRow("task delay abc", post, "/v1/queues/pre/tasks", task(`,"delay":"abc"`), s422, "validation_failed"),
		restRow("task delay -5", post, "/v1/queues/pre/tasks", task(`,"delay":-5`), s422, "validation_failed"),
		restRow("task delay 1000 years", post, "/v1/queues/pre/tasks", task(`,"delay":"8760000h"`), s422, "validation_failed"),
		restRow("task run_at yesterday", post, "/v1/queues/pre/tasks", task(`,"run_at":"yesterday"`), s422, "validation_failed", "run_at"),
		restRow("task run_at without zone", post, "/v1/queues/pre/tasks", task(`,"run_at":"2030-01-02 03:04:05"`), s422, "validation_failed", "run_at"),
		restRow("task run_at number", post, "/v1/queues/pre/tasks", task(`,"run_at":1893456000`), s400, "invalid_json", "run_at"),
		restRow("task run_at and delay", post, "/v1/queues/pre/tasks", task(`,"run_at":"2030-01-02T03:04:05Z","delay":5`), s422, "validation_failed", "run_at"),
		restRow("task run_at year 0", post, "/v1/queues/pre/tasks", task(`,"run_at":"0000-01-01T00:00:00Z"`), s422, "validation_failed", "run_at"),
		restRow("task GET with body", post, "/v1/queues/pre/tasks", task(`,"method":"GET","body":{"a":1}`), s422, "validation_failed", "body"),
		restRow("task default GET with body", post, "/v1/queues/pre/tasks", task(`,"body":"x"`), s422, "validation_failed", "body"),
		restRow("task HEAD with form", post, "/v1/queues/pre/tasks", task(`,"method":"head","form":{"a":"1"}`), s422, "validation_failed", "body"),
		restRow("task method with space", post, "/v1/queues/pre/tasks", task(`,"method":"GE T"`), s422, "validation_failed", "method"),
		restRow("task method too long", post, "/v1/queues/pre/tasks", task(`,"method":"`+long(40)+`"`), s422, "validation_failed", "method"),
		restRow("task max_attempts 0", post, "/v1/queues/pre/tasks", task(`,"max_attempts":0`), s422, "validation_failed", "max_attempts"),
		restRow("task max_attempts 1001", post, "/v1/queues/pre/tasks", task(`,"max_attempts":1001`), s422, "validation_failed", "max_attempts"),
		restRow("task max_attempts string", post, "/v1/queues/pre/tasks", task(`,"max_attempts":"3"`), s400, "invalid_json", "max_attempts"),
		restRow("task timeout 0", post, "/v1/queues/pre/tasks", task(`,"timeout":0`), s422, "validation_failed", "timeout"),
		restRow("task timeout 25h", post, "/v1/queues/pre/tasks", task(`,"timeout":"25h"`), s422, "validation_failed", "timeout"),
		restRow("task body and form", post, "/v1/queues/pre/tasks", task(`,"method":"POST","body":"x","form":{"a":"1"}`), s422, "validation_failed", "body"),
		restRow("task body_base64 invalid", post, "/v1/queues/pre/tasks", task(`,"method":"POST","body_base64":"!!"`), s422, "validation_failed", "body_base64"),
		restRow("task form_encoding unknown", post, "/v1/queues/pre/tasks", task(`,"method":"POST","form":{"a":"1"},"form_encoding":"xml"`), s422, "validation_failed", "form_encoding"),
		restRow("task form_encoding without form", post, "/v1/queues/pre/tasks", task(`,"method":"POST","form_encoding":"multipart"`), s422, "validation_failed", "form_encoding"),
		restRow("task header name invalid", post, "/v1/queues/pre/tasks", task(`,"headers":{"Bad Name":"x"}`), s422, "validation_failed", "header"),
		restRow("task header value with CRLF", post, "/v1/queues/pre/tasks", task(`,"headers":{"X-A":"a\r\nX-B: b"}`), s422, "validation_failed", "header"),
		restRow("task idempotency_key too long", post, "/v1/queues/pre/tasks", task(`,"idempotency_key":"`+long(300)+`"`), s422, "validation_failed", "idempotency_key"),
		restRow("task idempotency key header differs", post, "/v1/queues/pre/tasks", task(`,"idempotency_key":"a"`), s422, "validation_failed", "idempotency_key").with("Idempotency-Key", "b"),
		restRow("task repeat of an idempotency key with a bad body", post, "/v1/queues/pre/tasks", `{"url":"ftp://x","idempotency_key":"pre-key"}`, s422, "validation_failed", "url"),

		// POST /v1/queues/{queue}/tasks/batch
		restRow("batch without tasks", post, "/v1/queues/pre/tasks/batch", `{}`, s422, "validation_failed", "tasks"),
		restRow("batch empty", post, "/v1/queues/pre/tasks/batch", `{"tasks":[]}`, s422, "validation_failed", "tasks"),
		restRow("batch tasks string", post, "/v1/queues/pre/tasks/batch", `{"tasks":"x"}`, s400, "invalid_json", "tasks"),
		restRow("batch bare array", post, "/v1/queues/pre/tasks/batch", `[`+task("")+`]`, s400, "invalid_json"),
		restRow("batch one invalid", post, "/v1/queues/pre/tasks/batch", `{"tasks":[`+task("")+`,{"url":"ftp://x"},`+task("")+`]}`, s422, "validation_failed", "tasks[1]"),
		restRow("batch one too large", post, "/v1/queues/pre/tasks/batch", `{"tasks":[`+task("")+`,{"url":"http://example.com/`+long(9000)+`"}]}`, s413, "payload_too_large", "tasks[1]"),
		restRow("batch unknown field in an item", post, "/v1/queues/pre/tasks/batch", `{"tasks":[`+task(`,"nope":1`)+`]}`, s400, "invalid_json", "nope"),
		restRow("batch over max_batch", post, "/v1/queues/pre/tasks/batch", batch1001.String(), s413, "payload_too_large", "1000"),
		restRow("batch truncated", post, "/v1/queues/pre/tasks/batch", `{"tasks":[`+task(""), s400, "invalid_json"),
		restRow("batch empty body", post, "/v1/queues/pre/tasks/batch", "", s400, "invalid_json"),
		restRow("batch over max_body_bytes", post, "/v1/queues/pre/tasks/batch", `{"tasks":[`+bigJSON+`]}`, s413, "payload_too_large"),

		// GET /v1/queues/{queue}/tasks
		restRow("list state bogus", get, "/v1/queues/pre/tasks?state=bogus", "", s400, "bad_request", "state"),
		restRow("list state succeeded", get, "/v1/queues/pre/tasks?state=succeeded", "", s400, "bad_request", "state"),
		restRow("list state upper case", get, "/v1/queues/pre/tasks?state=QUEUED", "", s400, "bad_request", "state"),
		restRow("list limit 0", get, "/v1/queues/pre/tasks?limit=0", "", s400, "bad_request", "limit"),
		restRow("list limit 5000", get, "/v1/queues/pre/tasks?limit=5000", "", s400, "bad_request", "limit"),
		restRow("list limit x", get, "/v1/queues/pre/tasks?state=scheduled&limit=x", "", s400, "bad_request", "limit"),
		restRow("list queued cursor garbage", get, "/v1/queues/pre/tasks?state=queued&cursor=zzz", "", s400, "bad_request", "cursor"),
		restRow("list scheduled cursor garbage", get, "/v1/queues/pre/tasks?state=scheduled&cursor=zzz", "", s400, "bad_request", "cursor"),
		restRow("list scheduled cursor negative", get, "/v1/queues/pre/tasks?state=scheduled&cursor=-1", "", s400, "bad_request", "cursor"),
		restRow("list dead cursor stream id", get, "/v1/queues/deadq/tasks?state=dead&cursor=1-0", "", s400, "bad_request", "cursor"),

		// /v1/tasks/{id}
		restRow("get unknown task", get, "/v1/tasks/ff000000000000", "", s404, "task_not_found"),
		restRow("get malformed task id", get, "/v1/tasks/nope", "", s404, "task_not_found"),
		restRow("get upper-case task id", get, "/v1/tasks/"+strings.ToUpper(preIDs[0]), "", s404, "task_not_found"),
		restRow("get task id too long", get, "/v1/tasks/"+preIDs[0]+"0", "", s404, "task_not_found"),
		restRow("get task id with NUL", get, "/v1/tasks/%00", "", s404, "task_not_found"),
		restRow("get task id in another partition", get, "/v1/tasks/"+otherPartition(preIDs[0]), "", s404, "task_not_found"),
		restRow("get unknown task with a body", get, "/v1/tasks/ff000000000000", `{"x":1}`, s404, "task_not_found"),
		restRow("cancel unknown task", del, "/v1/tasks/ff000000000000", "", s404, "task_not_found"),
		restRow("cancel malformed task id", del, "/v1/tasks/..%2F..%2Fetc", "", s404, ""),
		restRow("cancel task id over 14 hex", del, "/v1/tasks/"+long(5000), "", s404, "task_not_found"),

		// wrong methods and routes
		restRow("PATCH queue", patch, "/v1/queues/pre", `{}`, s405, "method_not_allowed"),
		restRow("POST queue", post, "/v1/queues/pre", `{}`, s405, "method_not_allowed"),
		restRow("DELETE queue list", del, "/v1/queues", "", s405, "method_not_allowed"),
		restRow("GET pause", get, "/v1/queues/pre/pause", "", s405, "method_not_allowed"),
		restRow("DELETE resume", del, "/v1/queues/pre/resume", "", s405, "method_not_allowed"),
		restRow("PUT tasks", put, "/v1/queues/pre/tasks", task(""), s405, "method_not_allowed"),
		restRow("GET batch", get, "/v1/queues/pre/tasks/batch", "", s405, "method_not_allowed"),
		restRow("PUT task", put, "/v1/tasks/"+preIDs[0], `{}`, s405, "method_not_allowed"),
		restRow("POST task", post, "/v1/tasks/"+preIDs[0], `{}`, s405, "method_not_allowed"),
		restRow("POST healthz", post, "/healthz", "", s405, "method_not_allowed"),
		restRow("DELETE readyz", del, "/readyz", "", s405, "method_not_allowed"),
		restRow("POST metrics", post, "/metrics", "", s405, "method_not_allowed"),
		restRow("DELETE root", del, "/", "", s405, "method_not_allowed"),
		restRow("GET legacy addTask", get, "/api/addTask", "", s405, "method_not_allowed"),
		restRow("PUT legacy addQueue", put, "/api/addQueue", "", s405, "method_not_allowed"),
		restRow("GET legacy allQueue", get, "/api/allQueue?app_key="+testAppKey+"&app_token="+testAppToken, "", s405, "method_not_allowed"),
		restRow("unknown route", get, "/v2/queues", "", s404, "not_found"),
		restRow("unknown v1 route", get, "/v1/nope", "", s404, "not_found"),
		restRow("unknown legacy endpoint", post, "/api/addQueues", "", s404, "not_found"),

		// legacy: addQueue
		legacyRow("addQueue missing queue_name", "addQueue", creds("type", "real_time", "stepping_time", "0", "max_time_interval", "0"), 1005, "queue_name"),
		legacyRow("addQueue empty queue_name", "addQueue", creds("queue_name", "", "type", "real_time"), 1005, "queue_name"),
		legacyRow("addQueue queue_name with a control character", "addQueue", creds("queue_name", "a\x01b", "type", "real_time"), 1005, "queue_name"),
		legacyRow("addQueue queue_name with a newline", "addQueue", creds("queue_name", "a\nb", "type", "real_time"), 1005, "queue_name"),
		legacyRow("addQueue queue_name over 200 bytes", "addQueue", creds("queue_name", longName, "type", "real_time"), 1005, "queue_name"),
		legacyRow("addQueue queue_name invalid UTF-8", "addQueue", creds("queue_name", "a\xffb", "type", "real_time"), 1005, "queue_name"),
		legacyRow("addQueue stepping_time abc", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "abc", "max_time_interval", "5"), 1005, "stepping_time"),
		legacyRow("addQueue stepping_time -1", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "-1", "max_time_interval", "5"), 1005, "stepping_time"),
		legacyRow("addQueue stepping_time with a unit", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "1.5s", "max_time_interval", "5"), 1005, "stepping_time"),
		legacyRow("addQueue stepping_time 2s", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "2s"), 1005, "stepping_time"),
		legacyRow("addQueue stepping_time decimal comma", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "1,5"), 1005, "stepping_time"),
		legacyRow("addQueue stepping_time huge", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "99999999999999999999"), 1005, "stepping_time"),
		legacyRow("addQueue max_time_interval x", "addQueue", creds("queue_name", "newq", "type", "variable", "stepping_time", "2", "max_time_interval", "x"), 1005, "max_time_interval"),
		legacyRow("addQueue existing legacy queue", "addQueue", creds("queue_name", "legacyq", "type", "variable", "stepping_time", "1", "max_time_interval", "2"), 1002),
		legacyRow("addQueue existing REST queue", "addQueue", creds("queue_name", "pre", "type", "real_time"), 1002),
		legacyRow("addQueue malformed urlencoding", "addQueue", nil, 1005),

		// legacy: deleteQueue, countQueue, allQueue
		legacyRow("deleteQueue missing queue_name", "deleteQueue", creds(), 1005, "queue_name"),
		legacyRow("deleteQueue empty queue_name", "deleteQueue", creds("queue_name", ""), 1005, "queue_name"),
		legacyRow("deleteQueue unknown", "deleteQueue", creds("queue_name", "newq"), 1003),
		legacyRow("deleteQueue queue_name with a control character", "deleteQueue", creds("queue_name", "pre\x00"), 1005, "queue_name"),
		legacyRow("deleteQueue queue_name over 200 bytes", "deleteQueue", creds("queue_name", longName), 1005, "queue_name"),
		legacyRow("countQueue missing queue_name", "countQueue", creds(), 1005, "queue_name"),
		legacyRow("countQueue queue_name with a control character", "countQueue", creds("queue_name", "a\tb"), 1005, "queue_name"),
		legacyRow("allQueue wrong token", "allQueue", fields("app_key", testAppKey, "app_token", "x"), 1000),

		// legacy: addTask
		legacyRow("addTask missing url", "addTask", creds("queue_name", "legacyq", "execute_time", "0", "method", "get", "header", "[]", "data", "[]"), 1005, "url"),
		legacyRow("addTask missing url, new queue", "addTask", creds("queue_name", "newq"), 1005, "url"),
		legacyRow("addTask empty url", "addTask", creds("queue_name", "legacyq", "url", ""), 1005, "url"),
		legacyRow("addTask url ftp", "addTask", creds("queue_name", "legacyq", "url", "ftp://example.com/"), 1005, "url"),
		legacyRow("addTask url javascript", "addTask", creds("queue_name", "newq", "url", "javascript:alert(1)"), 1005, "url"),
		legacyRow("addTask url no host", "addTask", creds("queue_name", "legacyq", "url", "http:///x"), 1005, "url"),
		legacyRow("addTask url with a space in the host", "addTask", creds("queue_name", "legacyq", "url", "http://exa mple.com/a b"), 1005, "url"),
		legacyRow("addTask url relative", "addTask", creds("url", "/callback"), 1005, "url"),
		legacyRow("addTask url over max_url_bytes", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/"+long(9000)), 1006, "url"),
		legacyRow("addTask header not JSON", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", "X-A: 1"), 1005, "header"),
		legacyRow("addTask header truncated JSON", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `{"X-A":"1"`), 1005, "header"),
		legacyRow("addTask header list without a colon", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `["X-A 1"]`), 1005, "header"),
		legacyRow("addTask header string", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `"X-A"`), 1005, "header"),
		legacyRow("addTask header number", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `5`), 1005, "header"),
		legacyRow("addTask header trailing data", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `{"X-A":"1"} {}`), 1005, "header"),
		legacyRow("addTask header array trailing data", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `[] []`), 1005, "header"),
		legacyRow("addTask header invalid name", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `{"Bad Name":"1"}`), 1005, "header"),
		legacyRow("addTask header value with CRLF", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `{"X-A":"1\r\nX-B: 2"}`), 1005, "header"),
		legacyRow("addTask header invalid UTF-8", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", "{\"X-A\":\"\xff\"}"), 1005, "header"),
		legacyRow("addTask header over max_header_bytes", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "header", `{"X-A":"`+long(70000)+`"}`), 1006),
		legacyRow("addTask data not JSON", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "method", "post", "data", "a=1"), 1005, "data"),
		legacyRow("addTask data list, trailing comma", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "method", "post", "data", `[1,2,]`), 1005, "data"),
		legacyRow("addTask data truncated", "addTask", creds("queue_name", "newq", "url", "http://example.com/", "method", "post", "data", `{"a":`), 1005, "data"),
		legacyRow("addTask data on GET still parsed", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "method", "get", "data", `{`), 1005, "data"),
		legacyRow("addTask method with space", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "method", "G ET"), 1005),
		legacyRow("addTask method with newline", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "method", "get\n"), 1005),
		legacyRow("addTask queue_name with a control character", "addTask", creds("queue_name", "q\x1b", "url", "http://example.com/"), 1005, "queue_name"),
		legacyRow("addTask queue_name over 200 bytes", "addTask", creds("queue_name", longName, "url", "http://example.com/"), 1005, "queue_name"),
		legacyRow("addTask body over max_body_bytes", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "data", `{"a":"`+long(1<<20)+`"}`), 1006),
		legacyRow("addTask body over max_body_bytes", "addTask", creds("queue_name", "legacyq", "url", "http://example.com/", "data", `{"a":"`+long(1<<20)+`"}`), 1006).chunk(),
		legacyRow("addTask body over max_body_bytes, no credentials", "addTask", fields("data", long(1<<20+10)), 1006),
		legacyRow("addTask truncated multipart", "addTask", nil, 1000),
		legacyRow("addTask malformed urlencoding", "addTask", nil, 1005),
	}
	rows = expandLegacy(t, rows)

	t.Run("rows", func(t *testing.T) {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				t.Parallel()
				e := *e
				e.t = t
				row.run(t, &e)
			})
		}
	})
	t.Logf("%d malformed requests", len(rows))

	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("malformed requests changed Redis: %v", d)
	}
	if got := e.rest(http.MethodGet, "/v1/queues/pre", nil).body; !bytes.Equal(got, preView) {
		t.Errorf("queue pre changed:\nbefore %s\nafter  %s", preView, got)
	}
	if got := e.legacy("allQueue", encURLEncoded, creds()).body; !bytes.Equal(got, allView) {
		t.Errorf("allQueue changed:\nbefore %s\nafter  %s", allView, got)
	}
	for _, id := range preIDs {
		var g taskJSON
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+id, nil), http.StatusOK, &g)
	}
	if r := e.rest(http.MethodGet, "/healthz", nil, "Authorization", "-"); r.status != http.StatusOK {
		t.Fatalf("/healthz after the table: %v", r)
	}
	if r := e.rest(http.MethodGet, "/readyz", nil, "Authorization", "-"); r.status != http.StatusOK {
		t.Fatalf("/readyz after the table: %v", r)
	}
}

// expandLegacy turns each legacy row into one row per encoding, and fills
// in the raw bodies of the rows that need one.
func expandLegacy(t *testing.T, rows []badRow) []badRow {
	var out []badRow
	for _, r := range rows {
		if r.endpoint == "" {
			out = append(out, r)
			continue
		}
		switch r.name {
		case "addTask truncated multipart":
			b, ct := encodeForm(t, encMultipart, creds("queue_name", "legacyq", "url", "http://example.com/"))
			r.body, r.rawCT = string(b[:len(b)-10]), ct
			out = append(out, r)
			continue
		case "addQueue malformed urlencoding", "addTask malformed urlencoding":
			r.body = "app_key=" + testAppKey + "&app_token=" + testAppToken + "&queue_name=%zz&url=http://example.com/"
			r.rawCT = "application/x-www-form-urlencoded"
			out = append(out, r)
			continue
		}
		for _, enc := range encodings {
			c := r
			c.enc = enc
			c.name = r.name + "/" + enc
			out = append(out, c)
		}
	}
	return out
}

// otherPartition returns id with its partition digits changed: a well-formed
// id that names no task.
func otherPartition(id string) string {
	p := "00"
	if id[:2] == "00" {
		p = "01"
	}
	return p + id[2:]
}
