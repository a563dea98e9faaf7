package testcluster

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// TestTargetNamesTheCallingProcess: every call, each on a new connection,
// is attributed to the tracked process that opened it, and to none other.
func TestTargetNamesTheCallingProcess(t *testing.T) {
	tg := NewTarget(t)
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	tg.mu.Lock()
	tg.pids = map[int]string{os.Getpid(): "this-test", other.Process.Pid: "sleep"}
	tg.callerWait = time.Minute // every lookup completes, however loaded the machine
	tg.mu.Unlock()

	// Each call on a connection of its own, closed right after the answer;
	// a burst of them is looked up in a few passes, not one each.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	const n, workers = 200, 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range workers {
		wg.Go(func() {
			for range n / workers {
				resp, err := client.Get(tg.URL + "/x")
				if err != nil {
					errs <- err
					return
				}
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		named, wrong := 0, 0
		for _, c := range tg.Calls() {
			switch c.Caller {
			case "this-test":
				named++
			case "":
			default:
				wrong++
			}
		}
		if wrong > 0 {
			t.Fatalf("%d calls attributed to another process", wrong)
		}
		if named == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls attributed to the calling process", named, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnOwnersMatchesBothEnds: a connection is found by its two ports
// together, in one pass for many.
func TestConnOwnersMatchesBothEnds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	to := l.Addr().(*net.TCPAddr).Port
	var conns []pendingConn
	for range 20 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, pendingConn{from: c.LocalAddr().(*net.TCPAddr).Port, to: to, ci: &connInfo{}})
	}
	stray := pendingConn{from: conns[0].from, to: to + 1, ci: &connInfo{}} // right port, wrong peer
	owners := connOwners(append(conns, stray), map[int]string{os.Getpid(): "me"})
	for i, c := range conns {
		if owners[c.ci] != "me" {
			t.Errorf("connection %d: owner %q, want me", i, owners[c.ci])
		}
	}
	if name, ok := owners[stray.ci]; ok {
		t.Errorf("a connection with the wrong remote port was attributed to %q", name)
	}
}
