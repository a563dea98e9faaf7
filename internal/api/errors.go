package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Error is an API error: an HTTP status, a stable machine-readable code and
// a message for people. It is rendered as {"error":{"code":…,"message":…}}.
type Error struct {
	Status  int
	Code    string
	Message string
	reason  string // htq_api_tasks_rejected_total label, when a task was refused
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidJSON      = "invalid_json"
	CodeValidation       = "validation_failed"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMisdirected      = "misdirected_request"
	CodeNotFound         = "not_found"
	CodeQueueNotFound    = "queue_not_found"
	CodeTaskNotFound     = "task_not_found"
	CodeQueueExists      = "queue_exists"
	CodeTaskFinished     = "task_finished"
	CodeTaskNotDead      = "task_not_dead"
	CodeTooLarge         = "payload_too_large"
	CodeQueueFull        = "queue_full"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeRequestTimeout   = "request_timeout"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// maxMessageBytes bounds an error message: values a request echoes back are
// clipped where they are quoted, and this is the backstop for any message
// that still quotes too much (a 0.9 MB timeout string once came back in a
// 5.4 MB error).
const maxMessageBytes = 1024

// toError maps any error to an API error, its message at most
// maxMessageBytes (plus an ellipsis). It is the one place where domain
// outcomes become HTTP statuses.
func toError(err error) *Error {
	ae := mapError(err)
	if len(ae.Message) > maxMessageBytes {
		clipped := *ae
		clipped.Message = clipTo(ae.Message, maxMessageBytes)
		return &clipped
	}
	return ae
}

func mapError(err error) *Error {
	var ae *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	var full *task.QueueFullError
	if se := scheduleError(err); se != nil {
		return se
	}
	var bre *bodyReadError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("request body over the limit of %d bytes", mbe.Limit), reason: metrics.ReasonTooLarge}
	case errors.As(err, &full):
		return &Error{Status: http.StatusTooManyRequests, Code: CodeQueueFull, Message: full.Error(), reason: metrics.ReasonQueueFull}
	case errors.Is(err, task.ErrQueueNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeQueueNotFound, Message: err.Error(), reason: metrics.ReasonNoQueue}
	case errors.Is(err, task.ErrTaskNotFound):
		return apiErr(http.StatusNotFound, CodeTaskNotFound, "%s", err.Error())
	case errors.Is(err, task.ErrQueueExists):
		return apiErr(http.StatusConflict, CodeQueueExists, "%s", err.Error())
	case errors.Is(err, task.ErrTaskFinished):
		return apiErr(http.StatusConflict, CodeTaskFinished, "%s", err.Error())
	case errors.Is(err, task.ErrTaskNotDead):
		return apiErr(http.StatusConflict, CodeTaskNotDead, "%s", err.Error())
	case errors.Is(err, task.ErrTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: err.Error(), reason: metrics.ReasonTooLarge}
	case errors.Is(err, task.ErrInvalid): // every validation sentinel of package task wraps it
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeValidation, Message: err.Error(), reason: metrics.ReasonInvalid}
	case errors.As(err, &he):
		return fromEcho(he)
	case errors.As(err, &bre):
		// the client's fault: it was too slow, or it went away
		var ne net.Error
		if errors.As(bre.err, &ne) && ne.Timeout() {
			return apiErr(http.StatusRequestTimeout, CodeRequestTimeout, "the request body did not arrive in time (api.read_timeout)")
		}
		return apiErr(http.StatusBadRequest, CodeBadRequest, "the request body could not be read: it ended early or the connection was lost")
	case errors.Is(err, context.Canceled):
		return apiErr(http.StatusBadRequest, CodeBadRequest, "the request was cancelled by its client")
	case store.Unavailable(err):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the task store did not answer: the change may or may not have been made; " +
				"retry with the same Idempotency-Key to be sure it is made once", reason: metrics.ReasonUnavailable}
	default:
		// a bug, not a fault of the client or of Redis: logged by handleError
		return apiErr(http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

// bodyReadError is a failure to read a request body (other than its size
// limit): a client too slow for api.read_timeout, or gone.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

func fromEcho(he *echo.HTTPError) *Error {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return apiErr(he.Code, CodeNotFound, "no such route")
	case http.StatusMethodNotAllowed:
		return apiErr(he.Code, CodeMethodNotAllowed, "method not allowed on this route")
	case http.StatusRequestEntityTooLarge:
		return &Error{Status: he.Code, Code: CodeTooLarge, Message: "request body too large", reason: metrics.ReasonTooLarge}
	case http.StatusUnauthorized:
		return apiErr(he.Code, CodeUnauthorized, "%s", msg)
	case http.StatusUnsupportedMediaType:
		return apiErr(he.Code, CodeUnsupportedMedia, "%s", msg)
	}
	if he.Code >= 400 && he.Code < 500 {
		return apiErr(he.Code, CodeBadRequest, "%s", msg)
	}
	return apiErr(http.StatusInternalServerError, CodeInternal, "internal error")
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handleError renders every error of the REST routes.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := toError(err)
	if ae.Code == CodeUnavailable && s.st.NotApplied(err) {
		ae = &Error{Status: ae.Status, Code: ae.Code, Message: "the task store is unavailable; nothing was changed, try again", reason: ae.reason}
	}
	if ae.Status >= 500 {
		s.log.Error("request failed", "route", c.Path(), "method", c.Request().Method, "status", ae.Status, "err", err)
	}
	if ae.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="htq"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, errorBody{Error: errorDetail{Code: ae.Code, Message: ae.Message}})
}
