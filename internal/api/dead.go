package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Bulk limits of the dead-letter actions.
const (
	maxBulkIDs      = 1000 // ids in one request
	defaultBulkSize = 500  // letters one filter request handles by default
	maxBulkSize     = 1000 // and at most
)

// deadRoutes adds the dead-letter routes (across queues) to the /v1 group.
func (s *Server) deadRoutes(v1 *echo.Group) {
	v1.GET("/dead", s.listDead)
	v1.GET("/dead/count", s.countDead)
	v1.POST("/dead/retry", func(c echo.Context) error { return s.deadBulk(c, store.DeadRetry) })
	v1.POST("/dead/delete", func(c echo.Context) error { return s.deadBulk(c, store.DeadDelete) })
}

// deadQueue reads the optional queue query parameter.
func deadQueue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if err := task.ValidateQueueName(v); err != nil {
		return "", apiErr(http.StatusBadRequest, CodeBadRequest, "queue: %v", err)
	}
	return v, nil
}

func (s *Server) listDead(c echo.Context) error {
	if err := onlyParams(c, "queue", "q", "code", "since", "until", "cursor", "limit"); err != nil {
		return err
	}
	queue, err := deadQueue(c.QueryParam("queue"))
	if err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	if queue != "" {
		err = checkCursor(task.StateDead, cursor)
	} else if store.CheckDeadCursor(cursor) != nil {
		err = apiErr(http.StatusBadRequest, CodeBadRequest, "cursor: %q: pass the next_cursor of the previous page", clip(cursor))
	}
	if err != nil {
		return err
	}
	f, err := taskFilter(c)
	if err != nil {
		return err
	}
	tasks, next, err := s.st.ListDead(c.Request().Context(), queue, f, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTaskList(tasks, next))
}

func (s *Server) countDead(c echo.Context) error {
	if err := onlyParams(c, "queue", "q", "code", "since", "until"); err != nil {
		return err
	}
	queue, err := deadQueue(c.QueryParam("queue"))
	if err != nil {
		return err
	}
	f, err := taskFilter(c)
	if err != nil {
		return err
	}
	n, exact, err := s.st.CountDead(c.Request().Context(), queue, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Count int64 `json:"count"`
		Exact bool  `json:"exact"`
	}{n, exact})
}

// deadFilterJSON is the filter of a bulk request.
type deadFilterJSON struct {
	Queue string          `json:"queue"`
	Q     string          `json:"q"`
	Code  json.RawMessage `json:"code"` // a number (or a numeric string)
	Since string          `json:"since"`
	Until string          `json:"until"`
}

type bulkRequest struct {
	IDs    []string        `json:"ids"`
	Filter *deadFilterJSON `json:"filter"`
	Limit  *int            `json:"limit"`
}

type bulkResult struct {
	Matched   int   `json:"matched"`
	Done      int   `json:"done"`
	Remaining int64 `json:"remaining"`
	// Exact is false when remaining is a lower bound (a URL or status
	// filter over more letters than a count reads).
	Exact bool `json:"exact"`
}

func (s *Server) deadBulk(c echo.Context, act store.DeadAction) error {
	var req bulkRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	switch {
	case req.IDs != nil && req.Filter != nil:
		return invalidField("ids", "send either ids or filter, not both")
	case req.IDs == nil && req.Filter == nil:
		return invalidField("ids", "send ids (a list of task ids) or filter")
	case req.IDs != nil:
		if req.Limit != nil {
			return invalidField("limit", "applies to a filter only")
		}
		if len(req.IDs) == 0 {
			return invalidField("ids", "want at least one task id")
		}
		if len(req.IDs) > maxBulkIDs {
			return invalidField("ids", "%d ids, at most %d in one request", len(req.IDs), maxBulkIDs)
		}
		for i, id := range req.IDs {
			if _, err := task.IDPartition(id); err != nil {
				return invalidField("ids["+strconv.Itoa(i)+"]", "%q: not a task id (14 hex digits)", clip(id))
			}
		}
		matched, done, err := s.st.DeadBulk(ctx, act, req.IDs)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, bulkResult{Matched: matched, Done: done, Exact: true})
	}
	limit := defaultBulkSize
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > maxBulkSize {
			return invalidField("limit", "want 1 to %d", maxBulkSize)
		}
		limit = *req.Limit
	}
	fj := req.Filter
	queue := ""
	if fj.Queue != "" {
		if err := task.ValidateQueueName(fj.Queue); err != nil {
			return invalidField("filter.queue", "%v", err)
		}
		queue = fj.Queue
	}
	code := ""
	if len(fj.Code) > 0 && string(fj.Code) != "null" {
		var n json.Number
		if err := json.Unmarshal(fj.Code, &n); err != nil {
			var str string
			if json.Unmarshal(fj.Code, &str) != nil {
				return invalidField("filter.code", "want an HTTP status, 100 to 599")
			}
			n = json.Number(str)
		}
		code = n.String()
	}
	f, err := parseFilter(filterInput{Q: fj.Q, Code: code, Since: fj.Since, Until: fj.Until}, "filter.", http.StatusUnprocessableEntity, CodeValidation)
	if err != nil {
		return err
	}
	matched, done, remaining, exact, err := s.st.DeadBulkFilter(ctx, act, queue, f, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, bulkResult{Matched: matched, Done: done, Remaining: remaining, Exact: exact})
}
