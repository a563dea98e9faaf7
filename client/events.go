package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Event is one task event of GET /v1/events.
type Event struct {
	Type    string    `json:"type"` // created, started, succeeded, failed or dead
	ID      string    `json:"id"`
	Queue   string    `json:"queue"`
	Time    time.Time `json:"time"`
	Attempt int       `json:"attempt,omitempty"`
	Status  int       `json:"status,omitempty"`
}

// ErrStopEvents, returned by an Events callback, ends the stream without
// an error.
var ErrStopEvents = errors.New("client: stop the event stream")

// Events streams task events (of one queue, or of every queue when queue
// is empty), calling fn for each, until ctx ends (nil), fn returns an
// error (ErrStopEvents: nil) or the server ends the stream (io.EOF). The
// stream is best effort: what happens before the server confirms the
// subscription, or while a reader lags far behind, is not delivered. It
// is not retried, and not bounded by the HTTP client's Timeout.
func (c *Client) Events(ctx context.Context, queue string, fn func(Event) error) error {
	u := *c.base
	u.Path += "/v1/events"
	if queue != "" {
		u.RawQuery = url.Values{"queue": {queue}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := &http.Client{Transport: c.http.Transport, CheckRedirect: c.http.CheckRedirect, Jar: c.http.Jar} // no Timeout: a stream lasts
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("client: GET /v1/events: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return errorOf(resp, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var e Event
			if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
				return &Error{Status: resp.StatusCode, Code: codeUnexpectedAnswer, Message: fmt.Sprintf("event %q: %v", clip([]byte(data.String()), 200), err)}
			}
			data.Reset()
			if err := fn(e); err != nil {
				if errors.Is(err, ErrStopEvents) {
					return nil
				}
				return err
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
		// "event:" repeats the type of the data; comments (":") and other
		// fields are skipped.
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("client: GET /v1/events: %w", err)
	}
	return io.EOF
}
