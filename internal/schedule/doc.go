// Package schedule runs the scheduler role: leader election and, while
// leader, the promotion of due delayed tasks and the janitor.
//
// Leadership is a term: a redsync lock (SET NX PX) taken with a new epoch
// from a counter. The leader extends the lock every third of its TTL and
// steps down on the first failed extension. It never acts after the lock
// could have expired: the term's context is cancelled when its
// lease.Validity ends (the time the last successful acquisition or extension
// was sent plus the TTL, less a tenth), whatever the network does.
//
// Promotion needs no fencing: promote.lua moves a task only if its ZREM
// from the delayed set succeeds, in the same script as the XADD, so a second
// scheduler that still thinks it leads does no harm. Leadership only keeps
// the work from being done twice as often as needed.
//
// Schedules (recurring tasks, package recur) are fired by the leader too,
// in a loop of their own beside promotion. A schedule lives in its queue's
// partition: a hash (definition, version, next instant, last run) and an
// entry in the partition's schedule index (next instant) while it is
// neither paused nor ended; the global due index of schedule indexes
// (store.DueSchedules) names the partitions with something due, so 100,000
// registered schedules cost nothing while none is due. The leader reads a
// due schedule, decides in Go which passed occurrences to fire
// (recur.Schedule.Decide: the missed policy, catch_up, end_at) and calls
// lua/schedule_fire.lua, which creates the tasks and advances the schedule
// in one script, only if the schedule's version and next instant are still
// what the leader read. Two leaders at once (or one leader and a client's
// update) therefore never both fire an occurrence: the second finds the
// schedule moved and does nothing. Each task is also created under the
// occurrence's idempotency key (schedule name and instant), so an
// occurrence fired again after a change that reset the next instant finds
// its task instead of creating another. A leader killed between reading
// and firing leaves the schedule due; the next leader fires it (as late as
// the takeover took, within the missed policy's grace or catch_up).
//
// Firing is prepared ahead and sent at the instant: the leader wakes
// fireLead (100 ms) before the earliest entry of the schedule due index,
// reads every due partition's schedules coming due by then in one round
// trip (store.DueSchedules), decodes and decides them and encodes their
// scripts (store.PrepareFire), sleeps until their instant, and sends the
// scripts of all the schedules due at that instant in one pipeline
// (store.FireMany); each is still its own script with its own compare and
// set. No script is sent before its schedule's instant by the leader's
// clock, and the script itself queues a task only once its due time has
// come (an earlier one would go to the delayed set), so no call starts
// early. A term that ends while the leader waits fires nothing; the next
// leader finds the schedules still due. A partition's due entry is settled
// once a read of it finds nothing more due.
//
// Timing: the leader reads the due index of the timer indexes
// (store.DueKind: one key names the partitions with delayed tasks and the
// time each needs a look), sleeps until its earliest entry, a hint that an
// earlier due time arrived, or the poll interval, and promotes what is due
// in rounds, one batch per due partition per round, so that a large backlog
// in one partition does not delay timed tasks everywhere else. After a
// partition is done, its due entry is settled to the partition's next due
// time. Tasks due now never wait for it: the enqueue script appends them to
// their stream directly.
//
// Housekeeping costs what is due, not what is stored: the janitor trims the
// dead letters the dead-letter due index says are past retention, repairs a
// trickle of queues per tick (RepairBatch every JanitorTick: a slow sweep
// that puts back index entries lost to a manual change or a bug and removes
// idle stream consumers), and makes a full pass over the partitions every
// JanitorInterval (due indexes lowered to each partition's indexes, deleted
// queues drained, old kept sequences pruned). The backlog metrics read only
// the queues that have work or dead letters.
package schedule
