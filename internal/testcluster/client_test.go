package testcluster

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/htq/htq/client"
)

// fakeAPI answers every create with 503 and every queue read with one
// queue, recording what it was sent.
type fakeAPI struct {
	mu     sync.Mutex
	auth   []string
	bodies []string
	posts  int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, string(b))
	if r.Method == http.MethodPost {
		f.posts++
	}
	f.mu.Unlock()
	if r.Method == http.MethodPost {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"busy"}}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"name": "q", "counts": map[string]int{"queued": 2}})
}

// TestClient: the cluster's client carries the cluster's token (or the one
// given), sends no idempotency key of its own and so never repeats a
// create, and takes the test's options.
func TestClient(t *testing.T) {
	f := &fakeAPI{}
	ts := httptest.NewServer(f)
	defer ts.Close()
	c := &Cluster{t: t, API: ts.URL}

	q, err := c.Client().GetQueue(t.Context(), "q")
	if err != nil || q.Counts.Queued != 2 {
		t.Fatalf("GetQueue: %+v %v", q, err)
	}
	if _, err := c.ClientAs("other").GetQueue(t.Context(), "q"); err != nil {
		t.Fatal(err)
	}
	if f.auth[0] != "Bearer "+Token || f.auth[1] != "Bearer other" {
		t.Fatalf("authorization headers %q", f.auth)
	}

	hc := c.Client(client.WithRetries(3, 0, 0))
	var ae *client.Error
	if _, err := hc.CreateTask(t.Context(), "q", client.TaskRequest{URL: "http://127.0.0.1:9/"}); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("create: %v, want the 503", err)
	}
	if f.posts != 1 {
		t.Fatalf("a create without a key was sent %d times, want once", f.posts)
	}
	if b := f.bodies[len(f.bodies)-1]; strings.Contains(b, "idempotency_key") {
		t.Fatalf("the create carried a key: %s", b)
	}
}
