package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htq/htq/internal/redistest"
)

// TestContexts: add (token from stdin), ls (token never shown), use, rm;
// the file is 0600 under XDG_CONFIG_HOME; commands take the URL and token
// of the current context, and --context picks another.
func TestContexts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	xdg := t.TempDir()
	env := map[string]string{"HOME": t.TempDir(), "XDG_CONFIG_HOME": xdg}
	const secret = "wrong-token-never-shown"
	runEnv(t, env, token+"\n", "context", "add", "good", "--url", c.url, "--token", "-").ok(t)
	if r := runEnv(t, env, "", "context", "add", "bad", "--url", c.url, "--token", secret, "-o", "json").ok(t); strings.Contains(r.stdout, secret) ||
		!strings.Contains(r.stdout, `"current": "good"`) {
		t.Fatalf("context add -o json: %s", r.stdout)
	}

	path := filepath.Join(xdg, "htq", "config.yaml")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v, want mode 0600", st, err)
	}
	ls := runEnv(t, env, "", "context", "ls").ok(t)
	if strings.Contains(ls.stdout, token) || strings.Contains(ls.stdout, secret) {
		t.Fatalf("context ls shows a token:\n%s", ls.stdout)
	}
	golden(t, "context_ls.txt", ls.stdout)
	if r := runEnv(t, env, "", "context", "ls", "-o", "json").ok(t); strings.Contains(r.stdout, secret) || !strings.Contains(r.stdout, `"token": true`) {
		t.Fatalf("context ls -o json: %s", r.stdout)
	}

	// The first context added is current: its token works.
	runEnv(t, env, "", "queue", "put", "q").ok(t)
	if r := runEnv(t, env, "", "queue", "ls", "--context", "bad"); r.code != 4 || strings.Contains(r.stderr, secret) {
		t.Fatalf("--context bad: %+v", r)
	}
	runEnv(t, env, "", "context", "use", "bad").ok(t)
	if r := runEnv(t, env, "", "queue", "ls"); r.code != 4 {
		t.Fatalf("current context bad: %+v", r)
	}
	// HTQ_TOKEN wins over the context's token.
	env2 := map[string]string{"HOME": env["HOME"], "XDG_CONFIG_HOME": xdg, "HTQ_TOKEN": token}
	runEnv(t, env2, "", "queue", "ls").ok(t)

	if r := runEnv(t, env, "", "context", "use", "nosuch"); r.code != 3 {
		t.Fatalf("use of an unknown context: %+v", r)
	}
	if r := runEnv(t, env, "", "queue", "ls", "--context", "nosuch"); r.code != 3 {
		t.Fatalf("--context nosuch: %+v", r)
	}
	runEnv(t, env, "", "context", "rm", "bad").ok(t)
	if r := runEnv(t, env, "", "context", "rm", "bad"); r.code != 3 {
		t.Fatalf("rm twice: %+v", r)
	}
	if r := runEnv(t, env, "", "queue", "ls"); r.code != 2 || !strings.Contains(r.stderr, "no HTQ URL") {
		t.Fatalf("no current context: %+v", r)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file after rewrites: %v %v", st, err)
	}
	// Without XDG_CONFIG_HOME the file is under $HOME/.config.
	home := t.TempDir()
	runEnv(t, map[string]string{"HOME": home}, "", "context", "add", "x", "--url", c.url, "--token", "t").ok(t)
	if _, err := os.Stat(filepath.Join(home, ".config", "htq", "config.yaml")); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateLegacyUsesTheContext: migrate-legacy, whose --url and
// --token are its own flags, also falls back to the current context.
func TestMigrateLegacyUsesTheContext(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": t.TempDir()}
	runEnv(t, env, "", "context", "add", "x", "--url", "http://127.0.0.1:1", "--token", "t").ok(t)
	src := redistest.Start(t).URL()
	r := runEnv(t, env, "", "migrate-legacy", "--from-redis", src)
	// Without the context it would stop at "HTQ URL"; with it, it gets as
	// far as trying the context's API.
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach HTQ") {
		t.Fatalf("migrate-legacy with a context: %+v", r)
	}
	if r := runEnv(t, env, "", "migrate-legacy", "--from-redis", src, "--context", "nosuch"); r.code != 3 {
		t.Fatalf("migrate-legacy --context nosuch: %+v", r)
	}
}
