package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/task"
)

// TestErrorMapping: Redis failures are 503, a client's faults 4xx, and an
// error nobody expected is a bug: 500 internal, never a 503 that tells
// the client its change may have been made.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"redis refused the connection", fmt.Errorf("enqueue: %w", dial), http.StatusServiceUnavailable, CodeUnavailable},
		{"redis pool timeout", fmt.Errorf("get: %w", redis.ErrPoolTimeout), http.StatusServiceUnavailable, CodeUnavailable},
		{"redis read timeout", fmt.Errorf("get: %w", os.ErrDeadlineExceeded), http.StatusServiceUnavailable, CodeUnavailable},
		{"redis store deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, CodeUnavailable},
		{"client gone", fmt.Errorf("get: %w", context.Canceled), http.StatusBadRequest, CodeBadRequest},
		{"body too slow", &bodyReadError{os.ErrDeadlineExceeded}, http.StatusRequestTimeout, CodeRequestTimeout},
		{"body cut short", &bodyReadError{errors.New("unexpected EOF")}, http.StatusBadRequest, CodeBadRequest},
		{"a bug", errors.New("assignment to entry in nil map"), http.StatusInternalServerError, CodeInternal},
		{"a stored spec that cannot be decoded", fmt.Errorf("get: %w", task.ErrBadSpec), http.StatusInternalServerError, CodeInternal},
		{"redis.Nil that escaped", fmt.Errorf("get: %w", redis.Nil), http.StatusInternalServerError, CodeInternal},
	} {
		ae := toError(tc.err)
		if ae.Status != tc.status || ae.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, ae.Status, ae.Code, tc.status, tc.code)
		}
	}
}
