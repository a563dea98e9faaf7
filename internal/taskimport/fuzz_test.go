package taskimport_test

import (
	"strings"
	"testing"

	"github.com/htq/htq/internal/taskimport"
)

// FuzzNDJSON: any input is read to its end without a panic; every line
// that holds something is either imported or reported bad, once, with a
// line number inside the input; repeating the input creates nothing.
func FuzzNDJSON(f *testing.F) {
	for _, s := range []string{
		ndjson(3, nil), "\n\n", `{"url":"http://x/"}`, `{"url":"http://x/"`, `{"url":"http://x/","colour":1}`,
		`{"url":"http://x/","delay":"1s","run_at":"2030-01-01T00:00:00Z"}`, `[1,2]`, "\x00\xff", `{"url":"http://x/refuse"}`,
		`{"url":"http://x/","delay":-5}`, `{"url":"http://x/"} {"url":"http://y/"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		check(t, in, taskimport.FormatNDJSON, strings.Count(in, "\n")+1)
	})
}

// FuzzCSV: the same for CSV input (the header may be refused as a whole).
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"url\nhttp://x/\n", "url,method,delay\nhttp://x/,POST,1s\nhttp://y/,GET,soon\n", "url,header:A,form:b\n\"http://x/\",\"a\"\"b\",c\n",
		"url\n\"unterminated\n", "method\nGET\n", "url,max_attempts\nhttp://x/,3\nhttp://x/,x\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		check(t, in, taskimport.FormatCSV, strings.Count(in, "\n")+2)
	})
}

func check(t *testing.T, in, format string, maxLine int) {
	t.Helper()
	fake := newFake()
	seen := map[int]bool{}
	opts := taskimport.Options{Queue: "q", Source: "fuzz", Sender: fake, Format: format, Batch: 3, Parallel: 2,
		Input: strings.NewReader(in),
		Bad: func(b taskimport.BadLine) {
			if b.Line < 1 || b.Line > maxLine || b.Err == "" || seen[b.Line] {
				t.Errorf("bad line %+v (input of %d lines, seen before: %v)", b, maxLine, seen[b.Line])
			}
			seen[b.Line] = true
		}}
	rep, err := taskimport.Run(t.Context(), opts)
	if err != nil {
		if format == taskimport.FormatCSV && strings.Contains(err.Error(), "CSV header") {
			return
		}
		t.Fatalf("Run: %v", err)
	}
	if rep.Imported+rep.Bad != rep.Lines || rep.Imported != len(fake.byKey) || rep.Existed != 0 {
		t.Fatalf("report %+v, %d stored", rep, len(fake.byKey))
	}
	opts.Input, opts.Bad = strings.NewReader(in), nil
	again, err := taskimport.Run(t.Context(), opts)
	if err != nil || again.Imported != 0 || again.Existed != rep.Imported || len(fake.byKey) != rep.Imported {
		t.Fatalf("repeat: %+v %v; first %+v", again, err, rep)
	}
}
