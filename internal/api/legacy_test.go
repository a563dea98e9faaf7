package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

var legacyEndpoints = []string{"addQueue", "deleteQueue", "allQueue", "countQueue", "addTask"}

// sdkFields are each endpoint's fields after the credentials, in the PHP
// SDK's order, with valid values.
var sdkFields = map[string]form{
	"addQueue":    fields("queue_name", "authq", "type", "variable", "stepping_time", "2", "max_time_interval", "5"),
	"deleteQueue": fields("queue_name", "authq"),
	"allQueue":    nil,
	"countQueue":  fields("queue_name", "authq"),
	"addTask": fields("queue_name", "authq", "url", "http://example.com/x", "execute_time", "0", "method", "post",
		"header", "[]", "data", "[]"),
}

type authVariant struct {
	name string
	f    func(rest form) form
}

func TestLegacyAuthFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "authq")), bodyAdded)
	before := e.snapshot()
	variants := []authVariant{
		{"no fields at all", func(form) form { return nil }},
		{"no credentials", func(rest form) form { return rest }},
		{"only app_key", func(rest form) form { return append(fields("app_key", testAppKey), rest...) }},
		{"only app_token", func(rest form) form { return append(fields("app_token", testAppToken), rest...) }},
		{"wrong app_key", func(rest form) form {
			return append(fields("app_key", "nope", "app_token", testAppToken), rest...)
		}},
		{"wrong app_token", func(rest form) form {
			return append(fields("app_key", testAppKey, "app_token", "nope"), rest...)
		}},
		{"swapped", func(rest form) form {
			return append(fields("app_key", testAppToken, "app_token", testAppKey), rest...)
		}},
		{"empty values", func(rest form) form { return append(fields("app_key", "", "app_token", ""), rest...) }},
		{"token with a trailing space", func(rest form) form {
			return append(fields("app_key", testAppKey, "app_token", testAppToken+" "), rest...)
		}},
		{"key in another case", func(rest form) form {
			return append(fields("app_key", strings.ToUpper(testAppKey), "app_token", testAppToken), rest...)
		}},
		{"credentials only, other fields missing, wrong token", func(form) form {
			return fields("app_key", testAppKey, "app_token", "x")
		}},
		{"invalid fields and no credentials", func(form) form {
			return fields("queue_name", "bad\x01name", "url", "ftp://x", "header", "{", "data", "[1]", "execute_time", "tomorrow",
				"stepping_time", "abc")
		}},
	}
	t.Run("calls", func(t *testing.T) {
		testLegacyAuthCalls(t, e, variants)
	})
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("unauthenticated calls wrote to Redis: %v", d)
	}
}

func testLegacyAuthCalls(t *testing.T, e *testEnv, variants []authVariant) {
	for _, ep := range legacyEndpoints {
		for _, enc := range encodings {
			for _, v := range variants {
				t.Run(ep+"/"+enc+"/"+v.name, func(t *testing.T) {
					t.Parallel()
					e := *e
					e.t = t
					wantBody(t, e.legacy(ep, enc, v.f(sdkFields[ep])), bodyAuthFailed)
				})
			}
		}
		t.Run(ep+"/no body", func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			wantBody(t, e.send(http.MethodPost, "/api/"+ep, nil, nil), bodyAuthFailed)
		})
		t.Run(ep+"/credentials in the query string", func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			body, ct := encodeForm(t, encURLEncoded, sdkFields[ep])
			r := e.send(http.MethodPost, "/api/"+ep+"?app_key="+testAppKey+"&app_token="+testAppToken,
				bytes.NewReader(body), http.Header{"Content-Type": {ct}})
			wantBody(t, r, bodyAuthFailed)
		})
		t.Run(ep+"/JSON body", func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			r := e.send(http.MethodPost, "/api/"+ep, strings.NewReader(`{"app_key":"`+testAppKey+`","app_token":"`+testAppToken+`"}`),
				http.Header{"Content-Type": {"application/json"}})
			wantBody(t, r, bodyAuthFailed)
		})
	}
}

func TestLegacyQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, enc := range encodings {
		t.Run(enc, func(t *testing.T) {
			e := *e
			e.t = t
			q := "q_" + enc
			wantBody(t, e.legacy("addQueue", enc, creds("queue_name", q, "type", "real_time", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
			wantBody(t, e.legacy("addQueue", enc, creds("queue_name", q, "type", "real_time", "stepping_time", "0", "max_time_interval", "0")), bodyQueueExists)
			wantBody(t, e.legacy("addQueue", enc, creds("queue_name", q, "type", "variable", "stepping_time", "1", "max_time_interval", "9")), bodyQueueExists)
			wantBody(t, e.legacy("countQueue", enc, creds("queue_name", q)), `{"error_code":0,"count":0}`)
			wantBody(t, e.legacy("deleteQueue", enc, creds("queue_name", "no_such_"+enc)), bodyNoQueue)
			wantBody(t, e.legacy("deleteQueue", enc, creds("queue_name", q)), bodyDeleted)
			wantBody(t, e.legacy("deleteQueue", enc, creds("queue_name", q)), bodyNoQueue)
			// deleted: the name can be used again
			wantBody(t, e.legacy("addQueue", enc, creds("queue_name", q, "type", "variable", "stepping_time", "1", "max_time_interval", "9")), bodyAdded)
			wantBody(t, e.legacy("deleteQueue", enc, creds("queue_name", q)), bodyDeleted)
		})
	}
}

func TestLegacyAllQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, enc := range encodings {
		wantBody(t, e.legacy("allQueue", enc, creds()), `[]`)
	}
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "q1", "type", "real_time", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
	wantBody(t, e.legacy("addQueue", encURLEncoded, creds("queue_name", "q2", "type", "foo")), bodyAdded)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "q3", "type", "variable", "stepping_time", "2", "max_time_interval", "5")), bodyAdded)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "q4", "type", "variable", "stepping_time", " 03", "max_time_interval", "10")), bodyAdded)
	wantBody(t, e.legacy("addQueue", encURLEncoded, creds("queue_name", "队列/五", "type", "real_time", "stepping_time", "1")), bodyAdded)
	wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "q5_auto", "url", "http://example.com/")), bodyAdded)
	e.putQueue("r1", map[string]any{"type": "variable", "stepping_time": "2s", "max_time_interval": 7})
	e.putQueue("r2", map[string]any{})
	want := `[` +
		`{"queue_name":"q1","attribute":{"type":"real_time","stepping_time":"0","max_time_interval":"0"}},` +
		`{"queue_name":"q2","attribute":{"type":"foo"}},` +
		`{"queue_name":"q3","attribute":{"type":"variable","stepping_time":"2","max_time_interval":"5"}},` +
		`{"queue_name":"q4","attribute":{"type":"variable","stepping_time":" 03","max_time_interval":"10"}},` +
		`{"queue_name":"q5_auto","attribute":{"type":"real_time"}},` +
		`{"queue_name":"r1","attribute":{"type":"variable","stepping_time":"2","max_time_interval":"7"}},` +
		`{"queue_name":"r2","attribute":{"type":"real_time"}},` +
		`{"queue_name":"队列/五","attribute":{"type":"real_time","stepping_time":"1"}}` +
		`]`
	for _, enc := range encodings {
		wantBody(t, e.legacy("allQueue", enc, creds()), want)
	}
	// the legacy attributes also made the right queues
	for name, wantType := range map[string]string{"q1": "realtime", "q2": "realtime", "q3": "variable", "q5_auto": "realtime"} {
		if q := e.getQueue(name); q.Type != wantType {
			t.Errorf("queue %s type %q, want %q", name, q.Type, wantType)
		}
	}
	var q3 struct {
		SteppingTime    float64 `json:"stepping_time"`
		MaxTimeInterval float64 `json:"max_time_interval"`
	}
	e.must(e.rest(http.MethodGet, "/v1/queues/q3", nil), http.StatusOK, &q3)
	if q3.SteppingTime != 2 || q3.MaxTimeInterval != 5 {
		t.Errorf("q3 = %+v", q3)
	}
}

func TestLegacyCountQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, enc := range encodings {
		wantBody(t, e.legacy("countQueue", enc, creds("queue_name", "unknown")), `{"error_code":0,"count":0}`)
	}
	for i := range 3 {
		wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "c", "url", fmt.Sprintf("http://example.com/%d", i), "execute_time", "0")), bodyAdded)
	}
	wantBody(t, e.legacy("addTask", encURLEncoded, creds("queue_name", "c", "url", "http://example.com/f", "execute_time", "2030-01-01 00:00:00")), bodyAdded)
	e.addTask("c", map[string]any{"url": "http://example.com/r", "delay": "1h"})
	for _, enc := range encodings {
		wantBody(t, e.legacy("countQueue", enc, creds("queue_name", "c")), `{"error_code":0,"count":5}`)
	}
	// a dead task is finished; an active one is not
	e.killTasks("c", 1)
	if _, err := e.st.Claim(e.ctx, "c", "x", store.ClaimOptions{TTL: 10 * time.Second, Grace: 0, Want: 1}); err != nil {
		t.Fatal(err)
	}
	if q := e.getQueue("c"); q.Counts.Active != 1 || q.Counts.Dead != 1 {
		t.Fatalf("counts %+v", q.Counts)
	}
	wantBody(t, e.legacy("countQueue", encMultipart, creds("queue_name", "c")), `{"error_code":0,"count":4}`)
	// the queue was not created by counting it
	wantBody(t, e.legacy("deleteQueue", encMultipart, creds("queue_name", "unknown")), bodyNoQueue)
}

func TestLegacyAddTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "existing", "type", "variable", "stepping_time", "2", "max_time_interval", "5")), bodyAdded)
	tests := []struct {
		name   string
		fields form // after the credentials; queue_name is added unless given
		queue  string
		method string
		header []task.Field
		kind   task.BodyKind
		form   []task.Field
	}{
		{"sdk defaults", fields("url", "http://example.com/a", "execute_time", "0", "method", "get", "header", "[]", "data", "[]"),
			"", "GET", nil, task.BodyNone, nil},
		{"only url", fields("url", "http://example.com/a"), "", "GET", nil, task.BodyNone, nil},
		{"method omitted", fields("url", "http://example.com/a", "header", "[]", "data", "[]"), "", "GET", nil, task.BodyNone, nil},
		{"method upper", fields("url", "http://example.com/a", "method", "POST"), "", "POST", nil, task.BodyNone, nil},
		{"method mixed case", fields("url", "http://example.com/a", "method", "pUt"), "", "PUT", nil, task.BodyNone, nil},
		{"method delete", fields("url", "http://example.com/a", "method", "delete"), "", "DELETE", nil, task.BodyNone, nil},
		{"header and data", fields("url", "http://example.com/a", "execute_time", "0", "method", "post",
			"header", `{"X-Zeta":"z","Authorization":"Bearer t","X-Num":5}`, "data", `{"zz":"1","aa":"2","n":3,"b":true,"nil":null,"s":"中文"}`),
			"", "POST",
			[]task.Field{{Name: "X-Zeta", Value: "z"}, {Name: "Authorization", Value: "Bearer t"}, {Name: "X-Num", Value: "5"}},
			task.BodyMultipart,
			[]task.Field{{Name: "zz", Value: "1"}, {Name: "aa", Value: "2"}, {Name: "n", Value: "3"}, {Name: "b", Value: "true"}, {Name: "nil", Value: ""}, {Name: "s", Value: "中文"}}},
		{"data on a GET is not sent", fields("url", "http://example.com/a", "method", "get", "header", `{"X-A":"1"}`, "data", `{"a":"1"}`),
			"", "GET", []task.Field{{Name: "X-A", Value: "1"}}, task.BodyNone, nil},
		{"data on a HEAD is not sent", fields("url", "http://example.com/a", "method", "head", "data", `{"a":"1"}`),
			"", "HEAD", nil, task.BodyNone, nil},
		{"empty header and data objects", fields("url", "http://example.com/a", "method", "post", "header", "{}", "data", "{}"),
			"", "POST", nil, task.BodyNone, nil},
		{"empty header and data", fields("url", "http://example.com/a", "method", "post", "header", "", "data", ""),
			"", "POST", nil, task.BodyNone, nil},
		{"existing variable queue", fields("queue_name", "existing", "url", "http://example.com/v"), "existing", "GET", nil, task.BodyNone, nil},
		{"queue_name omitted", fields("url", "http://example.com/default", "execute_time", "0"), "default_queue", "GET", nil, task.BodyNone, nil},
		{"queue_name empty", fields("queue_name", "", "url", "http://example.com/default2"), "default_queue", "GET", nil, task.BodyNone, nil},
	}
	for i, tc := range tests {
		for _, enc := range encodings {
			t.Run(tc.name+"/"+enc, func(t *testing.T) {
				t.Parallel()
				e := *e
				e.t = t
				q, f := tc.queue, tc.fields
				if q == "" {
					q = fmt.Sprintf("auto_%d_%s", i, enc)
					f = append(fields("queue_name", q), f...)
				}
				var u string
				for _, kv := range f {
					if kv[0] == "url" {
						u = kv[1]
					}
				}
				wantBody(t, e.legacy("addTask", enc, creds(flatten(f)...)), bodyAdded)
				var ti *store.TaskInfo
				for _, c := range e.storedTasks(q, task.StateQueued) {
					if c.Spec.URL == u {
						ti = c
					}
				}
				if ti == nil {
					t.Fatalf("no queued task %s in %q", u, q)
				}
				s := ti.Spec
				if s.Method != tc.method || s.URL != u || s.BodyKind != tc.kind || !reflect.DeepEqual(s.Header, tc.header) ||
					!reflect.DeepEqual(s.Form, tc.form) || s.Body != "" || s.RunAtMs != 0 || s.CreatedMs != testNow.UnixMilli() {
					t.Fatalf("stored spec %+v", s)
				}
			})
		}
	}
	t.Run("auto-created queues are real_time", func(t *testing.T) {
		t.Parallel()
		e := *e
		e.t = t
		wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "brand_new", "url", "http://example.com/")), bodyAdded)
		if q := e.getQueue("brand_new"); q.Type != "realtime" || q.Counts.Queued != 1 {
			t.Fatalf("auto-created queue %+v", q)
		}
		wantBody(t, e.legacy("addTask", encURLEncoded, creds("url", "http://example.com/default", "execute_time", "0")), bodyAdded)
		if q := e.getQueue("default_queue"); q.Type != "realtime" || q.Counts.Queued == 0 {
			t.Fatalf("default_queue %+v", q)
		}
		r := e.legacy("allQueue", encMultipart, creds())
		for _, want := range []string{
			`{"queue_name":"brand_new","attribute":{"type":"real_time"}}`,
			`{"queue_name":"default_queue","attribute":{"type":"real_time"}}`,
			`{"queue_name":"existing","attribute":{"type":"variable","stepping_time":"2","max_time_interval":"5"}}`,
		} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("allQueue %s lacks %s", r.body, want)
			}
		}
		if q := e.getQueue("existing"); q.Type != "variable" {
			t.Fatalf("existing queue changed: %+v", q)
		}
	})
}

func flatten(f form) []string {
	var out []string
	for _, kv := range f {
		out = append(out, kv[0], kv[1])
	}
	return out
}

func TestLegacyURLKeptExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	urls := []string{
		"http://example.com/",
		"http://example.com",
		"https://example.com/a/b?x=1&x=2&y=%20&z=a+b#frag",
		"http://example.com/path?htq_no_repeat=1",
		"http://user:pw@example.com:8080/p;q?r",
		"http://127.0.0.1:5999/api/callback?token=abc%2Fdef",
		"http://例子.测试/%E8%B7%AF%E5%BE%84?q=%E4%B8%AD%E6%96%87", // already escaped: kept
		"HTTP://EXAMPLE.COM/UPPER",
		"http://example.com/?",
	}
	for i, u := range urls {
		enc := encodings[i%2]
		wantBody(t, e.legacy("addTask", enc, creds("queue_name", "urls", "url", u, "execute_time", "0", "method", "get", "header", "[]", "data", "[]")), bodyAdded)
	}
	stored := e.storedTasks("urls", task.StateQueued)
	if len(stored) != len(urls) {
		t.Fatalf("%d tasks stored, want %d", len(stored), len(urls))
	}
	for i, ti := range stored {
		if ti.Spec.URL != urls[i] {
			t.Errorf("task %d: stored %q, posted %q", i, ti.Spec.URL, urls[i])
		}
		var g taskJSON
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+ti.ID, nil), http.StatusOK, &g)
		if g.URL != urls[i] {
			t.Errorf("task %d: REST shows %q, posted %q", i, g.URL, urls[i])
		}
	}
}

func TestLegacyIdenticalTasksSameSecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 50
	for i := range n {
		wantBody(t, e.legacy("addTask", encodings[i%2], creds("queue_name", "same", "url", "http://example.com/same?a=1",
			"execute_time", "0", "method", "get", "header", "[]", "data", "[]")), bodyAdded)
	}
	wantBody(t, e.legacy("countQueue", encMultipart, creds("queue_name", "same")), fmt.Sprintf(`{"error_code":0,"count":%d}`, n))
	if q := e.getQueue("same"); q.Counts.Queued != n {
		t.Fatalf("counts %+v", q.Counts)
	}
	seen := map[string]bool{}
	for _, ti := range e.storedTasks("same", task.StateQueued) {
		if ti.Spec.URL != "http://example.com/same?a=1" || seen[ti.ID] {
			t.Fatalf("task %s: %q", ti.ID, ti.Spec.URL)
		}
		seen[ti.ID] = true
	}
	// future-dated identical tasks in the same second are all kept too
	for i := range n {
		wantBody(t, e.legacy("addTask", encodings[i%2], creds("queue_name", "same_later", "url", "http://example.com/same",
			"execute_time", "2030-01-02 03:04:05")), bodyAdded)
	}
	wantBody(t, e.legacy("countQueue", encMultipart, creds("queue_name", "same_later")), fmt.Sprintf(`{"error_code":0,"count":%d}`, n))
}

func TestLegacyExecuteTime(t *testing.T) {
	t.Parallel()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	type mode struct {
		zone   *time.Location
		strict bool
	}
	for _, m := range []mode{{shanghai, false}, {time.UTC, false}, {shanghai, true}} {
		t.Run(fmt.Sprintf("%s/strict=%v", m.zone, m.strict), func(t *testing.T) {
			t.Parallel()
			zone := m.zone
			e := newEnvWith(t, envOptions{zone: zone, mutate: func(c *api.Config) { c.Legacy.StrictExecuteTime = m.strict }})
			at := func(y, mo, d, h, mi, s int) time.Time { return time.Date(y, time.Month(mo), d, h, mi, s, 0, zone) }
			tests := []struct {
				value string
				due   time.Time // zero: queued now
				bad   bool      // not understood: run now, or refused in strict mode
			}{
				{"0", time.Time{}, false},
				{"", time.Time{}, false},
				{" 0 ", time.Time{}, false},
				{"2030-01-02 03:04:05", at(2030, 1, 2, 3, 4, 5), false},
				{"2030/1/2 3:4:5", at(2030, 1, 2, 3, 4, 5), false},
				{"2030/01/02 03:04:05", at(2030, 1, 2, 3, 4, 5), false},
				{"2030-1-2 03:04:05", at(2030, 1, 2, 3, 4, 5), false},
				{"2028-02-29 23:59:59", at(2028, 2, 29, 23, 59, 59), false},
				{"2020-01-01 00:00:00", time.Time{}, false}, // in the past: now
				{"2030-01-02T03:04:05", at(2030, 1, 2, 3, 4, 5), false},
				// what PHP callers send besides the SDK's forms (issue 13):
				// 1005 before, so a caller that did not check lost the task
				{"1893456000", time.Unix(1893456000, 0), false},                                                     // time()+…
				{"1893456000123", time.UnixMilli(1893456000123), false},                                             // milliseconds
				{"2030-01-02T03:04:05+08:00", time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("", 8*3600)), false}, // date('c')
				{"2030-01-02T03:04:05Z", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), false},
				{"2030-01-01", at(2030, 1, 1, 0, 0, 0), false},
				{"1", time.Time{}, false}, // 1970: the past, now
				// not understood: the original ran them at once
				{"2023-02-30 00:00:00", time.Time{}, true},
				{"2030-02-29 00:00:00", time.Time{}, true},
				{"2030-13-01 00:00:00", time.Time{}, true},
				{"2030-01-01 24:00:00", time.Time{}, true},
				{"2030-01-01 23:60:00", time.Time{}, true},
				{"tomorrow", time.Time{}, true},
				{"now", time.Time{}, true},
			}
			for i, tc := range tests {
				for _, enc := range encodings {
					t.Run(fmt.Sprintf("%q/%s", tc.value, enc), func(t *testing.T) {
						t.Parallel()
						e := *e
						e.t = t
						q := fmt.Sprintf("et_%d_%s", i, enc)
						r := e.legacy("addTask", enc, creds("queue_name", q, "url", "http://example.com/et", "execute_time", tc.value,
							"method", "get", "header", "[]", "data", "[]"))
						if tc.bad && m.strict {
							wantLegacy(t, r, 1005, "execute_time")
							if _, err := e.st.GetQueue(e.ctx, q); err == nil {
								t.Error("a refused addTask created its queue")
							}
							return
						}
						wantBody(t, r, bodyAdded)
						if tc.due.IsZero() {
							if got := e.storedTasks(q, task.StateQueued); len(got) != 1 || got[0].Spec.RunAtMs != 0 {
								t.Fatalf("queued: %v", got)
							}
							return
						}
						got := e.storedTasks(q, task.StateScheduled)
						if len(got) != 1 || !got[0].RunAt.Equal(tc.due) || got[0].Spec.RunAtMs != tc.due.UnixMilli() {
							t.Fatalf("scheduled %+v, want due %v", got, tc.due)
						}
						var g taskJSON
						e.must(e.rest(http.MethodGet, "/v1/tasks/"+got[0].ID, nil), http.StatusOK, &g)
						if g.State != "scheduled" || g.RunAt == nil || !g.RunAt.Equal(tc.due) {
							t.Fatalf("REST task %+v, want run_at %v", g, tc.due)
						}
						wantBody(t, e.legacy("countQueue", enc, creds("queue_name", q)), `{"error_code":0,"count":1}`)
					})
				}
			}
		})
	}
}

// TestLegacyExecuteTimeFallbackCounted: an execute_time run at once because
// it was not understood is counted (and logged), so an operator sees it.
func TestLegacyExecuteTimeFallbackCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, v := range []string{"tomorrow", "2030-02-30 00:00:00", "2030-01-02 03:04:05"} {
		wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "fb", "url", "http://example.com/", "execute_time", v)), bodyAdded)
	}
	r := e.send(http.MethodGet, "/metrics", nil, nil)
	if !strings.Contains(string(r.body), "htq_api_legacy_execute_time_fallbacks_total 2\n") {
		t.Fatalf("metrics do not count 2 fallbacks:\n%s", r.body)
	}
}

func TestLegacyDeleteQueueRemovesTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, enc := range encodings {
		t.Run(enc, func(t *testing.T) {
			e := *e
			e.t = t
			q := "del_" + enc
			wantBody(t, e.legacy("addQueue", enc, creds("queue_name", q, "type", "real_time", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
			for i := range 30 {
				et := "0"
				if i%3 == 0 {
					et = "2030-01-01 00:00:00"
				}
				wantBody(t, e.legacy("addTask", enc, creds("queue_name", q, "url", fmt.Sprintf("http://example.com/%d", i), "execute_time", et)), bodyAdded)
			}
			var ids []string
			for _, st := range []task.State{task.StateQueued, task.StateScheduled} {
				for _, ti := range e.storedTasks(q, st) {
					ids = append(ids, ti.ID)
				}
			}
			if len(ids) != 30 {
				t.Fatalf("%d tasks before delete", len(ids))
			}
			wantBody(t, e.legacy("deleteQueue", enc, creds("queue_name", q)), bodyDeleted)
			for _, id := range ids {
				if _, err := e.st.GetTask(e.ctx, id); err == nil {
					t.Fatalf("task %s survived its queue", id)
				}
			}
			wantBody(t, e.legacy("countQueue", enc, creds("queue_name", q)), `{"error_code":0,"count":0}`)
			var keys []string
			iter := e.rdb.Scan(e.ctx, 0, "*"+q+"*", 100).Iterator()
			for iter.Next(e.ctx) {
				keys = append(keys, iter.Val())
			}
			if len(keys) > 0 {
				t.Fatalf("keys left after deleteQueue: %v", keys)
			}
			r := e.legacy("allQueue", enc, creds())
			if bytes.Contains(r.body, []byte(q)) {
				t.Fatalf("allQueue still lists %s: %s", q, r.body)
			}
		})
	}
}

func TestLegacyRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.send(http.MethodGet, "/", nil, nil)
	if r.status != http.StatusOK || string(r.body) != "HTQ" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /: %v (%s)", r, r.header.Get("Content-Type"))
	}
}

// TestLegacyVariableQueueZeroMax: addQueue of a variable queue with
// max_time_interval 0 (the SDK's "unused") is accepted as "no maximum gap",
// as the original accepted it; with stepping_time 0 as well (the SDK's
// defaults: addQueue('x', 'variable')) it is accepted too, with
// legacy.min_gap as its stepping, so it repeats and never calls back to
// back (issue 13: it was refused, and the next addTask made x one-shot).
func TestLegacyVariableQueueZeroMax(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.Legacy.MinGap = 3 * time.Second }})
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "poll", "type", "variable", "stepping_time", "2", "max_time_interval", "0")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantBody(t, e.legacy("addQueue", encURLEncoded, creds("queue_name", "poll2", "type", "variable", "stepping_time", "3")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "spin", "type", "variable", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "sdk", "type", "variable")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "frac", "type", "variable", "stepping_time", "0.5", "max_time_interval", "1.5")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantLegacy(t, e.legacy("addQueue", encMultipart, creds("queue_name", "words", "type", "variable", "stepping_time", "two")), 1005, "stepping_time")
	wantBody(t, e.legacy("allQueue", encMultipart, creds()), `[`+
		`{"queue_name":"poll","attribute":{"type":"variable","stepping_time":"2","max_time_interval":"0"}},`+
		`{"queue_name":"poll2","attribute":{"type":"variable","stepping_time":"3"}},`+
		`{"queue_name":"spin","attribute":{"type":"variable","stepping_time":"0","max_time_interval":"0"}},`+
		`{"queue_name":"sdk","attribute":{"type":"variable"}},`+
		`{"queue_name":"frac","attribute":{"type":"variable","stepping_time":"0.5","max_time_interval":"1.5"}}]`)
	type queue struct {
		Type            string  `json:"type"`
		SteppingTime    float64 `json:"stepping_time"`
		MaxTimeInterval float64 `json:"max_time_interval"`
	}
	for name, want := range map[string]queue{
		"poll": {"variable", 2, 315360000},
		"spin": {"variable", 3, 315360000}, // the 3 s floor
		"sdk":  {"variable", 3, 315360000},
		"frac": {"variable", 0.5, 3}, // the maximum raised to the floor
	} {
		var q queue
		e.must(e.rest(http.MethodGet, "/v1/queues/"+name, nil), http.StatusOK, &q)
		if q != want {
			t.Errorf("%s = %+v, want %+v", name, q, want)
		}
	}
	wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "poll", "url", "http://example.com/")), bodyAdded)
}

// TestLegacyAllQueueCreationOrder: allQueue lists queues in the order they
// were created, as the original did (issue 13: they were sorted by name).
func TestLegacyAllQueueCreationOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"zeta", "alpha", "中文", "mid"} {
		wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", name, "type", "real_time")), bodyAdded)
		e.clk.Advance(time.Millisecond)
	}
	wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "auto", "url", "http://example.com/")), bodyAdded)
	wantBody(t, e.legacy("allQueue", encMultipart, creds()), `[`+
		`{"queue_name":"zeta","attribute":{"type":"real_time"}},{"queue_name":"alpha","attribute":{"type":"real_time"}},`+
		`{"queue_name":"中文","attribute":{"type":"real_time"}},{"queue_name":"mid","attribute":{"type":"real_time"}},`+
		`{"queue_name":"auto","attribute":{"type":"real_time"}}]`)
}

// TestLegacyQueueTypeListedAsPosted: an empty type is listed as "" and a
// missing one not at all, as the original stored and listed the posted
// attributes (issue 13: both were listed as "real_time").
func TestLegacyQueueTypeListedAsPosted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "empty", "type", "", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantBody(t, e.legacy("addQueue", encURLEncoded, creds("queue_name", "missing", "stepping_time", "0")), bodyAdded)
	e.clk.Advance(time.Millisecond)
	wantBody(t, e.legacy("allQueue", encMultipart, creds()), `[`+
		`{"queue_name":"empty","attribute":{"type":"","stepping_time":"0","max_time_interval":"0"}},`+
		`{"queue_name":"missing","attribute":{"stepping_time":"0"}}]`)
	for _, name := range []string{"empty", "missing"} {
		if q := e.getQueue(name); q.Type != "realtime" {
			t.Errorf("%s is %q, want a one-shot (realtime) queue", name, q.Type)
		}
	}
}

// TestLegacyQueuesMakeOneAttempt: queues the legacy API creates (addQueue,
// or addTask on an unknown queue) call each task once by default
// (legacy.max_attempts), as the original did; REST queues keep the
// server's retry default (issue 13: a 500 was called 5 times).
func TestLegacyQueuesMakeOneAttempt(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.Legacy.MaxAttempts = 1 }})
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "added", "type", "real_time", "stepping_time", "0", "max_time_interval", "0")), bodyAdded)
	wantBody(t, e.legacy("addTask", encMultipart, creds("queue_name", "auto", "url", "http://example.com/")), bodyAdded)
	e.putQueue("rest", map[string]any{})
	for name, want := range map[string]int{"added": 1, "auto": 1, "rest": task.DefaultMaxAttempts} {
		var q struct {
			Retry struct {
				MaxAttempts int `json:"max_attempts"`
			} `json:"retry"`
		}
		e.must(e.rest(http.MethodGet, "/v1/queues/"+name, nil), http.StatusOK, &q)
		if q.Retry.MaxAttempts != want {
			t.Errorf("%s: retry.max_attempts %d, want %d", name, q.Retry.MaxAttempts, want)
		}
	}
}

// TestLegacyAllQueueSubSecond: allQueue lists the sub-second times of a
// queue made through REST as fractional seconds, not as "0" (which the
// protocol reads as "unused").
func TestLegacyAllQueueSubSecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("feeds", map[string]any{"type": "variable", "stepping_time": "500ms", "max_time_interval": "PT1.5S"})
	e.putQueue("tick", map[string]any{"type": "variable", "stepping_time": 0.001, "max_time_interval": 2})
	wantBody(t, e.legacy("allQueue", encMultipart, creds()), `[`+
		`{"queue_name":"feeds","attribute":{"type":"variable","stepping_time":"0.5","max_time_interval":"1.5"}},`+
		`{"queue_name":"tick","attribute":{"type":"variable","stepping_time":"0.001","max_time_interval":"2"}}]`)
}
