package task

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Action is what a target asked for in its answer to a call.
type Action int

// Actions. A variable task's target answers "done" to end the task or
// "reset" to return to the shortest gap; any task's target may answer
// X-HTQ-Action: done to end it as succeeded, or X-HTQ-Action: dead to end
// it as dead, with no further calls or retries whatever the status.
const (
	ActionNone Action = iota
	ActionDone
	ActionReset
	ActionDead
)

// Headers a target may answer with to steer its task.
const (
	HeaderAction = "X-HTQ-Action"
	HeaderNextIn = "X-HTQ-Next-In"
)

// ParseAction reads the target's answer: the X-HTQ-Action header wins over the
// body; the body counts when it is exactly "done" or "reset" (surrounding
// whitespace ignored), as the legacy protocol says.
func ParseAction(h http.Header, body []byte) Action {
	if a := ActionFromHeader(h); a != ActionNone {
		return a
	}
	return ActionFromBody(body)
}

// ActionFromHeader reads X-HTQ-Action: done, reset or dead (any case).
func ActionFromHeader(h http.Header) Action {
	switch strings.ToLower(strings.TrimSpace(h.Get(HeaderAction))) {
	case "done":
		return ActionDone
	case "reset":
		return ActionReset
	case "dead":
		return ActionDead
	}
	return ActionNone
}

// ActionFromBody reads a variable task's answer body: exactly "done" or "reset".
func ActionFromBody(body []byte) Action {
	switch string(bytes.TrimSpace(body)) {
	case "done":
		return ActionDone
	case "reset":
		return ActionReset
	}
	return ActionNone
}

// ParseNextIn reads X-HTQ-Next-In (seconds, fractions allowed). It reports
// false when the header is absent or invalid.
func ParseNextIn(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get(HeaderNextIn))
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, false
	}
	d, err := SecondsDuration(f)
	if err != nil {
		return 0, false
	}
	return d.Std(), true
}

// NextCall applies the variable-queue rule after a call: k is the number of
// calls since the task was added or last reset. It returns the gap before the
// next call and the new k. With stepping 2 s and max 5 s the gaps are 0, 2, 4,
// 5, 5… and after a reset 2 s, then 0, 2, 4… again. A target's
// X-HTQ-Next-In (nextIn >= 0) replaces the gap but keeps counting k.
func NextCall(k int64, a Action, step, maxGap time.Duration, nextIn time.Duration, hasNextIn bool) (gap time.Duration, newK int64) {
	switch a {
	case ActionReset:
		gap, newK = step, 0
	default:
		switch {
		case step <= 0:
			gap = 0
		case k > int64(maxGap/step):
			gap = maxGap // also keeps k*step from overflowing
		default:
			gap = min(time.Duration(k)*step, maxGap)
		}
		newK = k + 1
	}
	if hasNextIn {
		gap = nextIn
	}
	return gap, newK
}
