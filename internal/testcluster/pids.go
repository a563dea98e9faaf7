package testcluster

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pendingConn is a connection whose calling process is still to be found.
type pendingConn struct {
	from, to int // the caller's port, the target's port
	ci       *connInfo
}

// connOwners finds which of the given processes holds the client end of
// each loopback TCP connection (Linux /proc), in one pass over the socket
// table and one over each process's descriptors, however many connections
// there are: a look per connection costs O(sockets) each, and under a burst
// of new connections (calls timing out under load) the looks pile up and
// starve the test. Both ends must match: Linux gives the same ephemeral
// port to outgoing connections with different destinations, so a port
// alone can name a socket of another process (one to Redis, say).
func connOwners(conns []pendingConn, pids map[int]string) map[*connInfo]string {
	type ends struct{ from, to int }
	want := map[ends][]*connInfo{}
	for _, c := range conns {
		k := ends{c.from, c.to}
		want[k] = append(want[k], c.ci)
	}
	byInode := map[string][]*connInfo{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...":
			// split by hand, the table has a line per socket on the machine
			var f [10]string
			if n := splitFields(sc.Text(), f[:]); n < len(f) {
				continue
			}
			if cis, ok := want[ends{hexPort(f[1]), hexPort(f[2])}]; ok {
				byInode[f[9]] = cis
			}
		}
		_ = fh.Close()
	}
	out := map[*connInfo]string{}
	if len(byInode) == 0 {
		return out
	}
	for pid, name := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			dest, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
			if err != nil || !strings.HasPrefix(dest, "socket:[") {
				continue
			}
			for _, ci := range byInode[strings.TrimSuffix(strings.TrimPrefix(dest, "socket:["), "]")] {
				out[ci] = name
			}
		}
	}
	return out
}

// splitFields fills f with the first len(f) space-separated fields of line
// and returns how many it found.
func splitFields(line string, f []string) int {
	n := 0
	for i := 0; i < len(line) && n < len(f); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if j > i {
			f[n] = line[i:j]
			n++
		}
		i = j
	}
	return n
}

// hexPort reads the port of a /proc/net/tcp address ("0100007F:1F90"), or -1.
func hexPort(addr string) int {
	_, h, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	p, err := strconv.ParseInt(h, 16, 32)
	if err != nil {
		return -1
	}
	return int(p)
}

// TrackCallers makes the target record which of these processes made each
// call (Call.Caller), from the connection's ports.
func (tg *Target) TrackCallers(procs ...*Proc) {
	pids := map[int]string{}
	for _, p := range procs {
		pids[p.Pid()] = p.Name
	}
	tg.mu.Lock()
	tg.pids = pids
	tg.mu.Unlock()
}

// noteConn queues a new connection for the resolver, while the caller's
// socket certainly exists. The answer belongs to the connection, not to its
// address, which a later connection of another process may reuse.
func (tg *Target) noteConn(c net.Conn, ci *connInfo) {
	tg.mu.Lock()
	tracking := len(tg.pids) > 0
	tg.mu.Unlock()
	if !tracking {
		return
	}
	from, err1 := addrPort(c.RemoteAddr().String())
	to, err2 := addrPort(c.LocalAddr().String())
	if err1 != nil || err2 != nil {
		return
	}
	ci.resolved = make(chan struct{})
	tg.resolveMu.Lock()
	tg.toResolve = append(tg.toResolve, pendingConn{from: from, to: to, ci: ci})
	tg.resolveMu.Unlock()
	select {
	case tg.resolveWake <- struct{}{}:
	default:
	}
}

// resolver finds the callers of the connections noteConn queued, all that
// have gathered at a time (see connOwners), until done is closed.
func (tg *Target) resolver(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-tg.resolveWake:
		}
		tg.resolveMu.Lock()
		batch := tg.toResolve
		tg.toResolve = nil
		tg.resolveMu.Unlock()
		tg.mu.Lock()
		pids := tg.pids
		tg.mu.Unlock()
		owners := map[*connInfo]string{}
		if len(batch) > 0 && len(pids) > 0 {
			owners = connOwners(batch, pids)
		}
		tg.mu.Lock()
		for ci, name := range owners {
			ci.caller = name
		}
		tg.mu.Unlock()
		for _, c := range batch {
			close(c.ci.resolved)
		}
	}
}

// defaultCallerWait bounds how long a handler waits for its caller's
// lookup: a look at the socket table takes milliseconds on a quiet machine,
// but under a heavy load the wait must not stretch the calls it records (a
// call left unnamed then is only a weaker check, never a wrong one).
const defaultCallerWait = 250 * time.Millisecond

// awaitCaller waits (a little at most) until the caller of the request's
// connection is looked up. A handler calls it before it returns: the
// caller's socket exists at least until the answer is complete, even on a
// connection it closes right after.
func awaitCaller(ci *connInfo, wait time.Duration) {
	if ci == nil || ci.resolved == nil {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ci.resolved:
	case <-t.C:
	}
}

func addrPort(hostPort string) (int, error) {
	_, ps, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(ps)
}
