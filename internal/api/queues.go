package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// queueJSON is a queue as REST shows it.
type queueJSON struct {
	Name string `json:"name"`
	task.QueueConfig
	Paused    bool         `json:"paused"`
	CreatedAt time.Time    `json:"created_at"`
	Counts    store.Counts `json:"counts"`
}

func toQueueJSON(qi *store.QueueInfo) queueJSON {
	return queueJSON{Name: qi.Name, QueueConfig: qi.Config, Paused: qi.Paused, CreatedAt: qi.Created.UTC(), Counts: qi.Counts}
}

// queueName reads and validates the {queue} path parameter.
func queueName(c echo.Context) (string, error) {
	// Echo routes on RawPath when the request has one (a %2F in a name),
	// and then its parameters are still escaped; otherwise they come from
	// the already unescaped Path and must not be unescaped again ("100%25"
	// names the queue "100%", "a%2541" the queue "a%41").
	name := c.Param("queue")
	if c.Request().URL.RawPath != "" {
		var err error
		if name, err = url.PathUnescape(name); err != nil {
			return "", apiErr(http.StatusBadRequest, CodeBadRequest, "queue name in the path is not validly escaped")
		}
	}
	if err := task.ValidateQueueName(name); err != nil {
		return "", err
	}
	return name, nil
}

func (s *Server) putQueue(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return err
	}
	var p queuePatch
	if err := readJSON(c, &p); err != nil {
		return err
	}
	if err := p.badDuration(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	cfg := s.cfg.QueueDefaults
	mode := store.PutCreate
	cur, err := s.st.GetQueue(ctx, name)
	switch {
	case err == nil:
		cfg, mode = cur.Config, store.PutUpdate
	case !errors.Is(err, task.ErrQueueNotFound):
		return err
	}
	p.apply(&cfg)
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.CheckGapFloor(s.cfg.MinVariableGap); err != nil {
		return err
	}
	created, err := s.st.PutQueue(ctx, name, &cfg, mode)
	if err != nil {
		return err
	}
	qi, err := s.st.GetQueue(ctx, name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, toQueueJSON(qi))
}

func (s *Server) getQueue(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return err
	}
	qi, err := s.st.GetQueue(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toQueueJSON(qi))
}

func (s *Server) listQueues(c echo.Context) error {
	if err := onlyParams(c, "prefix", "cursor", "limit"); err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	prefix := c.QueryParam("prefix")
	if len(prefix) > task.MaxQueueNameBytes || !utf8.ValidString(prefix) || strings.ContainsFunc(prefix, unicode.IsControl) {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "prefix: want at most %d bytes of UTF-8 without control characters", task.MaxQueueNameBytes)
	}
	qs, more, err := s.st.ListQueuesPrefix(c.Request().Context(), prefix, cursor, limit)
	if err != nil {
		return err
	}
	out := struct {
		Queues     []queueJSON `json:"queues"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Queues: []queueJSON{}}
	for _, q := range qs {
		out.Queues = append(out.Queues, toQueueJSON(q))
	}
	if more && len(qs) > 0 {
		out.NextCursor = qs[len(qs)-1].Name
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteQueue(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return err
	}
	if err := s.st.DeleteQueue(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) pauseQueue(c echo.Context) error { return s.setPaused(c, true) }

func (s *Server) resumeQueue(c echo.Context) error { return s.setPaused(c, false) }

func (s *Server) setPaused(c echo.Context, paused bool) error {
	name, err := queueName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.st.SetPaused(ctx, name, paused); err != nil {
		return err
	}
	qi, err := s.st.GetQueue(ctx, name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toQueueJSON(qi))
}
