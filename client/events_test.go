package client_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/htq/htq/client"
)

// TestEvents reads a stream with comments, two events and a multi-line
// data field; ErrStopEvents ends it quietly, the server's end is io.EOF,
// and a refusal is a *client.Error.
func TestEvents(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"no"}}`))
			return
		}
		if r.URL.Query().Get("queue") != "q" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(": subscribed\n\nevent: created\ndata: {\"type\":\"created\",\"id\":\"45000000000001\",\"queue\":\"q\",\"time\":\"2026-11-22T07:39:48.192Z\"}\n\n" +
			": keepalive\n\nevent: succeeded\ndata: {\"type\":\"succeeded\",\"id\":\"45000000000001\",\ndata: \"queue\":\"q\",\"time\":\"2026-11-22T07:39:48.201Z\",\"attempt\":1,\"status\":200}\n\n"))
	}))
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithHTTPClient(&http.Client{Timeout: time.Millisecond})) // the stream ignores the Timeout
	var got []client.Event
	err := c.Events(t.Context(), "q", func(e client.Event) error { got = append(got, e); return nil })
	if !errors.Is(err, io.EOF) || len(got) != 2 || got[0].Type != "created" || got[1].Status != 200 || got[1].Attempt != 1 || got[1].Queue != "q" {
		t.Fatalf("events %+v, err %v", got, err)
	}
	got = nil
	if err := c.Events(t.Context(), "q", func(e client.Event) error { got = append(got, e); return client.ErrStopEvents }); err != nil || len(got) != 1 {
		t.Fatalf("stop after one: %+v %v", got, err)
	}
	bad, _ := client.New(ts.URL, client.WithToken("wrong"))
	var ae *client.Error
	if err := bad.Events(t.Context(), "q", func(client.Event) error { return nil }); !errors.As(err, &ae) || ae.Status != 401 || ae.Code != client.CodeUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
}
