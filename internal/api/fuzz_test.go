package api

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/task"
)

// FuzzDecodeTask feeds arbitrary bodies to the REST task decoder and its
// validation: they never panic, refuse with an API error that has a status,
// a code and a message, and whatever they accept is a valid, storable spec.
func FuzzDecodeTask(f *testing.F) {
	for _, seed := range []string{
		`{"url":"http://x/a","method":"POST","body":{"a":1}}`,
		`{"url":"https://x","headers":{"A":"b"},"form":{"k":"v"},"form_encoding":"multipart"}`,
		`{"url":"http://x","delay":"1.5s","timeout":30,"max_attempts":3,"idempotency_key":"k"}`,
		`{"url":"http://x","min_backoff":"250ms","max_backoff":"PT1M"}`, `{"url":"http://x","min_backoff":5,"max_backoff":1}`,
		`{"url":"http://x","run_at":"2030-01-02T03:04:05Z","body_base64":"AAE="}`,
		`{"url":"ftp://x"}`, `{"url":5}`, `null`, `[]`, `{"url":"http://x","delay":"-1s"}`,
		"{\"url\":\"http://x\",\"body\":\"\xff\"}", `{"tasks":[]}`,
	} {
		f.Add([]byte(seed))
	}
	limits := task.Limits{MaxURLBytes: 8192, MaxHeaderBytes: 65536, MaxBodyBytes: 1 << 20}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req taskRequest
		err := decodeStrict(body, &req)
		if err == nil {
			got, verr := req.toNewTask(now, limits)
			err = verr
			if verr == nil {
				if got.Spec == nil || task.ValidateURL(got.Spec.URL, limits.MaxURLBytes) != nil {
					t.Fatalf("accepted an invalid task: %+v", got.Spec)
				}
				if _, err := task.Encode("q", got.Spec); err != nil {
					t.Fatalf("accepted a task that cannot be stored: %v", err)
				}
				if err := got.Spec.Normalize(limits); err != nil {
					t.Fatalf("accepted spec fails validation: %v", err)
				}
			}
		}
		if err != nil {
			ae := toError(err)
			var own *Error
			if !errors.As(err, &own) && ae.Status >= 500 {
				t.Fatalf("a bad body became a server error: %v", err)
			}
			if ae.Status < 400 || ae.Code == "" || ae.Message == "" {
				t.Fatalf("error without status, code or message: %+v (%v)", ae, err)
			}
		}
	})
}

// decodeBudget bounds what decoding and checking one request body may
// cost: allocations linear in the body (the JSON decoder keeps a stack of
// nesting states per pass, and raw values are copied), and a time far above
// what any body up to the size limit needs, so it fails only for work that
// grows faster than the body (the quadratic field search of issue 12) or a
// hang, not for a slow machine.
func decodeBudget(n int) (bytes uint64, wall time.Duration) {
	return 64*uint64(n) + 1<<20, 5 * time.Second
}

// FuzzDecodeRequest feeds arbitrary bodies to the decoders of the three
// routes that read JSON (a task, a batch, a queue's settings) and the checks
// that follow them: they never panic; a refusal is a client error (4xx)
// with a code and a message of bounded size; and each body costs no more
// than decodeBudget, in bytes allocated and in time.
func FuzzDecodeRequest(f *testing.F) {
	deep := strings.Repeat("[", 500) + strings.Repeat("]", 500)
	for _, seed := range []struct {
		route byte
		body  string
	}{
		{0, `{"url":"http://x/a","method":"POST","body":{"a":[1,2]},"delay":"1s"}`},
		{0, `{"url":"http://x/a","delay":"soon","body":` + deep + `}`},
		{0, `{"url":"http://x/a","timeout":` + deep + `}`},
		{1, `{"tasks":[{"url":"http://x/a"},{"url":"http://x/b","delay":"soon","body":` + deep + `}]}`},
		{1, `{"tasks":[{"url":"http://x/a","run_at":"9999-12-31T23:59:59-23:59"}]}`},
		{2, `{"type":"variable","stepping_time":"2s","max_time_interval":5,"retry":{"min_backoff":"PT1S"}}`},
		{2, `{"retry":{"max_backoff":` + deep + `},"timeout":"x"}`},
		{2, `{"` + strings.Repeat("k", 5000) + `":1}`},
		{0, `{"url":"http://x","timeout":"` + strings.Repeat("9", 5000) + `"}`},
	} {
		f.Add(seed.route, []byte(seed.body))
	}
	limits := task.Limits{MaxURLBytes: 8192, MaxHeaderBytes: 65536, MaxBodyBytes: 1 << 20}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		err := decodeRoute(route%3, body, now, limits)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		budget, wall := decodeBudget(len(body))
		if got := after.TotalAlloc - before.TotalAlloc; got > budget {
			t.Fatalf("route %d, %d-byte body: %d bytes allocated, budget %d", route%3, len(body), got, budget)
		}
		if took > wall {
			t.Fatalf("route %d, %d-byte body: took %v, budget %v", route%3, len(body), took, wall)
		}
		if err == nil {
			return
		}
		ae := toError(err)
		if ae.Status < 400 || ae.Status >= 500 || ae.Code == "" || ae.Message == "" {
			t.Fatalf("refusal is not a client error with a code and a message: %+v (%v)", ae, err)
		}
		if len(ae.Message) > maxMessageBytes+len("…") {
			t.Fatalf("%d-byte message: %.200q", len(ae.Message), ae.Message)
		}
	})
}

// decodeRoute decodes and checks a body as route 0 (a task), 1 (a batch)
// or 2 (a queue's settings) does before it reaches the store.
func decodeRoute(route byte, body []byte, now time.Time, limits task.Limits) error {
	switch route {
	case 0:
		var req taskRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		_, err := req.toNewTask(now, limits)
		return err
	case 1:
		var req struct {
			Tasks []taskRequest `json:"tasks"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		for i := range req.Tasks {
			if err := req.Tasks[i].badDuration(fmt.Sprintf("tasks[%d].", i)); err != nil {
				return err
			}
			if _, err := req.Tasks[i].toNewTask(now, limits); err != nil {
				return err
			}
		}
		return nil
	default:
		var p queuePatch
		if err := decodeStrict(body, &p); err != nil {
			return err
		}
		if err := p.badDuration(); err != nil {
			return err
		}
		cfg := task.DefaultQueueConfig()
		p.apply(&cfg)
		return cfg.Validate()
	}
}
