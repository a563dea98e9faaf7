package cli_test

import (
	"strings"
	"testing"
)

// TestUsageErrors: every command refuses bad flags and arguments with exit
// status 2 and a message naming what is wrong, before calling the API (the
// URL points nowhere: a call would fail with status 1 instead).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": t.TempDir(), "HTQ_URL": "http://127.0.0.1:1", "HTQ_TOKEN": "t"}
	tests := []struct {
		args  []string
		stdin string
		want  string
	}{
		{args: []string{"bogus"}, want: `unknown command "bogus"`},
		{args: []string{"queue"}, want: "want a subcommand"},
		{args: []string{"queue", "bogus"}, want: `unknown command "bogus"`},
		{args: []string{"queue", "ls", "--bogus"}, want: "unknown flag: --bogus"},
		{args: []string{"queue", "ls", "-o", "xml"}, want: `-o "xml"`},
		{args: []string{"queue", "ls", "--limit", "-1"}, want: "--limit -1"},
		{args: []string{"queue", "get"}, want: "accepts 1 arg(s)"},
		{args: []string{"queue", "put", "q", "--type", "sideways"}, want: `--type "sideways"`},
		{args: []string{"queue", "put", "q", "--concurrency", "0"}, want: "--concurrency 0"},
		{args: []string{"queue", "put", "q", "--timeout", "-1s"}, want: "--timeout -1s"},
		{args: []string{"queue", "put", "q", "--timeout", "soon"}, want: `invalid argument "soon" for "--timeout"`},
		{args: []string{"queue", "put", "q", "--ordering", "random"}, want: `--ordering "random"`},
		{args: []string{"queue", "put", "q", "--rate", "-1"}, want: "--rate -1"},
		{args: []string{"queue", "pause"}, want: "accepts 1 arg(s)"},
		{args: []string{"queue", "purge", "a", "b"}, want: "accepts 1 arg(s)"},
		{args: []string{"queue", "rm"}, want: "accepts 1 arg(s)"},
		{args: []string{"task", "push", "http://x/"}, want: "--queue (-q) is required"},
		{args: []string{"task", "push", "-q", "q", "ftp://x/"}, want: `URL "ftp://x/"`},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--header", "novalue"}, want: `--header "novalue"`},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--data", "a", "--json", "{}"}, want: "exclude each other"},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--json", "{nope"}, want: "--json: not valid JSON"},
		{args: []string{"task", "push", "-q", "q", "http://x/", "-X", "GET", "--data", "a"}, want: "takes no body"},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--delay", "1m", "--at", "2030-01-01T00:00:00Z"}, want: "--delay and --at"},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--at", "tomorrow"}, want: `--at "tomorrow"`},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--max-attempts", "0"}, want: "--max-attempts 0"},
		{args: []string{"task", "push", "-q", "q", "http://x/", "--timeout", "0s"}, want: "--timeout 0s"},
		{args: []string{"task", "push", "-q", "q", "-"}, stdin: `{"url":"http://x/","colour":"red"}`, want: `unknown field "colour"`},
		{args: []string{"task", "push", "-q", "q", "-"}, stdin: `{"method":"POST"}`, want: "url: required"},
		{args: []string{"task", "push", "-q", "q", "-", "--delay", "1s"}, want: "takes no task flags"},
		{args: []string{"task", "get"}, want: "accepts 1 arg(s)"},
		{args: []string{"task", "ls"}, want: "--queue (-q) is required"},
		{args: []string{"task", "ls", "-q", "q", "--state", "succeeded"}, want: `--state "succeeded"`},
		{args: []string{"task", "ls", "-q", "q", "--status", "42"}, want: "--status 42"},
		{args: []string{"task", "ls", "-q", "q", "--until", "noon"}, want: `--until "noon"`},
		{args: []string{"export", "-q", "q", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"}, want: "--since is after --until"},
		{args: []string{"task", "cancel"}, want: "accepts 1 arg(s)"},
		{args: []string{"task", "retry", "a", "b"}, want: "accepts 1 arg(s)"},
		{args: []string{"dead", "ls", "x"}, want: "unknown command"},
		{args: []string{"dead", "ls", "--status", "42"}, want: "--status 42"},
		{args: []string{"dead", "ls", "--since", "yesterday"}, want: `--since "yesterday"`},
		{args: []string{"dead", "ls", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"}, want: "--since is after --until"},
		{args: []string{"dead", "retry"}, want: "give ids, or --all"},
		{args: []string{"dead", "rm", "abc", "--all"}, want: "not both"},
		{args: []string{"dead", "rm", "abc", "-q", "q"}, want: "not both"},
		{args: []string{"dead", "rm", "--all", "--status", "500"}, want: "exclude each other"},
		{args: []string{"dead", "retry", "-q", "q", "--status", "1000"}, want: "--status 1000"},
		{args: []string{"schedule", "put", "s"}, want: "--cron and --task-url are required"},
		{args: []string{"schedule", "put", "s", "-q", "q", "--cron", "@daily", "--task-url", "http://x/", "--missed", "later"}, want: `--missed "later"`},
		{args: []string{"schedule", "put", "s", "-q", "q", "--cron", "@daily", "--task-url", "http://x/", "--overlap", "maybe"}, want: `--overlap "maybe"`},
		{args: []string{"schedule", "put", "s", "-q", "q", "--cron", "@daily", "--task-url", "http://x/", "--end-at", "soon"}, want: `--end-at "soon"`},
		{args: []string{"schedule", "put", "s", "-f", "-", "--cron", "@daily"}, want: "-f takes no other"},
		{args: []string{"schedule", "put", "s", "-f", "-"}, stdin: `{"queue":"q","cron":"@daily"}`, want: "task.url are required"},
		{args: []string{"schedule", "put", "s", "-f", "/nonexistent.json"}, want: "no such file"},
		{args: []string{"schedule", "get"}, want: "accepts 1 arg(s)"},
		{args: []string{"schedule", "rm"}, want: "accepts 1 arg(s)"},
		{args: []string{"schedule", "trigger"}, want: "accepts 1 arg(s)"},
		{args: []string{"schedule", "pause", "a", "b"}, want: "accepts 1 arg(s)"},
		{args: []string{"stats", "x"}, want: "unknown command"},
		{args: []string{"import", "f.ndjson"}, want: "--queue (-q) is required"},
		{args: []string{"import", "-q", "q"}, want: "accepts 1 arg(s)"},
		{args: []string{"import", "-q", "q", "--batch", "0", "-"}, want: "--batch and --parallel"},
		{args: []string{"import", "-q", "q", "--format", "xml", "-"}, want: `--format "xml"`},
		{args: []string{"import", "-q", "q", "--no-checkpoint", "--checkpoint", "c", "-"}, want: "exclude each other"},
		{args: []string{"export"}, want: "--queue (-q) is required"},
		{args: []string{"export", "-q", "q", "--state", "gone"}, want: `--state "gone"`},
		{args: []string{"completion", "tcsh"}, want: `invalid argument "tcsh"`},
		{args: []string{"context", "add", "x"}, want: "--url is required"},
		{args: []string{"context", "add", "x", "--url", "ftp://h"}, want: "--url"},
		{args: []string{"context", "add", "x", "--url", "http://h", "--token", "-"}, want: "stdin held no token"},
		{args: []string{"context", "use"}, want: "accepts 1 arg(s)"},
		{args: []string{"version", "x"}, want: "unknown command"},
	}
	for _, tt := range tests {
		r := runEnv(t, env, tt.stdin, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	// No URL anywhere is a usage error too.
	if r := runEnv(t, map[string]string{"HOME": t.TempDir()}, "", "queue", "ls"); r.code != 2 || !strings.Contains(r.stderr, "no HTQ URL") {
		t.Errorf("no URL: %+v", r)
	}
}

// TestRefusedAndNotFound: a wrong token is exit 4, an unknown queue, task
// or schedule exit 3, each with the API's message on stderr; a failure
// to connect is exit 1.
func TestRefusedAndNotFound(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	bad := map[string]string{"HOME": t.TempDir(), "HTQ_URL": c.url, "HTQ_TOKEN": "wrong-token-of-some-length"}
	for _, args := range [][]string{{"queue", "ls"}, {"stats"}, {"task", "push", "-q", "q", "http://x/"}, {"schedule", "ls"}} {
		if r := runEnv(t, bad, "", args...); r.code != 4 || !strings.Contains(r.stderr, "unauthorized") || r.stdout != "" {
			t.Errorf("%q with a wrong token: %+v", args, r)
		}
	}
	// --token wins over HTQ_TOKEN.
	if r := runEnv(t, bad, "", "queue", "ls", "--token", token); r.code != 0 {
		t.Errorf("--token: %+v", r)
	}
	for _, args := range [][]string{
		{"queue", "get", "nosuch"}, {"queue", "pause", "nosuch"}, {"queue", "purge", "nosuch", "--yes"}, {"queue", "rm", "nosuch", "--yes"},
		{"task", "push", "-q", "nosuch", "http://127.0.0.1:9/"}, {"task", "ls", "-q", "nosuch"}, {"task", "get", "00000000000001"},
		{"dead", "ls", "-q", "nosuch"}, {"export", "-q", "nosuch"},
		{"import", "-q", "nosuch", "-"}, {"schedule", "get", "nosuch"}, {"schedule", "trigger", "nosuch"},
	} {
		if r := c.htq(t, "", args...); r.code != 3 || !strings.Contains(r.stderr, "not_found") {
			t.Errorf("%q: %+v, want exit 3 with the API's code", args, r)
		}
	}
	if r := c.htq(t, "", "dead", "retry", "00000000000001"); r.code != 3 || !strings.Contains(r.stderr, "none of the 1 ids is a dead letter") {
		t.Errorf("dead retry of an unknown id: %+v", r)
	}
	if r := c.htq(t, "", "import", "-q", "q", "/nonexistent.ndjson"); r.code != 3 {
		t.Errorf("import of a missing file: %+v", r)
	}
	if r := runEnv(t, map[string]string{"HTQ_URL": "http://127.0.0.1:1", "HTQ_TOKEN": "t"}, "", "queue", "ls", "--url", "http://127.0.0.1:1"); r.code != 1 {
		t.Errorf("no API: %+v", r)
	}
}
