package taskimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/client"
)

// Defaults.
const (
	DefaultBatch      = 1000
	DefaultParallel   = 4
	DefaultBatchBytes = 768 << 10 // under the API's default max_body_bytes (1 MiB)
)

// Sender adds a batch of tasks to a queue (*client.Client does).
type Sender interface {
	CreateTasks(ctx context.Context, queue string, tasks []client.TaskRequest) ([]client.Created, error)
}

// Options configure Run.
type Options struct {
	Queue  string
	Input  io.Reader
	Format string // FormatNDJSON or FormatCSV
	// Source identifies the input in the idempotency keys (e.g. the file's
	// absolute path): the same source, line number and bytes give the same
	// key.
	Source     string
	Sender     Sender
	Batch      int   // tasks per request (DefaultBatch)
	BatchBytes int   // bytes of input per request at most (DefaultBatchBytes)
	Parallel   int   // requests in flight (DefaultParallel)
	Size       int64 // input bytes in all, for the ETA (0: unknown)
	// Checkpoint is the file that records the watermark ("" for none). A
	// run finds it, skips the lines it covers, and removes it once the
	// whole input is in.
	Checkpoint string
	// Progress is called after each accepted batch, from one goroutine.
	Progress func(Progress)
	// Bad is called for each bad line, from one goroutine.
	Bad func(BadLine)
}

// Progress is how far an import is.
type Progress struct {
	Lines    int   // lines read (this run)
	Imported int   // tasks created
	Existed  int   // tasks the API already had (an earlier run's)
	Bad      int   // lines skipped as bad
	Offset   int64 // input bytes read
	Size     int64 // input bytes in all (0: unknown)
	Elapsed  time.Duration
}

// Report is the outcome of Run.
type Report struct {
	Queue    string        `json:"queue"`
	Resumed  int           `json:"resumed_after_line"` // lines skipped thanks to the checkpoint
	Lines    int           `json:"lines"`
	Imported int           `json:"imported"`
	Existed  int           `json:"existed"`
	Bad      int           `json:"bad"`
	Elapsed  time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	Rate     float64       `json:"tasks_per_second"`
}

// checkpoint is the content of the checkpoint file.
type checkpoint struct {
	Source string `json:"source"`
	Queue  string `json:"queue"`
	Line   int    `json:"line"` // every line up to this one is in
}

type batch struct {
	seq   int
	lines []line
	last  int // the input line that ends the batch (bad lines included)
}

type result struct {
	seq      int
	last     int
	imported int
	existed  int
	bad      []BadLine
	err      error
}

// Run imports the input; the report is valid also when it returns an
// error (what was accepted stays, and the checkpoint says up to where).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Queue == "" || o.Input == nil || o.Sender == nil {
		return nil, errors.New("taskimport: queue, input and sender are required")
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	rep := &Report{Queue: o.Queue}
	resume, err := readCheckpoint(o)
	if err != nil {
		return rep, err
	}
	rep.Resumed = resume
	var rd reader
	switch o.Format {
	case FormatCSV:
		if rd, err = newCSV(o.Input, o.Source); err != nil {
			return rep, err
		}
	case FormatNDJSON, "":
		rd = newNDJSON(o.Input, o.Source)
	default:
		return rep, fmt.Errorf("taskimport: format %q: want ndjson or csv", o.Format)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	batches := make(chan batch, o.Parallel)
	results := make(chan result, o.Parallel)
	var readErr error
	var readBad []BadLine
	var lines int
	var offset atomic.Int64 // input bytes the reader consumed
	var mu sync.Mutex       // guards readBad, read by the collector as it goes
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the reader
		defer wg.Done()
		defer close(batches)
		b := batch{}
		size, seq := 0, 0
		flush := func() bool {
			if len(b.lines) == 0 {
				return true
			}
			b.seq = seq
			seq++
			select {
			case batches <- b:
			case <-ctx.Done():
				return false
			}
			b, size = batch{}, 0
			return true
		}
		for {
			l, bad, err := rd.next()
			offset.Store(rd.offset())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				readErr = fmt.Errorf("read the input: %w", err)
				break // send what was read before it
			}
			n := l.n
			if bad != nil {
				n = bad.Line
			}
			if n <= resume {
				continue
			}
			mu.Lock()
			lines++
			if bad != nil {
				readBad = append(readBad, *bad)
			}
			mu.Unlock()
			b.last = n
			if bad != nil {
				continue
			}
			if len(b.lines) > 0 && size+l.size > o.BatchBytes {
				last := b.last
				b.last = b.lines[len(b.lines)-1].n
				if !flush() {
					return
				}
				b.last = last
			}
			b.lines = append(b.lines, l)
			size += l.size
			if len(b.lines) >= o.Batch && !flush() {
				return
			}
		}
		if len(b.lines) == 0 && b.last > 0 {
			// Trailing bad lines: an empty batch moves the watermark.
			b.seq = seq
			select {
			case batches <- b:
			case <-ctx.Done():
			}
			return
		}
		flush()
	}()
	for range o.Parallel {
		wg.Add(1)
		go func() { // a sender
			defer wg.Done()
			for b := range batches {
				r := send(ctx, o, b)
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	// The collector: counts, watermark, checkpoint, progress.
	done := map[int]result{}
	next, watermark := 0, resume
	var firstErr error
	lastSave := time.Now()
	takeBad := func() {
		mu.Lock()
		bad := readBad
		readBad = nil
		rep.Lines = lines
		mu.Unlock()
		for _, b := range bad {
			rep.Bad++
			if o.Bad != nil {
				o.Bad(b)
			}
		}
	}
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
				cancel()
			}
			continue
		}
		rep.Imported += r.imported
		rep.Existed += r.existed
		for _, b := range r.bad {
			rep.Bad++
			if o.Bad != nil {
				o.Bad(b)
			}
		}
		done[r.seq] = r
		for {
			d, ok := done[next]
			if !ok {
				break
			}
			delete(done, next)
			watermark = d.last
			next++
		}
		takeBad()
		if o.Checkpoint != "" && time.Since(lastSave) > 200*time.Millisecond {
			if err := writeCheckpoint(o, watermark); err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
			lastSave = time.Now()
		}
		if o.Progress != nil {
			o.Progress(Progress{Lines: rep.Lines, Imported: rep.Imported, Existed: rep.Existed, Bad: rep.Bad,
				Offset: offset.Load(), Size: o.Size, Elapsed: time.Since(start)})
		}
	}
	takeBad()
	rep.Elapsed = time.Since(start)
	rep.Seconds = rep.Elapsed.Seconds()
	if rep.Seconds > 0 {
		rep.Rate = float64(rep.Imported+rep.Existed) / rep.Seconds
	}
	err = firstErr
	if err == nil {
		err = readErr
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if o.Checkpoint != "" {
		if err == nil {
			if rerr := os.Remove(o.Checkpoint); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return rep, fmt.Errorf("remove the checkpoint: %w", rerr)
			}
		} else if werr := writeCheckpoint(o, watermark); werr != nil {
			return rep, errors.Join(err, werr)
		}
	}
	return rep, err
}

// badIndex finds the task an API refusal of a batch names ("tasks[3]: …").
var badIndex = regexp.MustCompile(`^tasks\[(\d+)\]`)

// send sends one batch; a task the API refuses is dropped as a bad line
// and the rest sent again.
func send(ctx context.Context, o Options, b batch) result {
	r := result{seq: b.seq, last: b.last}
	lines := b.lines
	for len(lines) > 0 {
		tasks := make([]client.TaskRequest, len(lines))
		for i := range lines {
			tasks[i] = lines[i].task
		}
		created, err := o.Sender.CreateTasks(ctx, o.Queue, tasks)
		if err == nil {
			for _, c := range created {
				if c.Existed {
					r.existed++
				} else {
					r.imported++
				}
			}
			return r
		}
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Status == http.StatusUnprocessableEntity || ae.Status == http.StatusBadRequest) {
			if m := badIndex.FindStringSubmatch(ae.Message); m != nil {
				if i, _ := strconv.Atoi(m[1]); i < len(lines) {
					r.bad = append(r.bad, BadLine{Line: lines[i].n, Err: ae.Message[len(m[0]):]})
					lines = append(lines[:i:i], lines[i+1:]...)
					continue
				}
			}
		}
		r.err = fmt.Errorf("batch of lines %d to %d: %w", lines[0].n, lines[len(lines)-1].n, err)
		return r
	}
	return r
}

func readCheckpoint(o Options) (int, error) {
	if o.Checkpoint == "" {
		return 0, nil
	}
	data, err := os.ReadFile(o.Checkpoint)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", o.Checkpoint, err)
	}
	if c.Source != o.Source || c.Queue != o.Queue {
		return 0, fmt.Errorf("checkpoint %s is of %s into queue %q, not of %s into %q: remove it or pass another --checkpoint",
			o.Checkpoint, c.Source, c.Queue, o.Source, o.Queue)
	}
	return c.Line, nil
}

// writeCheckpoint replaces the checkpoint file atomically.
func writeCheckpoint(o Options, lineNo int) error {
	data, _ := json.Marshal(checkpoint{Source: o.Source, Queue: o.Queue, Line: lineNo})
	tmp, err := os.CreateTemp(filepath.Dir(o.Checkpoint), ".htq-checkpoint-*")
	if err != nil {
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	name := tmp.Name()
	defer func() { _ = os.Remove(name) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	if err := os.Rename(name, o.Checkpoint); err != nil {
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	return nil
}
