// Package schedule runs the scheduler role: leader election and, while
// leader, the promotion of due delayed tasks and the janitor.
//
// Leadership is a term: a redsync lock (SET NX PX) taken with a new epoch
// from a counter. The leader extends the lock every third of its TTL and
// steps down on the first failed extension. It never acts after the lock
// could have expired: the term's context is cancelled at the time the last
// successful acquisition or extension was sent plus the TTL, less a drift
// margin, whatever the network does.
//
// Promotion needs no fencing: promote.lua moves a task only if its ZREM
// from the delayed set succeeds, in the same script as the XADD, so a second
// scheduler that still thinks it leads does no harm. Leadership only keeps
// the work from being done twice as often as needed.
//
// Timing: the leader keeps each partition's earliest due time, refreshed
// from Redis every poll interval and lowered by hints that enqueues publish
// when they add an earlier due time, and sleeps until the earliest of them.
// Tasks due now never wait for it: the enqueue script appends them to their
// stream directly.
package schedule
