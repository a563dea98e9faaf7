// Package redistest starts private redis-server processes for tests: each on
// a free loopback port with its own temporary directory, owned (and killed,
// restarted or paused) by the test that started it.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process (a data node or a sentinel) owned by a
// test.
type Server struct {
	t    testing.TB
	Name string // for messages: "redis-server", "sentinel-1", ...
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of redis-server, failing the test with the fix
// when it is missing (make test installs it).
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: run `make test` (it installs Debian's redis-server) or install it: %v", err)
	}
	return p
}

// Start starts a redis-server without persistence, with the given extra
// arguments (for instance "--appendonly", "yes"), and stops it when the test
// ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartWith(t, "redis-server", func(port int, dir string) []string {
		return append(Args(port, dir), extra...)
	})
}

// Args are the arguments of a plain server on port, in dir: loopback only,
// no persistence, in the foreground, logging to dir/redis.log.
func Args(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
}

// StartWith starts a redis-server process (a cluster node, a replica, a
// sentinel) with the arguments mk builds from its port and its own
// directory, and stops it when the test ends. The port is picked free; a
// collision (rare) is retried on another.
func StartWith(t testing.TB, name string, mk func(port int, dir string) []string) *Server {
	t.Helper()
	s := &Server{t: t, Name: name, Dir: t.TempDir()}
	var lastErr error
	for range 5 {
		s.Port = FreePort(t)
		s.args = mk(s.Port, s.Dir)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("start %s: %v", name, lastErr)
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() error {
	s.cmd = exec.Command(Binary(s.t), s.args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := Answers(ctx, c, s.cmd.Process.Pid)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start: %s", s.Name, s.LogTail(8))
		default:
		}
		if errors.Is(err, ErrOtherServer) {
			s.Kill()
			return err
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("%s on port %d did not answer within 15s: %w", s.Name, s.Port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ErrOtherServer says that another process answered on a server's port.
var ErrOtherServer = errors.New("another redis-server answers on this port")

// Answers reports whether the process pid answers on c. PING alone is not
// enough: a port found free a moment ago may have been taken meanwhile by
// another test's server, whose PING answers just as well, and two tests
// sharing one Redis (and one key prefix) break each other at random.
func Answers(ctx context.Context, c *redis.Client, pid int) error {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if v == strconv.Itoa(pid) {
				return nil
			}
			return fmt.Errorf("%w: process %s, not %d", ErrOtherServer, v, pid)
		}
	}
	return fmt.Errorf("INFO server names no process_id: %q", info)
}

// LogTail returns the last n lines of the server's log, joined by " | ".
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Running reports whether the process has not exited.
func (s *Server) Running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Addr returns "127.0.0.1:<port>".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL returns "redis://127.0.0.1:<port>/0".
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a client that is closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill sends SIGKILL and waits for the process to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop shuts Redis down gracefully (SIGTERM: with AOF on, it syncs first).
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart starts the server again on the same port and directory (after
// Stop or Kill), so AOF data comes back.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly after a kill
	}
	s.t.Fatalf("restart %s: %v", s.Name, err)
}

// Pid returns the process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }
