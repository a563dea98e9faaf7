package testcluster

import (
	"net/http"
	"testing"
	"time"
)

// TestTargetRecordsTheEndWhenTheHandlerFinished: a call's recorded end is
// when its handler returned, even when the record had to wait for the
// target's lock (held here as Calls holds it while it copies a long
// record). A late end made a call that ended at its deadline look as if it
// overlapped the retry that followed it.
func TestTargetRecordsTheEndWhenTheHandlerFinished(t *testing.T) {
	tg := NewTarget(t)
	entered, release := make(chan struct{}), make(chan struct{})
	tg.mu.Lock()
	tg.Respond = func(w http.ResponseWriter, _ *http.Request, _ int) {
		close(entered)
		<-release
		_, _ = w.Write([]byte("ok"))
	}
	tg.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(tg.URL + "/x") //nolint:noctx // a test call to a local target
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	const held = 300 * time.Millisecond
	tg.mu.Lock() // a reader holds the lock while the handler finishes
	finished := time.Now()
	close(release)
	time.Sleep(held)
	tg.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := tg.Calls()
	if len(calls) != 1 {
		t.Fatalf("recorded %d calls, want 1", len(calls))
	}
	// The handler finished right after release; the lock came free only
	// held later. Half of held separates the two on any machine.
	if late := calls[0].End.Sub(finished); late > held/2 {
		t.Errorf("end recorded %v after the handler finished (the lock was held %v): it is the time the lock came free", late, held)
	}
}
