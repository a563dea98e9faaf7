package task_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/htq/htq/internal/task"
)

func TestIDPartition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want int
		err  bool
	}{
		{id: "00000000000000", want: 0},
		{id: "00000000000001", want: 0},
		{id: "0a0000000000ff", want: 10},
		{id: "7f123456789abc", want: 127},
		{id: "ff000000000000", want: 255},
		{id: "ffffffffffffff", want: 255},

		{id: "", err: true},
		{id: "0", err: true},
		{id: "0000000000000", err: true},     // 13
		{id: "000000000000000", err: true},   // 15
		{id: "FF000000000000", err: true},    // upper case
		{id: "0A000000000000", err: true},    // upper case
		{id: "g0000000000000", err: true},    // not hex
		{id: "00000000000 00", err: true},    // space
		{id: "-1000000000000", err: true},    // sign
		{id: "0x000000000000", err: true},    // prefix
		{id: "00000000000\x0000", err: true}, // NUL
		{id: "0000000000000é", err: true},    // 14 bytes, non-ASCII
		{id: strings.Repeat("a", 1000), err: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			t.Parallel()
			got, err := task.IDPartition(tt.id)
			if tt.err {
				if !errors.Is(err, task.ErrBadID) {
					t.Fatalf("IDPartition(%q) = %d, %v; want ErrBadID", tt.id, got, err)
				}
				if len(err.Error()) > 200 {
					t.Fatalf("error for a long id is not truncated: %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IDPartition(%q) = %d, %v; want %d", tt.id, got, err, tt.want)
			}
		})
	}
}

func TestIDPartitionCoversEveryPartition(t *testing.T) {
	t.Parallel()
	for p := range task.Partitions {
		id := fmt.Sprintf("%02x%012x", p, 12345)
		got, err := task.IDPartition(id)
		if err != nil || got != p {
			t.Fatalf("IDPartition(%q) = %d, %v; want %d", id, got, err, p)
		}
	}
}

func TestPartition(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for i := range 10_000 {
		q := fmt.Sprintf("queue-%d", i)
		p := task.Partition(q)
		if p < 0 || p >= task.Partitions {
			t.Fatalf("Partition(%q) = %d, out of range", q, p)
		}
		if p2 := task.Partition(q); p2 != p {
			t.Fatalf("Partition(%q) not stable: %d then %d", q, p, p2)
		}
		seen[p] = true
	}
	if len(seen) != task.Partitions {
		t.Fatalf("10000 queue names hit %d of %d partitions", len(seen), task.Partitions)
	}
	// Unicode names hash their UTF-8 bytes.
	if p := task.Partition("队列"); p < 0 || p >= task.Partitions {
		t.Fatalf("Partition(队列) = %d", p)
	}
}
