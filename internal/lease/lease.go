// Package lease tracks how long a lease held in Redis is certainly still
// held, on the holder's own clock: the queue leases of the dispatchers and
// the scheduler's leader term both use it.
//
// A lease extended (or taken) by a command sent at time t was set by Redis
// to expire no earlier than t + TTL on Redis's clock. The holder cannot know
// when the reply arrives relative to that, and the two clocks may run at
// slightly different rates, so it trusts the lease until t + TTL − margin
// only: past that, someone else may hold it, and the holder starts nothing
// that needs it.
package lease

import (
	"sync"
	"time"
)

// Validity is one lease's validity as its holder sees it. It is safe for
// concurrent use.
type Validity struct {
	ttl, margin time.Duration

	mu    sync.Mutex
	until time.Time // valid before this
	last  time.Time // send time of the last extension
	lost  bool
}

// New returns the validity of a lease of ttl taken by a command sent at
// sent, trusted until margin before it may expire.
func New(ttl, margin time.Duration, sent time.Time) *Validity {
	v := &Validity{ttl: ttl, margin: margin}
	v.Extended(sent)
	return v
}

// Extended records an extension sent at sent (the send time, not the reply
// time: Redis may have set the expiry as early as that).
func (v *Validity) Extended(sent time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if u := sent.Add(v.ttl - v.margin); u.After(v.until) {
		v.until = u
	}
	if sent.After(v.last) {
		v.last = sent
	}
}

// Valid reports whether the lease is certainly held at now: not lost, and
// extended recently enough.
func (v *Validity) Valid(now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return !v.lost && now.Before(v.until)
}

// Until returns when the lease stops being certainly held (zero once lost).
func (v *Validity) Until() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lost {
		return time.Time{}
	}
	return v.until
}

// LastExtended returns the send time of the last extension.
func (v *Validity) LastExtended() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

// Lose marks the lease lost; it reports whether it was not lost before.
func (v *Validity) Lose() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	was := v.lost
	v.lost = true
	return !was
}

// Lost reports whether the lease was lost.
func (v *Validity) Lost() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lost
}

// TTL returns the lease's time to live.
func (v *Validity) TTL() time.Duration { return v.ttl }
