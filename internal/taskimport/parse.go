package taskimport

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/htq/htq/client"
)

// Formats of the input.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// MaxLine is the longest line read (a longer one is a bad line).
const MaxLine = 4 << 20

// line is one task read from the input.
type line struct {
	n    int // 1-based line number in the input
	task client.TaskRequest
	size int // bytes, for batching by size
}

// BadLine is an input line that was skipped.
type BadLine struct {
	Line int    `json:"line"`
	Err  string `json:"error"`
}

// key derives a line's idempotency key from the source, its number and its
// bytes.
func key(source string, n int, content []byte) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(n)))
	h.Write([]byte{0})
	h.Write(content)
	return "imp-" + hex.EncodeToString(h.Sum(nil)[:20])
}

// reader yields tasks, or bad lines, in input order.
type reader interface {
	// next returns the next line: a task, or bad != nil; io.EOF at the end.
	next() (l line, bad *BadLine, err error)
	// offset is how many input bytes have been consumed.
	offset() int64
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ndjsonReader reads one JSON task per line; blank lines are skipped.
type ndjsonReader struct {
	br      *bufio.Reader
	cr      *countingReader
	source  string
	n       int
	pending error // the read error to return once the line before it is out
}

func newNDJSON(r io.Reader, source string) *ndjsonReader {
	cr := &countingReader{r: r}
	return &ndjsonReader{br: bufio.NewReaderSize(cr, 1<<20), cr: cr, source: source}
}

func (r *ndjsonReader) offset() int64 { return r.cr.n - int64(r.br.Buffered()) }

func (r *ndjsonReader) next() (line, *BadLine, error) {
	for {
		if r.pending != nil {
			return line{}, nil, r.pending
		}
		b, tooLong, err := r.readLine()
		if err != nil {
			r.pending = err // after this line, if there is one
			if len(b) == 0 && !tooLong {
				continue
			}
		}
		r.n++
		if tooLong {
			return line{}, &BadLine{Line: r.n, Err: fmt.Sprintf("longer than %d bytes", MaxLine)}, nil
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		l := line{n: r.n, size: len(b)}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&l.task); derr != nil {
			return line{}, &BadLine{Line: r.n, Err: "invalid task JSON: " + derr.Error()}, nil //nolint:nilerr // a bad line is reported, not an error of the run
		}
		if dec.More() {
			return line{}, &BadLine{Line: r.n, Err: "more than one JSON value on the line"}, nil
		}
		if bad := check(&l.task); bad != "" {
			return line{}, &BadLine{Line: r.n, Err: bad}, nil
		}
		if l.task.IdempotencyKey == "" {
			l.task.IdempotencyKey = key(r.source, r.n, b)
		}
		return l, nil, nil
	}
}

// readLine reads a line of at most MaxLine bytes; a longer one is consumed
// and reported as tooLong.
func (r *ndjsonReader) readLine() (b []byte, tooLong bool, err error) {
	for {
		frag, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(b)+len(frag) > MaxLine {
				tooLong, b = true, nil
			} else {
				b = append(b, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return b, tooLong, err
	}
}

// check is the local validation of a task: what the API would refuse
// for certain, said before anything is sent.
func check(t *client.TaskRequest) string {
	switch {
	case t.URL == "":
		return "url: required"
	case !strings.HasPrefix(t.URL, "http://") && !strings.HasPrefix(t.URL, "https://"):
		return fmt.Sprintf("url %q: want an absolute http:// or https:// URL", t.URL)
	case t.Delay != nil && t.RunAt != nil:
		return "delay and run_at exclude each other"
	}
	return ""
}

// csvReader reads a CSV file whose header names the columns.
type csvReader struct {
	r      *csv.Reader
	cr     *countingReader
	source string
	cols   []string
	last   int
}

// csvColumns are the columns a CSV header may name, besides header:NAME
// and form:NAME.
var csvColumns = map[string]bool{"url": true, "method": true, "body": true, "body_json": true, "body_base64": true,
	"delay": true, "run_at": true, "timeout": true, "max_attempts": true, "min_backoff": true, "max_backoff": true,
	"idempotency_key": true, "form_encoding": true}

func newCSV(r io.Reader, source string) (*csvReader, error) {
	cr := &countingReader{r: r}
	c := csv.NewReader(bufio.NewReaderSize(cr, 1<<20))
	c.ReuseRecord = false
	header, err := c.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	c.FieldsPerRecord = len(header)
	hasURL := false
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "url":
			hasURL = true
		case csvColumns[h]:
		case strings.HasPrefix(h, "header:") && len(h) > len("header:"):
		case strings.HasPrefix(h, "form:") && len(h) > len("form:"):
		default:
			return nil, fmt.Errorf("CSV header: column %d %q: want url, method, body, body_json, body_base64, delay, run_at, timeout, max_attempts, min_backoff, max_backoff, idempotency_key, form_encoding, header:NAME or form:NAME", i+1, h)
		}
	}
	if !hasURL {
		return nil, errors.New("CSV header: no url column")
	}
	return &csvReader{r: c, cr: cr, source: source, cols: header}, nil
}

// offset is approximate for CSV (the csv.Reader buffers); it only feeds
// the progress estimate.
func (r *csvReader) offset() int64 { return r.cr.n }

func (r *csvReader) next() (line, *BadLine, error) {
	rec, err := r.r.Read()
	n := r.last + 1
	if rec != nil {
		n, _ = r.r.FieldPos(0)
	} else {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			n = pe.StartLine
		}
	}
	r.last = n
	if err != nil {
		if errors.Is(err, io.EOF) {
			return line{}, nil, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return line{}, &BadLine{Line: n, Err: "CSV: " + pe.Err.Error()}, nil
		}
		return line{}, nil, err
	}
	l := line{n: n}
	t := &l.task
	for i, v := range rec {
		l.size += len(v) + 1
		if v == "" {
			continue
		}
		if bad := setColumn(t, r.cols[i], v); bad != "" {
			return line{}, &BadLine{Line: n, Err: bad}, nil
		}
	}
	if bad := check(t); bad != "" {
		return line{}, &BadLine{Line: n, Err: bad}, nil
	}
	if t.IdempotencyKey == "" {
		t.IdempotencyKey = key(r.source, n, []byte(strings.Join(rec, "\x1f")))
	}
	return l, nil, nil
}

func setColumn(t *client.TaskRequest, col, v string) string {
	dur := func() (*client.Duration, string) {
		if d, err := time.ParseDuration(v); err == nil {
			return client.D(d), ""
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
			return client.D(time.Duration(f * float64(time.Second))), ""
		}
		return nil, fmt.Sprintf("%s %q: want seconds or a duration such as 1m30s", col, v)
	}
	var bad string
	switch {
	case col == "url":
		t.URL = v
	case col == "method":
		t.Method = v
	case col == "body":
		t.Body, _ = json.Marshal(v) // a JSON string: sent as its text
	case col == "body_json":
		if !json.Valid([]byte(v)) {
			return "body_json: not valid JSON"
		}
		t.Body = json.RawMessage(v)
	case col == "body_base64":
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return "body_base64: not valid base64"
		}
		t.BodyBase64 = &v
	case col == "form_encoding":
		t.FormEncoding = v
	case col == "idempotency_key":
		t.IdempotencyKey = v
	case col == "run_at":
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Sprintf("run_at %q: want an RFC 3339 time", v)
		}
		t.RunAt = &ts
	case col == "delay":
		t.Delay, bad = dur()
	case col == "timeout":
		t.Timeout, bad = dur()
	case col == "min_backoff":
		t.MinBackoff, bad = dur()
	case col == "max_backoff":
		t.MaxBackoff, bad = dur()
	case col == "max_attempts":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Sprintf("max_attempts %q: want a whole number", v)
		}
		t.MaxAttempts = &n
	case strings.HasPrefix(col, "header:"):
		if t.Headers == nil {
			t.Headers = map[string]string{}
		}
		t.Headers[strings.TrimPrefix(col, "header:")] = v
	case strings.HasPrefix(col, "form:"):
		if t.Form == nil {
			t.Form = map[string]string{}
		}
		t.Form[strings.TrimPrefix(col, "form:")] = v
	}
	return bad
}
