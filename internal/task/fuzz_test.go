package task_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/htq/htq/internal/task"
)

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{
		"0", "30", "0.5", "-1", "1e400", "NaN", "Inf", "-0", "500ms", "1m30s", "-1s",
		"9999999999h", "PT1M30S", "P1DT2H", "P", "PT", "P1.5D", "P99999999999999999999D",
		"pt0.000000001s", "1ns", "", " ", "3153600000", "3153600000.5", "0x1p4", "1_0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := task.ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 || d.Std() > hundredYears {
			t.Fatalf("ParseDuration(%q) = %v: outside 0 to 100 years", s, d.Std())
		}
		// A JSON string holding the same text parses the same way.
		quoted, _ := json.Marshal(s)
		var fromJSON task.Duration
		if err := json.Unmarshal(quoted, &fromJSON); err != nil || fromJSON != d {
			t.Fatalf("JSON %s = %v, %v; want %v", quoted, fromJSON.Std(), err, d.Std())
		}
	})
}

func FuzzSpecDecode(f *testing.F) {
	seed := []*task.Spec{
		{URL: "http://example.com/"},
		{Method: "POST", URL: "https://x/", Header: []task.Field{{"A", "b"}}, BodyKind: task.BodyMultipart, Form: []task.Field{{"k", "v"}}},
		{Method: "PUT", URL: "http://x/", BodyKind: task.BodyRaw, BodyBinary: []byte{0xff, 0}, TimeoutMs: 5, MaxAttempts: 2, CreatedMs: 1, RunAtMs: 2},
		{URL: "http://x/", MinBackoffMs: i64(0), MaxBackoffMs: i64(1500)},
	}
	for i, s := range seed {
		enc, err := task.Encode("queue-"+strconv.Itoa(i)+"-队列", s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	for _, s := range []string{
		"", "\n", "q\n{}", "q\nnull", "q\n[]", "\n{\"u\":\"\"}", "q\n{\"h\":[null,[\"a\"]]}",
		"q\n{\"b\":\"text\",\"x\":\"\"}", "q\n{\"U\":\"x\",\"u\":\"y\"}", "q\n{\"b\":\"\xff\"}",
		"\xff\n{\"x\":\"AAEC\"}", "q\n{\"h\":[]}", "q\n{\"o\":9223372036854775807}",
		"q\n{\"bn\":0,\"bx\":9223372036854775807}", "q\n{\"bn\":null,\"bx\":-1}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stored string) {
		q, s, err := task.Decode(stored)
		if err != nil {
			return
		}
		enc, err := task.Encode(q, s)
		if err != nil {
			t.Fatalf("Encode of a decoded spec: %v", err)
		}
		q2, s2, err := task.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))): %v", stored, err)
		}
		if q2 != q {
			t.Fatalf("queue %q became %q", q, q2)
		}
		enc2, err := task.Encode(q2, s2)
		if err != nil || enc2 != enc {
			t.Fatalf("encoding is not stable:\n first  %q\n second %q (%v)", enc, enc2, err)
		}
		if !bytes.Equal(s.RawBody(), s2.RawBody()) {
			t.Fatalf("body %q became %q after a rewrite of %q", s.RawBody(), s2.RawBody(), stored)
		}
		if s.Method != s2.Method || s.URL != s2.URL || s.BodyKind != s2.BodyKind || len(s.Header) != len(s2.Header) || len(s.Form) != len(s2.Form) ||
			s.TimeoutMs != s2.TimeoutMs || s.MaxAttempts != s2.MaxAttempts || s.CreatedMs != s2.CreatedMs || s.RunAtMs != s2.RunAtMs ||
			!sameInt64(s.MinBackoffMs, s2.MinBackoffMs) || !sameInt64(s.MaxBackoffMs, s2.MaxBackoffMs) {
			t.Fatalf("spec changed in a round trip:\n first  %+v\n second %+v", s, s2)
		}
	})
}

func sameInt64(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
