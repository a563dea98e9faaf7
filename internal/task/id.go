package task

import (
	"fmt"
	"hash/crc32"
	"strconv"
)

// Partitions is the fixed number of partitions that queues are hashed into.
// Every Redis key of a queue and of its tasks carries the partition's hash
// tag, so each Lua script touches a single Redis Cluster slot. Changing it
// would move every queue, so it is a constant, not a setting.
const Partitions = 256

// IDLength is the length of a task id: two hex digits of partition followed by
// twelve hex digits of a per-partition counter.
const IDLength = 14

// ErrBadID reports a string that cannot be a task id.
var ErrBadID error = invalid("malformed task id")

// Partition returns the partition a queue belongs to.
func Partition(queue string) int {
	return int(crc32.ChecksumIEEE([]byte(queue)) % Partitions)
}

// IDPartition returns the partition encoded in a task id. Task ids are issued
// by the enqueue script from a per-partition counter, so they sort in
// enqueue order within a partition and name the partition that holds them.
func IDPartition(id string) (int, error) {
	if len(id) != IDLength {
		return 0, fmt.Errorf("%w: %q: want %d hex digits", ErrBadID, truncate(id, 40), IDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, fmt.Errorf("%w: %q: want lower-case hex digits", ErrBadID, truncate(id, 40))
		}
	}
	p, err := strconv.ParseUint(id[:2], 16, 16)
	if err != nil || p >= Partitions {
		return 0, fmt.Errorf("%w: %q: no such partition", ErrBadID, id)
	}
	return int(p), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
