package testcluster

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// connOwner finds which of the given processes holds the client end of a
// loopback TCP connection from local port from to remote port to (Linux
// /proc). Both ends must match: Linux gives the same ephemeral port to
// outgoing connections with different destinations, so a port alone can
// name a socket of another process (one to Redis, say).
func connOwner(from, to int, pids map[int]string) string {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			if hexPort(fields[1]) == from && hexPort(fields[2]) == to {
				inodes[fields[9]] = true
			}
		}
		_ = fh.Close()
	}
	for pid, name := range pids {
		links, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, l := range links {
			dest, err := os.Readlink(l)
			if err == nil && strings.HasPrefix(dest, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(dest, "socket:["), "]")] {
				return name
			}
		}
	}
	return ""
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

// resolve looks up, off the request path, which tracked process opened a
// connection; it runs when the connection opens, while the caller's socket
// certainly exists. The answer belongs to the connection, not to its address,
// which a later connection of another process may reuse.
func (tg *Target) resolve(c net.Conn, ci *connInfo) {
	tg.mu.Lock()
	pids := tg.pids
	tg.mu.Unlock()
	if len(pids) == 0 {
		return
	}
	remote, local := c.RemoteAddr().String(), c.LocalAddr().String()
	from, err1 := addrPort(remote)
	to, err2 := addrPort(local)
	if err1 != nil || err2 != nil {
		return
	}
	name := connOwner(from, to, pids)
	tg.mu.Lock()
	ci.caller = name
	tg.mu.Unlock()
}

func addrPort(hostPort string) (int, error) {
	_, ps, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(ps)
}
