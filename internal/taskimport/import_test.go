package taskimport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/taskimport"
)

// fakeAPI is a batch route that keeps tasks by idempotency key, like
// HTQ's: a repeated key is "existed". It can fail after a number of
// batches, and refuses tasks whose URL contains "refuse".
type fakeAPI struct {
	mu        sync.Mutex
	byKey     map[string]client.TaskRequest
	calls     int
	failAfter int // fail every call after this many (0: never)
}

func (f *fakeAPI) CreateTasks(ctx context.Context, _ string, tasks []client.TaskRequest) ([]client.Created, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.calls++
	if f.failAfter > 0 && f.calls > f.failAfter {
		return nil, &client.Error{Status: http.StatusServiceUnavailable, Code: client.CodeUnavailable, Message: "down"}
	}
	for i, t := range tasks {
		if strings.Contains(t.URL, "refuse") {
			return nil, &client.Error{Status: http.StatusUnprocessableEntity, Code: client.CodeValidation,
				Message: fmt.Sprintf("tasks[%d]: url: refused here", i)}
		}
	}
	out := make([]client.Created, len(tasks))
	for i, t := range tasks {
		_, existed := f.byKey[t.IdempotencyKey]
		if !existed {
			f.byKey[t.IdempotencyKey] = t
		}
		out[i] = client.Created{ID: t.IdempotencyKey, Existed: existed}
	}
	return out, nil
}

func newFake() *fakeAPI { return &fakeAPI{byKey: map[string]client.TaskRequest{}} }

func ndjson(n int, bad map[int]string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if l, ok := bad[i]; ok {
			b.WriteString(l + "\n")
			continue
		}
		fmt.Fprintf(&b, `{"url":"http://127.0.0.1:9/t?i=%d","method":"POST","body":{"i":%d}}`+"\n", i, i)
	}
	return b.String()
}

// TestBadLines: each bad line is reported with its number and skipped,
// the others all arrive; blank lines are neither.
func TestBadLines(t *testing.T) {
	t.Parallel()
	input := ndjson(2500, map[int]string{
		3:    `{"url":"http://127.0.0.1:9/x"`,                 // malformed
		10:   `{"url":"http://127.0.0.1:9/x","colour":"red"}`, // unknown field
		11:   `{"method":"POST"}`,                             // no url
		12:   `{"url":"ftp://127.0.0.1/x"}`,                   // not http
		13:   ``,                                              // blank: skipped, not bad
		1500: `{"url":"http://127.0.0.1:9/refuse"}`,           // refused by the API
		2500: `{"url":"http://127.0.0.1:9/a"} {"url":"http://127.0.0.1:9/b"}`,
	})
	f := newFake()
	var bad []taskimport.BadLine
	rep, err := taskimport.Run(t.Context(), taskimport.Options{Queue: "q", Input: strings.NewReader(input), Source: "s",
		Sender: f, Batch: 100, Parallel: 3, Bad: func(b taskimport.BadLine) { bad = append(bad, b) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bad != 6 || rep.Imported != 2493 || rep.Lines != 2499 || len(f.byKey) != 2493 {
		t.Fatalf("report %+v, %d stored", rep, len(f.byKey))
	}
	lines := map[int]string{}
	for _, b := range bad {
		lines[b.Line] = b.Err
	}
	for n, want := range map[int]string{3: "invalid task JSON", 10: `unknown field "colour"`, 11: "url: required",
		12: "ftp://", 1500: "url: refused here", 2500: "more than one JSON value"} {
		if !strings.Contains(lines[n], want) {
			t.Errorf("line %d: %q, want %q", n, lines[n], want)
		}
	}
}

// TestCSV: columns map to task fields; a bad row is reported by its line.
func TestCSV(t *testing.T) {
	t.Parallel()
	input := "url,method,body_json,delay,header:X-Trace,form:a,max_attempts\n" +
		"http://127.0.0.1:9/1,POST,\"{\"\"n\"\":1}\",,abc,,3\n" +
		"http://127.0.0.1:9/2,PUT,,10s,,x y,\n" +
		"http://127.0.0.1:9/3,POST,{nope,,,,\n" +
		"http://127.0.0.1:9/4,POST\n" +
		"http://127.0.0.1:9/5,GET,,1.5,,,many\n" +
		"http://127.0.0.1:9/6,GET,,,,,\n"
	f := newFake()
	var bad []taskimport.BadLine
	rep, err := taskimport.Run(t.Context(), taskimport.Options{Queue: "q", Input: strings.NewReader(input), Format: taskimport.FormatCSV,
		Source: "s", Sender: f, Bad: func(b taskimport.BadLine) { bad = append(bad, b) }})
	if err != nil || rep.Imported != 3 || rep.Bad != 3 {
		t.Fatalf("report %+v, %v; bad %+v", rep, err, bad)
	}
	want := []string{"4: body_json", "5: CSV: wrong number of fields", "6: max_attempts"}
	for i, b := range bad {
		if got := fmt.Sprintf("%d: %s", b.Line, b.Err); !strings.HasPrefix(got, want[i]) {
			t.Errorf("bad line %d: %q, want %q", i, got, want[i])
		}
	}
	var one, two *client.TaskRequest
	for _, tk := range f.byKey {
		switch tk.URL {
		case "http://127.0.0.1:9/1":
			one = &tk
		case "http://127.0.0.1:9/2":
			two = &tk
		}
	}
	if one == nil || string(one.Body) != `{"n":1}` || one.Headers["X-Trace"] != "abc" || *one.MaxAttempts != 3 {
		t.Fatalf("row 1: %+v", one)
	}
	if two == nil || two.Method != http.MethodPut || two.Delay.Std().String() != "10s" || two.Form["a"] != "x y" {
		t.Fatalf("row 2: %+v", two)
	}
	if _, err := taskimport.Run(t.Context(), taskimport.Options{Queue: "q", Input: strings.NewReader("url,colour\n"), Format: taskimport.FormatCSV, Sender: f}); err == nil || !strings.Contains(err.Error(), `"colour"`) {
		t.Fatalf("an unknown column: %v", err)
	}
	if _, err := taskimport.Run(t.Context(), taskimport.Options{Queue: "q", Input: strings.NewReader("method\n"), Format: taskimport.FormatCSV, Sender: f}); err == nil || !strings.Contains(err.Error(), "no url column") {
		t.Fatalf("no url column: %v", err)
	}
}

// TestResume: a run stopped by failing calls leaves a checkpoint; the
// re-run skips what it covers, resends the rest with the same keys, and
// in the end every line is stored exactly once; the checkpoint is gone.
func TestResume(t *testing.T) {
	t.Parallel()
	input := ndjson(10000, map[int]string{77: "not json"})
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	f := newFake()
	f.failAfter = 37
	opts := taskimport.Options{Queue: "q", Source: "file", Sender: f, Batch: 100, Parallel: 4, Checkpoint: ckpt}
	opts.Input = strings.NewReader(input)
	rep1, err := taskimport.Run(t.Context(), opts)
	var ae *client.Error
	if !errors.As(err, &ae) || rep1.Imported < 3000 || rep1.Imported > 3800 {
		t.Fatalf("first run: %+v, %v", rep1, err)
	}
	if _, err := os.Stat(ckpt); err != nil {
		t.Fatalf("no checkpoint after a failed run: %v", err)
	}
	f.failAfter = 0
	opts.Input = strings.NewReader(input)
	rep2, err := taskimport.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint is the end of the longest run of stored batches from
	// the start; with 4 batches in flight, how far that got depends on which
	// finished first (a batch held up while the others went on keeps it
	// back: 2,501 of 3,600 on a loaded machine). It must skip no line that
	// was not stored, and skip something.
	if rep2.Resumed < 1 || rep2.Resumed > rep1.Imported+1 {
		t.Fatalf("second run resumed after line %d; the first imported %d", rep2.Resumed, rep1.Imported)
	}
	if len(f.byKey) != 9999 || rep1.Imported+rep2.Imported != 9999 {
		t.Fatalf("stored %d, imported %d + %d (existed %d), want 9999 once each", len(f.byKey), rep1.Imported, rep2.Imported, rep2.Existed)
	}
	if _, err := os.Stat(ckpt); !os.IsNotExist(err) {
		t.Fatalf("the checkpoint stays after a complete run: %v", err)
	}
	// A third run (no checkpoint now) sends everything again: all "existed".
	opts.Input = strings.NewReader(input)
	rep3, err := taskimport.Run(t.Context(), opts)
	if err != nil || rep3.Imported != 0 || rep3.Existed != 9999 || len(f.byKey) != 9999 {
		t.Fatalf("third run: %+v %v", rep3, err)
	}
	// A checkpoint of another source or queue is refused.
	if err := os.WriteFile(ckpt, []byte(`{"source":"other","queue":"q","line":5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Input = strings.NewReader(input)
	if _, err := taskimport.Run(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("a foreign checkpoint: %v", err)
	}
}

// TestCancel: a cancelled context stops the run with the checkpoint at a
// line whose predecessors are all in.
func TestCancel(t *testing.T) {
	t.Parallel()
	input := ndjson(20000, nil)
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	f := newFake()
	ctx, cancel := context.WithCancel(t.Context())
	opts := taskimport.Options{Queue: "q", Source: "file", Sender: f, Batch: 50, Parallel: 4, Checkpoint: ckpt,
		Input: strings.NewReader(input),
		Progress: func(p taskimport.Progress) {
			if p.Imported >= 5000 {
				cancel()
			}
		}}
	if _, err := taskimport.Run(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	data, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	var line int
	if _, err := fmt.Sscanf(string(data), `{"source":"file","queue":"q","line":%d}`, &line); err != nil || line < 1000 {
		t.Fatalf("checkpoint %s: %v", data, err)
	}
	stored := make(map[string]bool, len(f.byKey))
	for _, tk := range f.byKey {
		stored[tk.URL] = true
	}
	for i := 1; i <= line; i++ {
		if !stored[fmt.Sprintf("http://127.0.0.1:9/t?i=%d", i)] {
			t.Fatalf("line %d is below the checkpoint %d but not stored", i, line)
		}
	}
	opts.Input, opts.Progress = strings.NewReader(input), nil
	if _, err := taskimport.Run(t.Context(), opts); err != nil || len(f.byKey) != 20000 {
		t.Fatalf("re-run: %v, %d stored", err, len(f.byKey))
	}
}

// failingReader yields its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestReadErrorAndLongLine: a read error stops the run after the lines
// before it; a line over MaxLine is a bad line, and the next one is read.
func TestReadErrorAndLongLine(t *testing.T) {
	t.Parallel()
	f := newFake()
	boom := errors.New("disk on fire")
	_, err := taskimport.Run(t.Context(), taskimport.Options{Queue: "q", Source: "s", Sender: f,
		Input: &failingReader{data: []byte(ndjson(3, nil) + `{"url":"http://127.0.0.1:9/partial"}`), err: boom}})
	if !errors.Is(err, boom) || len(f.byKey) != 4 {
		t.Fatalf("err %v with %d stored; want %v after all 4 lines", err, len(f.byKey), boom)
	}
	long := `{"url":"http://127.0.0.1:9/` + strings.Repeat("x", taskimport.MaxLine) + `"}`
	var bad []taskimport.BadLine
	rep, err := taskimport.Run(t.Context(), taskimport.Options{Queue: "q", Source: "s2", Sender: f,
		Input: strings.NewReader(long + "\n" + ndjson(2, nil)), Bad: func(b taskimport.BadLine) { bad = append(bad, b) }})
	if err != nil || rep.Imported != 2 || len(bad) != 1 || bad[0].Line != 1 || !strings.Contains(bad[0].Err, "longer than") {
		t.Fatalf("long line: %+v %v %+v", rep, err, bad)
	}
}
