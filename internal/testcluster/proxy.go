package testcluster

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy a test can cut, to partition a process from Redis.
// Cut is a black hole, like a network partition: connections stay open but
// nothing gets through, so the client only learns of it by its timeouts.
type Proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	pairs map[net.Conn]net.Conn // client -> upstream (nil while held)
	wg    sync.WaitGroup
}

// NewProxy forwards a loopback port to target until the test ends.
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target, pairs: map[net.Conn]net.Conn{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.pairs[c] = nil // held: accepted, never served
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.pairs[c] = up
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c, up) })
		p.wg.Go(func() { p.pipe(up, c) })
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	p.mu.Lock()
	cut := p.cut
	p.mu.Unlock()
	if !cut { // a normal close: pass it on
		_ = dst.Close()
		_ = src.Close()
	}
}

// Cut stops all traffic: upstream connections close, client connections
// are held open without a byte more either way.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c, up := range p.pairs {
		if up != nil {
			_ = up.Close()
			p.pairs[c] = nil
		}
	}
}

// Restore heals the partition: held client connections are closed (the
// client reconnects) and new connections are forwarded again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c, up := range p.pairs {
		if up == nil {
			_ = c.Close()
			delete(p.pairs, c)
		}
	}
}

// Close stops the proxy.
func (p *Proxy) Close() {
	_ = p.l.Close()
	p.mu.Lock()
	for c, up := range p.pairs {
		_ = c.Close()
		if up != nil {
			_ = up.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}
