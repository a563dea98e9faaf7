package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Script replies arrive as []any holding strings, int64s and nested lists.
// These helpers read them strictly: a reply of an unexpected shape is an
// error (ErrBadReply), never a zero value that looks like an answer.

// ErrBadReply reports a script reply of an unexpected shape: a script and
// the code reading it disagree.
var ErrBadReply = errors.New("unexpected script reply")

func badReply(what string, v any) error {
	return fmt.Errorf("%w: %s: %#v", ErrBadReply, what, v)
}

// marks are the earliest times a script added to, or moved earlier in, a
// partition's ready, timer and dead-letter indexes (0: none); see
// lua/common.lua.
type marks [dueKinds]int64

// unwrap splits a script's reply {ready mark, timer mark, dead mark, body}.
func unwrap(v any) (marks, any, error) {
	var m marks
	l, ok := v.([]any)
	if !ok || len(l) != dueKinds+1 {
		return m, nil, badReply("envelope", v)
	}
	for i := range m {
		n, ok := l[i].(int64)
		if !ok {
			return m, nil, badReply("mark", l[i])
		}
		m[i] = n
	}
	return m, l[dueKinds], nil
}

// reader reads the elements of a list reply in order; the first element of
// a wrong shape sets err, and every read after it returns zero values.
type reader struct {
	what string
	r    []any
	i    int
	err  error
}

func newReader(what string, v any) *reader {
	l, ok := v.([]any)
	if !ok {
		return &reader{what: what, err: badReply(what, v)}
	}
	return &reader{what: what, r: l}
}

// left is how many elements remain.
func (rd *reader) left() int {
	if rd.err != nil {
		return 0
	}
	return len(rd.r) - rd.i
}

func (rd *reader) next() (any, bool) {
	if rd.err != nil {
		return nil, false
	}
	if rd.i >= len(rd.r) {
		rd.err = fmt.Errorf("%w: %s: %d elements, wanted more", ErrBadReply, rd.what, len(rd.r))
		return nil, false
	}
	v := rd.r[rd.i]
	rd.i++
	return v, true
}

func (rd *reader) str() string {
	v, ok := rd.next()
	if !ok {
		return ""
	}
	s, err := asString(v)
	if err != nil && rd.err == nil {
		rd.err = fmt.Errorf("%s element %d: %w", rd.what, rd.i-1, err)
	}
	return s
}

func (rd *reader) int() int64 {
	v, ok := rd.next()
	if !ok {
		return 0
	}
	n, err := asInt(v)
	if err != nil && rd.err == nil {
		rd.err = fmt.Errorf("%s element %d: %w", rd.what, rd.i-1, err)
	}
	return n
}

// asString reads a string reply; integers are given in decimal.
func asString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	}
	return "", badReply("string", v)
}

// asInt reads an integer reply, or a string holding an integer (Redis
// answers a number stored in a hash as text).
func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err == nil {
			return n, nil
		}
		f, ferr := strconv.ParseFloat(x, 64)
		if ferr != nil {
			return 0, badReply("integer", v)
		}
		return int64(f), nil
	}
	return 0, badReply("integer", v)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func sortedStrings(v []string) []string {
	slices.Sort(v)
	return v
}
