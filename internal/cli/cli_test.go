package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htq/htq/internal/cli"
	"github.com/htq/htq/internal/redistest"
)

func run(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cli.Execute(context.Background(), cli.Env{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return env[k] }}, args)
	return out.String(), err
}

// TestMigrateLegacyRefusesBadInput: every bad input stops the command with
// a message naming what is wrong, before anything is read or written.
func TestMigrateLegacyRefusesBadInput(t *testing.T) {
	t.Parallel()
	src := redistest.Start(t)
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"migrate-legacy"}, want: "--from-redis is required"},
		{args: []string{"migrate-legacy", "--from-redis", "http://x"}, want: `--from-redis "http://x"`},
		{args: []string{"migrate-legacy", "--from-redis", src.URL(), "--bogus"}, want: "unknown flag: --bogus"},
		{args: []string{"migrate-legacy", "--from-redis", src.URL()}, want: "HTQ URL"},
		{args: []string{"migrate-legacy", "--from-redis", src.URL(), "--url", "http://127.0.0.1:1"}, want: "no HTQ token"},
		{args: []string{"migrate-legacy", "--from-redis", src.URL()}, env: map[string]string{"HTQ_URL": "http://127.0.0.1:1", "HTQ_TOKEN": "t"}, want: "cannot reach HTQ"},
		{args: []string{"migrate-legacy", "--from-redis", "redis://127.0.0.1:1/0", "--dry-run"}, want: "cannot reach the original's Redis"},
		{args: []string{"nonsense"}, want: "unknown command"},
	}
	for _, tt := range tests {
		out, err := run(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v (output %q), want one with %q", tt.args, err, out, tt.want)
		}
	}
}

func TestMigrateLegacyDryRunWithoutHTQ(t *testing.T) {
	t.Parallel()
	src := redistest.Start(t)
	rdb := src.Client(t)
	rdb.HSet(context.Background(), "old_queue_list", "old_q", `{"type":"real_time"}`)
	out, err := run(t, nil, "migrate-legacy", "--from-redis", src.URL(), "--from-prefix", "old_", "--dry-run",
		"--malformed-file", filepath.Join(t.TempDir(), "bad.jsonl"))
	if err != nil || !strings.Contains(out, "dry run") || !strings.Contains(strings.Join(strings.Fields(out), " "), "queues 1") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
}
