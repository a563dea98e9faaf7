package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/api"
)

// serve runs the test server's API on a real listener through
// api.Server.Serve, and stops it when the test ends.
func (e *testEnv) serve() string {
	e.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, l, 2*time.Second) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// TestSlowClientHeaders: a client that trickles its request headers one
// byte per 200 ms is cut off by ReadHeaderTimeout (500 ms), and meanwhile
// other clients are served.
func TestSlowClientHeaders(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.ReadHeaderTimeout = 500 * time.Millisecond }})
	addr := e.serve()

	const slow = 5
	start := time.Now()
	results := make(chan error, slow)
	for range slow {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go func() { results <- trickle(conn, start.Add(2*time.Second)) }()
	}

	// a well-behaved client is served while the slow ones hang on
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz beside slow clients: %d", resp.StatusCode)
	}

	for range slow {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("slow connections closed after %v: before the 500 ms header timeout?", d)
	}
}

// trickle writes a request one byte per 200 ms and reports nil once the
// server has closed the connection, or an error if it is still open at
// deadline.
func trickle(conn net.Conn, deadline time.Time) error {
	req := "GET /healthz HTTP/1.1\r\nHost: htq\r\nX-Slow: " + strings.Repeat("a", 64) + "\r\n\r\n"
	closed := make(chan error, 1)
	go func() {
		_ = conn.SetReadDeadline(deadline)
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if n > 0 && strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
				closed <- errors.New("the trickled request was answered 200")
				return
			}
			if err != nil {
				closed <- err
				return
			}
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case err := <-closed:
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				return errors.New("connection still open 2 s after the first byte: ReadHeaderTimeout did not cut it off")
			case errors.Is(err, io.EOF), isReset(err):
				return nil
			default:
				return err
			}
		case <-tick.C:
			if i < len(req) {
				// a write may fail once the server has closed: the reader reports it
				_, _ = conn.Write([]byte{req[i]})
			}
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}
