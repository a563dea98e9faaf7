// Package dispatch calls the tasks' URLs.
//
// # Owning a queue
//
// A dispatcher owns queues one at a time through a lease whose value is a
// fencing token "<consumer>:<epoch>" (lua/claim.lua). The consumer name is
// the dispatcher's ID plus a nonce of this run, so a token is unique across
// runs and across a rewound epoch counter (a failover, a lost AOF second):
// two owners can never hold equal tokens. Every write of an owner runs in a
// script that first checks the token (fenced in lua/common.lua): the lease
// value must be the token, or, if the lease lapsed while nobody claimed the
// queue, the meta's 'tok' must still be it. A release removes 'tok', so a
// renewal or a repeated completion that lands after it finds nothing to take
// back. Only the owner reads the queue's stream and acknowledges its
// entries, so a queue's calls start in order and, with the default
// concurrency of 1, one after the other.
//
// The owner (owner.go) tracks how long its lease is certainly held
// (lease.Validity: the send time of the last extension plus the TTL, less a
// tenth): it starts no call after that, nor after it learnt the lease was
// lost. Every successful script call extends the lease; the renewer extends,
// in one pipeline, the leases of owners whose calls take long.
//
// # Recovering a dead owner's calls
//
// When an entry is handed out for a call, its deadline (now + the timeout in
// force) is stamped into the task's state, and the owner calls with exactly
// that timeout. An owner starts a delivered entry within RecoveryGrace/2 of
// the send time of the script that delivered it (a claim's deliveries date
// from the claim's send time, not from its reply), or claims it afresh,
// which stamps a new deadline. So a call that started ends before its
// stamped deadline plus RecoveryGrace/2. A new owner takes a dead owner's
// pending entry only past the later of that stamp and the entry's last
// delivery plus the queue's current timeout, plus RecoveryGrace: never while
// the old call may still run, whatever happened to the queue's timeout in
// between. A clean release (the owner knows none of its calls runs) lets the
// next owner take the entries at once. Only the last claimer can hold
// pending entries (a claim takes over every pending one), and an owner that
// releases with none pending removes the meta's 'cons' with its stream
// consumer: a claim that finds no 'cons' skips the recovery checks (the
// common wake-up of an idle queue).
//
// # Finding work
//
// Every partition has an order of dispatchers: rendezvous hashing of the
// partition over the live dispatchers (members.go; a heartbeat registry in
// Redis, refreshed every third of the lease TTL and at once when one joins
// or leaves). An enqueue that gives an unowned queue work puts it in its
// partition's ready index and publishes a hint on the partition's shard
// channel, which only the partition's first choice subscribes: one claim per
// wake-up, whatever the number of dispatchers. A queue that got work while
// owned needs no hint (its owner reads it next), except when its owner said
// it has room while its calls run (concurrency > 1): then the owner is told
// on its own channel.
//
// A wake-up whose hint reached a dispatcher (SPUBLISH counted a receiver)
// is listed store.HintGrace ahead, in the ready index and the due index: the
// dispatcher that heard it claims the queue at once, so pollers looking at
// the partition for it would only pay a settle per wake-up. Hinted queues
// are claimed concurrently (up to 64 at once), their claims sharing
// pipelines, so a burst of wake-ups (many schedules firing at one instant)
// is not claimed one round trip after another; the claims run on a few
// goroutines kept for the next hint, whose stacks need not grow again
// (intake.go, which also shows a hint is always taken). When it cannot
// claim (no free slot, shutting down, its own owner of the queue still
// exiting) it hands the queue back to the pollers at once (store.Unhint).
// What remains is a hint lost after Redis sent it: a subscriber's full
// buffer or lost connection signals a resync, and the next look then also
// takes the dispatcher's first-choice partitions' queues listed within
// HintGrace; a dispatcher that dies between hearing a hint and claiming
// leaves the queue to the pollers HintGrace later. A hint nobody heard
// lists the queue at once.
//
// The safety net is the due index of the ready indexes (store.DueKind): a
// look at it reads one key, whatever the number of queues or partitions. A
// dispatcher acts on a due partition when it is the partition's first
// choice, or when the entry has been due longer than the dispatchers before
// it in the partition's order had to act (FallbackDelay each): so a dead or
// full first choice is covered by the second, then the third. It looks when
// the next entry it may act on comes due, when poked (hints may have been
// lost: a resubscription, a full buffer; the membership changed; a slot
// freed while work waited), and at least every PollMax. An owner's exit costs
// no look unless work is waiting for a slot.
//
// # Sharing slots
//
// A dispatcher owns at most MaxQueues queues. Work that finds no free slot
// stays in the ready index for the next dispatchers in its partition's
// order. Only when it has waited past every dispatcher's turn and YieldAfter
// (the cluster lacks room) is the dispatcher starved: its owners then hand
// their queues back after YieldAfter of ownership, at their next result, so
// queues take turns. An owner that must wait longer than RateYieldAfter for
// a rate token, or is starved, with nothing in flight, hands its queue back
// with a hold until the token comes, freeing its slot meanwhile.
//
// # Shutting down
//
// Leave the registry (the others take the partitions), stop claiming, let
// calls in flight finish within the shutdown grace, abort the rest, and
// release every queue (cleanly when no call was aborted, so the next owner
// need not wait).
//
// # Clocks
//
// Lease expiry and a pending entry's idle time are measured by the Redis
// server's clock; the deadline stamps, retry times and the owner's lease
// validity by the dispatchers' clocks (time enters every script as an
// argument). RELIABILITY.md says what a clock step or a failover to a
// replica whose clock is ahead does.
package dispatch
