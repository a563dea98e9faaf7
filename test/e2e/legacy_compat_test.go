package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/htq/htq/internal/testcluster"
)

// TestLegacyDropIn: what a PHP shop switching from the original sends,
// over the real binaries (issue 13). Each input was refused (1005) or
// handled differently before:
//   - a Unix timestamp execute_time runs at its time;
//   - a URL with spaces is called percent-encoded;
//   - data as a PHP list arrives as fields 0, 1; a header list of
//     "Name: value" strings as headers;
//   - a one-shot legacy queue calls a target answering 500 once (it was 5);
//   - a POST answered 302 is followed as a GET, as node-fetch did;
//   - addQueue('poll', 'variable') with the SDK's 0, 0 repeats (every
//     legacy.min_gap) and keeps repeating while its target fails.
func TestLegacyDropIn(t *testing.T) {
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1,
		Config: "legacy:\n  min_gap: 300ms\n"})
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Path == "/redir":
			http.Redirect(w, r, "/landed?from=post", http.StatusFound)
		case r.URL.Path == "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case r.URL.Path == "/poll" && n <= 2:
			w.WriteHeader(http.StatusNotFound) // the monitor's target is down
		case r.URL.Path == "/poll" && n == 3:
			w.WriteHeader(http.StatusBadGateway)
		case r.URL.Path == "/poll" && n >= 5:
			_, _ = w.Write([]byte("done"))
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}
	ok := func(answer map[string]any, what string) {
		t.Helper()
		if answer["error_code"] != float64(0) {
			t.Fatalf("%s: %v", what, answer)
		}
	}
	due := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	ok(c.Legacy("addTask", "queue_name", "php", "url", tg.URL+"/at", "execute_time", strconv.FormatInt(due.Unix(), 10),
		"method", "get", "header", "[]", "data", "[]"), "unix timestamp")
	ok(c.Legacy("addTask", "queue_name", "php", "url", tg.URL+"/has space?q=a b", "execute_time", "0",
		"method", "get", "header", "[]", "data", "[]"), "url with spaces")
	ok(c.Legacy("addTask", "queue_name", "php", "url", tg.URL+"/list", "execute_time", "0",
		"method", "post", "header", `["X-Token: abc","X-Time: 12:30"]`, "data", `["x","y"]`), "PHP lists")
	ok(c.Legacy("addTask", "queue_name", "php", "url", tg.URL+"/redir", "execute_time", "0",
		"method", "post", "header", "[]", "data", `{"a":"1"}`), "POST answered 302")
	ok(c.Legacy("addTask", "queue_name", "once", "url", tg.URL+"/fail", "execute_time", "0",
		"method", "get", "header", "[]", "data", "[]"), "failing target")
	ok(c.Legacy("addQueue", "queue_name", "poll", "type", "variable", "stepping_time", "0", "max_time_interval", "0"), "variable 0 0")
	ok(c.Legacy("addTask", "queue_name", "poll", "url", tg.URL+"/poll", "execute_time", "0",
		"method", "get", "header", "[]", "data", "[]"), "variable task")

	c.WaitFor("every task delivered", 30*time.Second, func() bool {
		n := map[string]int{}
		for _, call := range tg.Calls() {
			n[call.Path]++
		}
		return n["/at"] == 1 && n["/has space"] == 1 && n["/list"] == 1 && n["/landed"] == 1 && n["/fail"] >= 1 && n["/poll"] >= 5
	})
	// a retry of /fail would come within its 1 s backoff: give it 3 s to
	// show (waiting for something that must not happen needs a sleep)
	time.Sleep(3 * time.Second)
	calls := map[string][]testcluster.Call{}
	for _, call := range tg.Calls() {
		calls[call.Path] = append(calls[call.Path], call)
	}
	if d := calls["/at"][0].Start.Sub(due); d < 0 || d > time.Second {
		t.Errorf("/at called %v after its Unix-timestamp due time", d)
	}
	if got := calls["/has space"][0].RequestURI; got != "/has%20space?q=a%20b" {
		t.Errorf("URL with spaces called as %q, want /has%%20space?q=a%%20b", got)
	}
	list := calls["/list"][0]
	if list.Header.Get("X-Token") != "abc" || list.Header.Get("X-Time") != "12:30" {
		t.Errorf("header list arrived as %v", list.Header)
	}
	if form := multipartForm(t, list); fmt.Sprint(form) != "map[0:x 1:y]" {
		t.Errorf("data list arrived as %v, want 0=x 1=y", form)
	}
	// a POST answered 302 goes on as a GET without body, as node-fetch did
	// (it was a dead letter)
	if l := calls["/landed"][0]; l.Method != http.MethodGet || l.Body != "" || calls["/redir"][0].Method != http.MethodPost {
		t.Errorf("after a 302 to a POST: %s with body %q", l.Method, l.Body)
	}
	if n := len(calls["/fail"]); n != 1 {
		t.Errorf("a target answering 500 on a legacy queue was called %d times, want once", n)
	}
	polls := calls["/poll"]
	if len(polls) != 5 {
		t.Fatalf("/poll called %d times, want 5 (404, 404, 502, ok, done)", len(polls))
	}
	// stepping_time 0 became the 300 ms floor, max_time_interval 0 means
	// no maximum: gaps 0, 0.3, 0.6, 0.9 s, through the failures too
	checkGaps(t, "/poll", gapsOf(tg.Calls(), "/poll"), []time.Duration{0, 300 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond}, 400*time.Millisecond)
}
