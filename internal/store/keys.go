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
//	<prefix>{pNNN}:ready       ZSET   queue -> time it may next be claimed
//	<prefix>{pNNN}:timers      ZSET   queue -> earliest due time of its delayed tasks
//	<prefix>{pNNN}:seq         STRING task-id counter
//	<prefix>{pNNN}:epoch       STRING lease epoch counter (fencing tokens)
//	<prefix>{pNNN}:trash       SET    deleted queues still being cleaned up
//	<prefix>{pNNN}:m:<queue>   HASH   queue meta: config, epoch, sequence, pause, rate bucket
//	<prefix>{pNNN}:s:<queue>   STREAM ready entries (field t = task id), group "htq"
//	<prefix>{pNNN}:z:<queue>   ZSET   delayed tasks: task id -> due time
//	<prefix>{pNNN}:l:<queue>   STRING lease "<consumer>:<epoch>"
//	<prefix>{pNNN}:x:<queue>   ZSET   dead letters: task id -> time of death
//	<prefix>{pNNN}:t:<id>      STRING task spec ("<queue>\n<json>")
//	<prefix>{pNNN}:u:<id>      HASH   task state, attempts, last result, history
//	<prefix>{pNNN}:i:<sha1>    STRING idempotency key -> task id
//	<prefix>hint:dispatch      channel "<partition>:<queue>" when an idle queue gets work
//	<prefix>hint:schedule      channel "<partition>:<due ms>" when a partition's earliest due time moves earlier
//	<prefix>leader             STRING scheduler leader lock (redsync)
//	<prefix>leader:term        STRING leader term counter
//
// Queue names follow a fixed type marker, so no name can produce another
// queue's key.
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

// Registry returns partition p's set of queue names.
func (k *Keys) Registry(p int) string { return k.tags[p] + "queues" }

// Trash returns partition p's set of deleted queues awaiting cleanup.
func (k *Keys) Trash(p int) string { return k.tags[p] + "trash" }

// DispatchChannel is where idle queues that got work are announced.
func (k *Keys) DispatchChannel() string { return k.prefix + "hint:dispatch" }

// ScheduleChannel is where earlier due times are announced.
func (k *Keys) ScheduleChannel() string { return k.prefix + "hint:schedule" }

// LeaderLock is the scheduler's leader lock.
func (k *Keys) LeaderLock() string { return k.prefix + "leader" }

// LeaderTerm counts leader terms.
func (k *Keys) LeaderTerm() string { return k.prefix + "leader:term" }

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
}
