package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Overview settings.
const (
	overviewMinutes = 60               // minutes of counters an overview shows
	backlogMaxAge   = 10 * time.Second // an older backlog snapshot is refreshed (in the background)
	backlogLockFor  = 10 * time.Second // at most one refresh per this, across API replicas
)

type minuteJSON struct {
	T         time.Time `json:"t"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	Dead      int64     `json:"dead"`
}

type backlogJSON struct {
	Scheduled int64      `json:"scheduled"`
	Queued    int64      `json:"queued"`
	Active    int64      `json:"active"`
	Dead      int64      `json:"dead"`
	At        *time.Time `json:"at,omitempty"`
}

type dispatcherJSON struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

type overviewJSON struct {
	Minutes   []minuteJSON `json:"minutes"`
	Backlog   backlogJSON  `json:"backlog"`
	Queues    int64        `json:"queues"`
	Scheduler struct {
		Leader string `json:"leader"`
		Term   int64  `json:"term"`
	} `json:"scheduler"`
	Dispatchers []dispatcherJSON `json:"dispatchers"`
}

// overview answers from bounded reads only: 60 small hashes of counters,
// the cached backlog snapshot, the queue count, the leader lock and the
// live dispatchers. A stale snapshot is refreshed in the background.
func (s *Server) overview(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	mins, err := s.st.Minutes(ctx, overviewMinutes)
	if err != nil {
		return err
	}
	out := overviewJSON{Minutes: make([]minuteJSON, len(mins)), Dispatchers: []dispatcherJSON{}}
	for i, m := range mins {
		out.Minutes[i] = minuteJSON{T: m.Start.UTC(), Succeeded: m.Succeeded, Failed: m.Failed, Dead: m.Dead}
	}
	b, ok, err := s.st.CachedBacklog(ctx)
	if err != nil {
		return err
	}
	if !ok { // the very first overview: take the snapshot now
		if _, err := s.st.RefreshBacklog(ctx, backlogLockFor); err != nil {
			return err
		}
		if b, ok, err = s.st.CachedBacklog(ctx); err != nil {
			return err
		}
	} else if s.now().Sub(b.At) > backlogMaxAge {
		s.refreshBacklog()
	}
	if ok {
		out.Backlog = backlogJSON{Scheduled: b.Scheduled, Queued: b.Queued, Active: b.Active, Dead: b.Dead, At: timePtr(b.At)}
	}
	if out.Queues, err = s.st.QueueCount(ctx); err != nil {
		return err
	}
	if out.Scheduler.Leader, out.Scheduler.Term, err = s.st.LeaderToken(ctx); err != nil {
		return err
	}
	members, err := s.st.LiveMembers(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		out.Dispatchers = append(out.Dispatchers, dispatcherJSON{ID: m.ID, ExpiresAt: m.Expires.UTC()})
	}
	return c.JSON(http.StatusOK, out)
}

// refreshBacklog refreshes the backlog snapshot in a goroutine the server
// owns (Serve waits for it), unless one is already running here.
func (s *Server) refreshBacklog() {
	if !s.refreshing.CompareAndSwap(false, true) {
		return
	}
	s.bg.Go(func() {
		defer s.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(s.baseCtx, 30*time.Second)
		defer cancel()
		if _, err := s.st.RefreshBacklog(ctx, backlogLockFor); err != nil && ctx.Err() == nil {
			s.log.Warn("refresh backlog snapshot", "err", err)
		}
	})
}
