package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/metrics"
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
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// toError maps any error to an API error. It is the one place where domain
// outcomes become HTTP statuses.
func toError(err error) *Error {
	var ae *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	var full *task.QueueFullError
	if se := scheduleError(err); se != nil {
		return se
	}
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
	case errors.Is(err, task.ErrBadURL), errors.Is(err, task.ErrBadMethod), errors.Is(err, task.ErrBadHeader),
		errors.Is(err, task.ErrBadTimeout), errors.Is(err, task.ErrBadQueue), errors.Is(err, task.ErrBadDuration),
		errors.Is(err, task.ErrBadID):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeValidation, Message: err.Error(), reason: metrics.ReasonInvalid}
	case errors.As(err, &he):
		return fromEcho(he)
	default:
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the task store did not answer: the change may or may not have been made; " +
				"retry with the same Idempotency-Key to be sure it is made once", reason: metrics.ReasonUnavailable}
	}
}

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
