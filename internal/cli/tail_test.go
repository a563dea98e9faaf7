package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/client"
)

// TestTail follows the event stream: the created events of pushed tasks
// arrive, filtered by queue and type, and --count ends it.
func TestTail(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "q").ok(t)
	c.htq(t, "", "queue", "put", "other").ok(t)
	run := func(args ...string) <-chan result {
		done := make(chan result, 1)
		go func() { done <- c.htq(t, "", append([]string{"tail"}, args...)...) }()
		return done
	}
	// Events published before the stream is subscribed are lost, so push
	// until the tail has what it waits for.
	feed := func(done <-chan result) result {
		t.Helper()
		deadline := time.After(20 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case r := <-done:
				return r
			case <-deadline:
				t.Fatal("tail did not end")
			case <-tick.C:
				for _, q := range []string{"other", "q"} {
					if _, err := c.api.CreateTask(t.Context(), q, client.TaskRequest{URL: "http://127.0.0.1:9/" + q}); err != nil {
						t.Error(err)
					}
				}
			}
		}
	}
	r := feed(run("-q", "q", "--type", "created", "--count", "2", "-o", "json"))
	if r.code != 0 {
		t.Fatalf("tail: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("tail --count 2 wrote %q", r.stdout)
	}
	for _, l := range lines {
		var e client.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != "created" || e.Queue != "q" || e.ID == "" || e.Time.IsZero() {
			t.Fatalf("event %q: %v", l, err)
		}
	}
	r = feed(run("--count", "1"))
	if r.code != 0 || !strings.Contains(r.stdout, "  created    ") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("tail table: %+v", r)
	}
	// On a terminal the type is coloured (created: blue).
	term := make(chan result, 1)
	go func() {
		term <- runTerm(t, true, map[string]string{"HOME": t.TempDir(), "HTQ_URL": c.url, "HTQ_TOKEN": token}, "", "tail", "--count", "1")
	}()
	if r := feed(term); r.code != 0 || !strings.Contains(r.stdout, "\x1b[34mcreated  \x1b[0m") {
		t.Fatalf("tail on a terminal: %q", r.stdout)
	}
	for _, args := range [][]string{{"--type", "born"}, {"--count", "-1"}, {"-o", "yaml"}, {"x"}} {
		if r := c.htq(t, "", append([]string{"tail"}, args...)...); r.code != 2 {
			t.Errorf("tail %q: %+v, want exit 2", args, r)
		}
	}
	bad := map[string]string{"HOME": t.TempDir(), "HTQ_URL": c.url, "HTQ_TOKEN": "wrong-token-of-some-length"}
	if r := runEnv(t, bad, "", "tail"); r.code != 4 {
		t.Errorf("tail with a wrong token: %+v", r)
	}
}
