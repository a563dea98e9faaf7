package store

// HashField is one field of a hash HTQ keeps in Redis: which hash, its
// name, what it means and which scripts write it. TestFieldsTable checks
// this table against the .lua files: every literal field a script reads or
// writes is listed here, and every field listed here is used by a script.
type HashField struct {
	Hash    string // "meta" (<prefix>{pNNN}:m:<queue>), "state" (<prefix>{pNNN}:u:<id>) or "schedule" (<prefix>{pNNN}:r:<name>)
	Name    string
	Meaning string
	Writers string
}

// HashFields is the table of every hash field.
var HashFields = []HashField{
	// The queue's meta hash.
	{"meta", "name", "the queue's name", "create_queue (queue_put, enqueue)"},
	{"meta", "created", "creation time, ms; also salts idempotency keys", "create_queue"},
	{"meta", "ver", "configuration version, bumped by every update; owners reload their copy when it changes", "queue_put, enqueue"},
	{"meta", "cfg", "the queue's configuration as JSON (task.QueueConfig)", "queue_put, enqueue"},
	{"meta", "type", "realtime or variable", "queue_put, enqueue"},
	{"meta", "conc", "concurrency: calls in flight at once", "queue_put, enqueue"},
	{"meta", "maxbl", "backlog limit (0: none)", "queue_put, enqueue"},
	{"meta", "tmo", "the queue's call timeout, ms", "queue_put, enqueue"},
	{"meta", "rate", "calls per second (0: no limit)", "queue_put, enqueue"},
	{"meta", "burst", "token bucket size", "queue_put, enqueue"},
	{"meta", "ret", "retention of finished tasks, ms", "queue_put, enqueue"},
	{"meta", "dret", "retention of dead letters, ms", "queue_put, enqueue"},
	{"meta", "paused", "'1' while paused", "pause"},
	{"meta", "hold", "no claim before this time, ms (a long strict retry, a rate wait)", "release; cleared by claim"},
	{"meta", "epoch", "the epoch of the last claim", "claim"},
	{"meta", "cons", "the consumer of the last claim while it may hold entries (its stream consumer is removed by the next claim); absent: no entry is pending, a claim skips the recovery checks", "claim; cleared by release, more (release_if_idle)"},
	{"meta", "tok", "the fencing token of the current owner; removed when it releases", "claim; cleared by release, more (release_if_idle)"},
	{"meta", "clean", "'1' when the last owner released cleanly: its pending entries may be taken at once", "release; cleared by claim"},
	{"meta", "seq", "the last X-HTQ-Sequence handed out", "deliver (next_seq), create_queue"},
	{"meta", "tbt", "rate tokens left", "spend_tokens"},
	{"meta", "tbts", "time of tbt, ms", "spend_tokens"},
	{"meta", "recov", "entries taken over from a dead owner and kept aside for rate tokens, in order", "redeliver; cleared by claim"},
	{"meta", "want", "the owner's wake-up channel while it has room for more and calls in flight", "more; cleared by announce, more, claim, release"},

	// A task's state hash.
	{"state", "st", "state: queued, active, retrying, scheduled, succeeded, dead, cancelled", "deliver, complete, finish, promote, retry"},
	{"state", "a", "attempts in the current run (variable tasks: this round)", "deliver; reset by complete (again), retry"},
	{"state", "k", "variable tasks: calls since added or reset", "complete; reset by retry"},
	{"state", "ts", "time of the last state change, ms", "deliver, complete, finish, promote, retry"},
	{"state", "rt", "when it runs again, ms (retrying, scheduled)", "complete; cleared by promote, reattempt, retry, finish"},
	{"state", "dl", "deadline of the call it was last handed out for, ms: recovery waits past it", "deliver; cleared by finish"},
	{"state", "cx", "'1': cancellation requested while it runs", "cancel; cleared by retry, finish"},
	{"state", "keep", "retention to apply when a requested cancellation takes effect, ms", "cancel"},
	{"state", "ce", "'1': cancelled while queued, its stream entry is still there", "cancel; cleared by deliver, retry"},
	{"state", "h", "attempt history, one JSON line per attempt, newest last", "complete"},
	{"state", "sc", "last HTTP status", "complete"},
	{"state", "err", "last error", "complete"},
	{"state", "fin", "time it finished, ms", "finish; cleared by retry"},

	// A schedule's hash.
	{"schedule", "def", "the definition as JSON (recur.Schedule)", "schedule_put"},
	{"schedule", "ver", "version, bumped by every change; firing compares it", "schedule_put"},
	{"schedule", "paused", "'1' while paused", "schedule_put"},
	{"schedule", "next", "the next instant to fire, ms; absent once ended", "schedule_put, schedule_fire"},
	{"schedule", "lt", "the id of the last task it created", "schedule_fire"},
	{"schedule", "la", "the instant of that task's occurrence, ms", "schedule_fire"},
}
