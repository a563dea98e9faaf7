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

// portOwner finds which of the given processes has a local TCP socket on
// port (Linux /proc): the caller of a loopback connection.
func portOwner(port int, pids map[int]string) string {
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
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
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

// TrackCallers makes the target record which of these processes made each
// call (Call.Caller), from the connection's source port.
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
// certainly exists.
func (tg *Target) resolve(remote string) {
	tg.mu.Lock()
	pids := tg.pids
	tg.mu.Unlock()
	if len(pids) == 0 {
		return
	}
	_, ps, err := net.SplitHostPort(remote)
	if err != nil {
		return
	}
	port, _ := strconv.Atoi(ps)
	name := portOwner(port, pids)
	tg.mu.Lock()
	tg.callers[remote] = name
	tg.mu.Unlock()
}
