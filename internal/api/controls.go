package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// purgeQueue removes a queue's waiting tasks; calls in flight finish and
// dead letters stay.
func (s *Server) purgeQueue(c echo.Context) error {
	name, err := queueName(c)
	if err != nil {
		return err
	}
	n, err := s.st.Purge(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queue": name, "purged": n})
}

// retryTask runs a dead or cancelled task again, at the tail of its queue.
func (s *Server) retryTask(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if err := s.st.RetryTask(ctx, id); err != nil {
		return err
	}
	ti, err := s.st.GetTask(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTaskJSON(ti))
}
