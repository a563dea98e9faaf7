package legacy

import (
	"errors"
	"testing"
	"time"

	"github.com/htq/htq/internal/task"
)

// FuzzLegacyAddTask feeds arbitrary addTask form fields (as the PHP SDK
// posts them) to the legacy conversion: it never panics; a refusal is a
// legacy "invalid parameter" or "too large" error naming a field; an
// accepted task is valid and storable, its URL escaped only as a browser
// escapes it.
func FuzzLegacyAddTask(f *testing.F) {
	f.Add("q", "http://x/a?b=1", "get", "[]", "[]", "0")
	f.Add("", "https://x", "POST", `{"X-A":"1"}`, `{"k":"v","n":2}`, "2030/1/2 3:04:05")
	f.Add("队列", "http://x", "post", `[1]`, `{"a":{"b":[1]}}`, "2023-02-30 00:00:00")
	f.Add("q\n", "javascript:alert(1)", "G E T", `{`, `{"a":1}}`, "tomorrow")
	limits := task.Limits{MaxURLBytes: 8192, MaxHeaderBytes: 65536, MaxBodyBytes: 1 << 20}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	loc := time.FixedZone("CST", 8*3600)
	f.Fuzz(func(t *testing.T, queue, url, method, header, data, executeTime string) {
		f := &form{vals: map[string][]string{
			"queue_name": {queue}, "url": {url}, "method": {method},
			"header": {header}, "data": {data}, "execute_time": {executeTime},
		}}
		name, nt, err := newTask(f, now, loc, limits)
		var terr *TimeError
		if errors.As(err, &terr) {
			// an execute_time not understood: the task comes with it, due now
			if !nt.Due.IsZero() || nt.Spec == nil || nt.Spec.RunAtMs != 0 {
				t.Fatalf("a TimeError came without a task due now: %+v", nt)
			}
			err = nil
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, task.ErrBadURL) && !errors.Is(err, task.ErrBadMethod) &&
				!errors.Is(err, task.ErrBadHeader) && !errors.Is(err, task.ErrBadQueue) && !errors.Is(err, task.ErrTooLarge) {
				t.Fatalf("refused with an error that has no legacy code: %v", err)
			}
			return
		}
		if task.ValidateQueueName(name) != nil || nt.Spec.Normalize(limits) != nil {
			t.Fatalf("accepted an invalid task: queue %q, %+v", name, nt.Spec)
		}
		if nt.Spec.URL != EscapeURL(url) {
			t.Fatalf("the URL was changed beyond a browser's escaping: %q -> %q", url, nt.Spec.URL)
		}
		if _, err := task.Encode(name, nt.Spec); err != nil {
			t.Fatalf("accepted a task that cannot be stored: %v", err)
		}
	})
}
