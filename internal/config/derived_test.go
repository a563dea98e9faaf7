package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/task"
)

func TestTaskLimits(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.API.MaxURLBytes, c.API.MaxHeaderBytes, c.API.MaxBodyBytes = 1, 2, 3
	if got := c.TaskLimits(); got != (task.Limits{MaxURLBytes: 1, MaxHeaderBytes: 2, MaxBodyBytes: 3}) {
		t.Fatalf("TaskLimits = %+v", got)
	}
}

func TestZone(t *testing.T) {
	t.Parallel()
	a := config.Default().API
	if loc, err := a.Zone(); err != nil || loc != time.Local {
		t.Fatalf("default zone = %v, %v; want Local", loc, err)
	}
	a.TimeZone = "Asia/Shanghai"
	if loc, err := a.Zone(); err != nil || loc.String() != "Asia/Shanghai" {
		t.Fatalf("Zone = %v, %v", loc, err)
	}
	a.TimeZone = "Mars/Olympus"
	if _, err := a.Zone(); err == nil || !strings.Contains(err.Error(), "api.time_zone") {
		t.Fatalf("unknown zone: %v, want an error naming api.time_zone", err)
	}
}

func TestConsumerName(t *testing.T) {
	t.Parallel()
	d := config.Default().Dispatcher
	host, _ := os.Hostname()
	a, b := d.ConsumerName(), d.ConsumerName()
	if prefix := fmt.Sprintf("%s-%d-", host, os.Getpid()); !strings.HasPrefix(a, prefix) || len(a) != len(prefix)+6 || a == b {
		t.Fatalf("default names %q, %q; want %s and 6 random hex digits, new each time", a, b, prefix)
	}
	d.ID = "worker-1"
	if got := d.ConsumerName(); got != "worker-1" {
		t.Fatalf("ConsumerName with an id = %q", got)
	}
}
