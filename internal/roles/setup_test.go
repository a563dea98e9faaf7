package roles_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htq/htq/internal/roles"
)

// clearEnv keeps the machine's HTQ_* variables out of a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HTQ_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestSetupFlagsOverrideConfig(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "htq.yaml")
	if err := os.WriteFile(path, []byte("log:\n  level: error\nscheduler:\n  listen: 127.0.0.1:7001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env, err := roles.Setup("scheduler", []string{"--config", path, "--listen", "127.0.0.1:0", "--log-level", "debug", "--log-format", "text"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	c := env.Config
	if c.Scheduler.Listen != "127.0.0.1:0" || c.Log.Level != "debug" || c.Log.Format != "text" {
		t.Fatalf("flags did not override: listen %q level %q format %q", c.Scheduler.Listen, c.Log.Level, c.Log.Format)
	}
	if env.Registry == nil || env.Clock == nil || env.Log == nil {
		t.Fatal("env is missing its registry, clock or logger")
	}

	t.Setenv("HTQ_API_TOKENS", "a-test-token-of-some-length")
	env, err = roles.Setup("api", []string{"--listen", ":5999", "--metrics-listen", ":9090"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if env.Config.API.Listen != ":5999" || env.Config.API.MetricsListen != ":9090" {
		t.Fatalf("api listeners %q %q", env.Config.API.Listen, env.Config.API.MetricsListen)
	}
	env, err = roles.Setup("dispatcher", []string{"--listen", "127.0.0.1:0"}, &out)
	if err != nil || env.Config.Dispatcher.Listen != "127.0.0.1:0" {
		t.Fatalf("dispatcher listen: %v", err)
	}
}

func TestMainExitCodesAndMessages(t *testing.T) {
	clearEnv(t)
	noRun := func(context.Context, *roles.Env) error {
		t.Error("run called after a bad setup")
		return nil
	}
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, tc := range []struct {
		name, role string
		args       []string
		env        map[string]string
		code       int
		want       string // in stderr
	}{
		{name: "unknown flag", role: "api", args: []string{"--nope"}, code: 2, want: "flag provided but not defined: -nope"},
		{name: "metrics-listen is api only", role: "dispatcher", args: []string{"--metrics-listen", ":1"}, code: 2, want: "-metrics-listen"},
		{name: "stray argument", role: "api", args: []string{"extra"}, code: 2, want: `unexpected argument "extra"`},
		{name: "bad log level flag", role: "scheduler", args: []string{"--log-level", "loud"}, code: 2, want: "log.level"},
		{name: "bad log format flag", role: "scheduler", args: []string{"--log-format", "xml"}, code: 2, want: "log.format"},
		{name: "bad listen flag", role: "dispatcher", args: []string{"--listen", "1.2.3.4:99999"}, code: 2, want: "dispatcher.listen"},
		{name: "missing config file", role: "api", args: []string{"--config", missing}, code: 2, want: "nope.yaml"},
		{name: "bad environment value", role: "dispatcher", env: map[string]string{"HTQ_DISPATCHER_LEASE_TTL": "abc"}, code: 2, want: "dispatcher.lease_ttl (HTQ_DISPATCHER_LEASE_TTL)"},
		{name: "api without a token", role: "api", code: 2, want: "api.tokens (HTQ_API_TOKENS): no token configured"},
		{name: "version", role: "api", args: []string{"--version"}, code: 0, want: "htq-api "},
		{name: "help", role: "scheduler", args: []string{"--help"}, code: 0, want: "Usage of htq-scheduler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			code := roles.Main(tc.role, tc.args, &out, noRun)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to contain %q)", code, tc.code, out.String(), tc.want)
			}
			if tc.code == 2 && !strings.Contains(out.String(), "htq-"+tc.role) {
				t.Errorf("the message does not name the command: %q", out.String())
			}
		})
	}
}

func TestMainRunsTheRole(t *testing.T) {
	clearEnv(t)
	var out bytes.Buffer
	if code := roles.Main("scheduler", []string{"--log-format", "text"}, &out, func(_ context.Context, env *roles.Env) error {
		if env.Config.Log.Format != "text" {
			t.Errorf("run got format %q", env.Config.Log.Format)
		}
		return nil
	}); code != 0 {
		t.Fatalf("clean run: exit %d", code)
	}
	out.Reset()
	if code := roles.Main("scheduler", nil, &out, func(context.Context, *roles.Env) error {
		return errors.New("redis unreachable")
	}); code != 1 || !strings.Contains(out.String(), "redis unreachable") {
		t.Fatalf("failed run: exit %d, stderr %q", code, out.String())
	}
}

func TestMainCancelsOnSIGTERM(t *testing.T) {
	clearEnv(t)
	var out bytes.Buffer
	code := roles.Main("dispatcher", nil, &out, func(ctx context.Context, _ *roles.Env) error {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil // the role shuts down gracefully and returns
		case <-time.After(10 * time.Second):
			return errors.New("SIGTERM did not cancel the context")
		}
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}
