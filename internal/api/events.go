package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Event stream defaults.
const (
	defaultEventKeepalive = 15 * time.Second
	eventBuffer           = 1024 // events waiting for a slow client before some are dropped
)

// eventJSON is one task event as the stream sends it.
type eventJSON struct {
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	Queue   string    `json:"queue"`
	Time    time.Time `json:"time"`
	Attempt int       `json:"attempt,omitempty"`
	Status  int       `json:"status,omitempty"`
}

// events streams task events as server-sent events until the client goes
// away or the server shuts down. Each client has its own subscription
// (one Redis connection on a standalone Redis), closed when it leaves.
func (s *Server) events(c echo.Context) error {
	if err := onlyParams(c, "queue"); err != nil {
		return err
	}
	queue := c.QueryParam("queue")
	if queue != "" {
		if err := task.ValidateQueueName(queue); err != nil {
			return apiErr(http.StatusBadRequest, CodeBadRequest, "queue: %v", err)
		}
	}
	ctx := c.Request().Context()
	sub := s.st.SubscribeEvents(ctx, eventBuffer)
	defer sub.Close()
	select {
	case <-sub.Ready():
	case <-ctx.Done():
		return nil
	case <-s.closing:
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
	case <-time.After(10 * time.Second):
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "the task store did not confirm the event subscription")
	}
	keepalive := s.cfg.EventKeepalive
	if keepalive == 0 {
		keepalive = defaultEventKeepalive
	}
	w := c.Response()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// write sends one chunk, each under a fresh write deadline: a stream
	// lives longer than api.write_timeout, a stuck client does not.
	write := func(chunk string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(keepalive + 10*time.Second))
		if _, err := w.Write([]byte(chunk)); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write(": subscribed\n\n"); err != nil {
		return nil // the client is gone
	}
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			_ = write(": server shutting down\n\n")
			return nil
		case <-tick.C:
			if err := write(": keepalive\n\n"); err != nil {
				return nil
			}
		case e := <-sub.C():
			if queue != "" && e.Queue != queue {
				continue
			}
			if err := write(formatEvent(e)); err != nil {
				return nil
			}
		}
	}
}

// formatEvent renders one event in the text/event-stream format.
func formatEvent(e store.Event) string {
	b, err := json.Marshal(eventJSON{Type: e.Type, ID: e.ID, Queue: e.Queue, Time: e.Time.UTC(), Attempt: e.Attempt, Status: e.Status})
	if err != nil { // cannot happen: strings and numbers only
		b = []byte(`{}`)
	}
	return fmt.Sprintf("event: %s\ndata: %s\n\n", e.Type, b)
}
