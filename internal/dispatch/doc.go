// Package dispatch calls the tasks' URLs.
//
// A dispatcher owns queues one at a time through a lease with a fencing
// epoch (lua/claim.lua): only the owner reads a queue's stream and
// acknowledges its entries, so a queue's calls start in order and, with the
// default concurrency of 1, one after the other. Queues run in parallel, up
// to Config.MaxQueues per process.
//
// Finding work: enqueues of an idle queue publish a hint, which every
// dispatcher receives and tries to act on at once (pick-up takes a few
// milliseconds); a jittered poll of the partitions' ready indexes is the
// safety net for lost hints, expired leases and ended backoffs.
//
// Owning: an owner goroutine calls its entries and records each result with
// complete-and-read-next (one round trip per task). Every successful script
// call extends the lease; a renewer extends the leases of owners whose calls
// take long. The owner tracks how long its lease is certainly valid and starts
// no call after that: a dispatcher cut off from Redis stops starting calls
// before anyone can take its queues over. A new owner recovers entries left
// pending by a dead owner only once their calls cannot still be running
// (idle longer than the task's timeout plus the recovery grace).
//
// Shutting down: stop claiming, let calls in flight finish within the
// shutdown grace, abort the rest, and release every queue (cleanly when no
// call was aborted, so the next owner need not wait).
package dispatch
