package store

import (
	"fmt"

	"github.com/htq/htq/internal/task"
)

// Keys builds every Redis key HTQ uses. All keys of a queue, of its
// partition's indexes and of its tasks carry the partition's hash tag
// {pNNN}, so that each script touches one Redis Cluster slot.
//
//	<prefix>{pNNN}:queues      SET    queue names in the partition (registry)
//	<prefix>{pNNN}:ready       ZSET   queue -> time it may next be claimed (every queue with stream work;
//	                                  2^52 while paused)
//	<prefix>{pNNN}:timers      ZSET   queue -> earliest due time of its delayed tasks
//	<prefix>{pNNN}:deadq       ZSET   queue -> time its oldest dead letter passes retention
//	<prefix>{pNNN}:seq         STRING task-id counter
//	<prefix>{pNNN}:epoch       STRING lease epoch counter (fencing tokens)
//	<prefix>{pNNN}:seqs        HASH   deleted queue name -> the X-HTQ-Sequence it reached
//	<prefix>{pNNN}:trash       SET    deleted queues still being cleaned up
//	<prefix>{pNNN}:m:<queue>   HASH   queue meta: config, epoch, sequence, pause, rate bucket
//	<prefix>{pNNN}:s:<queue>   STREAM ready entries (field t = task id), group "htq"
//	<prefix>{pNNN}:z:<queue>   ZSET   delayed tasks: task id -> due time
//	<prefix>{pNNN}:l:<queue>   STRING lease "<consumer>:<epoch>"
//	<prefix>{pNNN}:x:<queue>   ZSET   dead letters: task id -> time of death
//	<prefix>{pNNN}:t:<id>      STRING task spec ("<queue>\n<json>")
//	<prefix>{pNNN}:u:<id>      HASH   task state, attempts, last result, history
//	<prefix>{pNNN}:i:<sha1>    STRING idempotency key -> task id
//	<prefix>{pNNN}:sched       ZSET   schedule name -> its next instant (schedules of the partition's
//	                                  queues that are neither paused nor ended)
//	<prefix>{pNNN}:r:<name>    HASH   a schedule of a queue of the partition: definition, version, next
//	                                  instant, last run
//	<prefix>{pNNN}:hint        shard channel: "<queue>" when a queue got work nobody owns (SPUBLISH)
//	<prefix>{pNNN}:ev          shard channel: task events of the partition's queues (events.go)
//
// and a few global keys, each a single key of its own (see global):
//
//	<prefix>due:ready          ZSET   partition -> a time at or before which its ready index needs a look
//	<prefix>due:timers         ZSET   partition -> the same for its timer index (the scheduler's)
//	<prefix>due:dead           ZSET   partition -> the same for its deadq index (the janitor's)
//	<prefix>due:schedules      ZSET   partition -> the same for its schedule index (the scheduler's)
//	<prefix>schedules          ZSET   "<schedule name>\n<queue>", score 0: every schedule and the
//	                                  queue (so the partition) it lives in (lexicographic pages)
//	<prefix>dispatchers        ZSET   consumer -> expiry of its last heartbeat (live dispatchers)
//	<prefix>names              ZSET   every queue name, score 0 (lexicographic pages)
//	<prefix>listeners          ZSET   open event stream -> expiry (wall-clock ms); scripts publish task
//	                                  events only while one is live (listeners.go)
//	<prefix>hint:schedule      channel "<partition>:<due ms>" when a partition's earliest due time moves earlier,
//	                           "r<partition>:<ms>" when its earliest schedule instant does
//	<prefix>hint:members       channel: a dispatcher joined or left
//	<prefix>hint:c:<consumer>  channel "<queue>": work for a queue that consumer owns and has room in
//	<prefix>stats:m:<minute>   HASH   outcomes finished in that Unix minute: succeeded, failed, dead (TTL 3 h)
//	<prefix>stats:backlog      HASH   the overview's backlog snapshot (counts, queues, at)
//	<prefix>stats:backlog:lock STRING one backlog refresh at a time (PX)
//	<prefix>leader             STRING scheduler leader lock (redsync)
//	<prefix>leader:term        STRING leader term counter
//
// Queue names follow a fixed type marker, so no name can produce another
// queue's key. fields.go lists the fields of the hashes.
type Keys struct {
	prefix string
	tags   [task.Partitions]string // "<prefix>{pNNN}:"
}

// NewKeys returns the key builder for a key prefix (for instance "htq:").
func NewKeys(prefix string) *Keys {
	k := &Keys{prefix: prefix}
	for p := range k.tags {
		k.tags[p] = fmt.Sprintf("%s{p%03d}:", prefix, p)
	}
	return k
}

// Prefix returns the key prefix.
func (k *Keys) Prefix() string { return k.prefix }

// Part returns "<prefix>{pNNN}:", the start of every key in partition p.
func (k *Keys) Part(p int) string { return k.tags[p] }

// Queue returns the keys of one queue.
func (k *Keys) Queue(queue string) QueueKeys {
	p := task.Partition(queue)
	t := k.tags[p]
	return QueueKeys{
		Partition: p,
		Tag:       t,
		Meta:      t + "m:" + queue,
		Stream:    t + "s:" + queue,
		Delayed:   t + "z:" + queue,
		Lease:     t + "l:" + queue,
		Dead:      t + "x:" + queue,
		Ready:     t + "ready",
		Timers:    t + "timers",
		Registry:  t + "queues",
		Seq:       t + "seq",
		Epoch:     t + "epoch",
		Trash:     t + "trash",
		DeadQ:     t + "deadq",
	}
}

// Spec returns the key of a task's spec.
func (k *Keys) Spec(p int, id string) string { return k.tags[p] + "t:" + id }

// State returns the key of a task's state hash.
func (k *Keys) State(p int, id string) string { return k.tags[p] + "u:" + id }

// Ready returns partition p's ready index.
func (k *Keys) Ready(p int) string { return k.tags[p] + "ready" }

// Timers returns partition p's timer index.
func (k *Keys) Timers(p int) string { return k.tags[p] + "timers" }

// Schedules returns partition p's schedule index.
func (k *Keys) Schedules(p int) string { return k.tags[p] + "sched" }

// Schedule returns the hash of schedule name, kept in partition p (its
// queue's).
func (k *Keys) Schedule(p int, name string) string { return k.tags[p] + "r:" + name }

// ScheduleNames is the global index of schedule names and their queues.
func (k *Keys) ScheduleNames() string { return k.global("schedules") }

// Registry returns partition p's set of queue names.
func (k *Keys) Registry(p int) string { return k.tags[p] + "queues" }

// Trash returns partition p's set of deleted queues awaiting cleanup.
func (k *Keys) Trash(p int) string { return k.tags[p] + "trash" }

// DeadQueues returns partition p's index of queues with dead letters.
func (k *Keys) DeadQueues(p int) string { return k.tags[p] + "deadq" }

// Seqs returns partition p's hash of the sequences deleted queues reached.
func (k *Keys) Seqs(p int) string { return k.tags[p] + "seqs" }

// HintChannel is the shard channel where partition p's queues that got work
// nobody owns are announced.
func (k *Keys) HintChannel(p int) string { return k.tags[p] + "hint" }

// EventChannel is the shard channel where partition p's task events are
// published.
func (k *Keys) EventChannel(p int) string { return k.tags[p] + "ev" }

// global names a key or channel that belongs to no partition.
func (k *Keys) global(name string) string { return k.prefix + name }

// DueIndex returns the global due index of one kind of partition index.
func (k *Keys) DueIndex(kind DueKind) string { return k.global("due:" + kind.String()) }

// Dispatchers is the registry of live dispatchers.
func (k *Keys) Dispatchers() string { return k.global("dispatchers") }

// Names is the sorted index of every queue name.
func (k *Keys) Names() string { return k.global("names") }

// Listeners returns the set of open event streams (listeners.go).
func (k *Keys) Listeners() string { return k.global("listeners") }

// ScheduleChannel is where earlier due times are announced.
func (k *Keys) ScheduleChannel() string { return k.global("hint:schedule") }

// MembersChannel is where dispatchers announce that they joined or left.
func (k *Keys) MembersChannel() string { return k.global("hint:members") }

// OwnerChannel is where work for the queues consumer owns is announced.
func (k *Keys) OwnerChannel(consumer string) string { return k.global("hint:c:" + consumer) }

// LeaderLock is the scheduler's leader lock.
func (k *Keys) LeaderLock() string { return k.global("leader") }

// LeaderTerm counts leader terms.
func (k *Keys) LeaderTerm() string { return k.global("leader:term") }

// QueueKeys are the keys of one queue and of its partition's indexes.
type QueueKeys struct {
	Partition int
	Tag       string
	Meta      string
	Stream    string
	Delayed   string
	Lease     string
	Dead      string
	Ready     string
	Timers    string
	Registry  string
	Seq       string
	Epoch     string
	Trash     string
	DeadQ     string
}
