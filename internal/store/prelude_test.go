package store

import (
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/task"
)

const testPrelude = `-- header
--
local A, B = 1, 2
-- about b
local function b()
  return A
end
local T = {
  x = 1,
}
local function c() return T.x end

-- d calls b
local function d()
  -- not c: a comment names no helper
  return b()
end
`

func TestAScriptCarriesTheHelpersItUsesAndNoOther(t *testing.T) {
	p, err := parsePrelude(testPrelude)
	if err != nil {
		t.Fatal(err)
	}
	got := p.forScript("-- c would be wrong here\nreturn d() -- d\n")
	want := "-- header\n--\nlocal A, B = 1, 2\n-- about b\nlocal function b()\n  return A\nend\n" +
		"\n-- d calls b\nlocal function d()\n  -- not c: a comment names no helper\n  return b()\nend\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := p.forScript("return c()"); got != "local T = {\n  x = 1,\n}\nlocal function c() return T.x end\n" {
		t.Fatalf("c needs T: got\n%s", got)
	}
	if got := p.forScript("return B"); !strings.Contains(got, "local A, B = 1, 2") {
		t.Fatalf("a local declared second in a list is found: %q", got)
	}
}

func TestThePreludeRefusesWhatItCannotCut(t *testing.T) {
	for name, src := range map[string]string{
		"statement":           "local A = 1\nredis.call('DEL', 'x')\n",
		"code first":          "  return 1\nlocal A = 1\n",
		"undeclared":          "local\n",
		"indented after end":  "local function a()\n  return 1\nend\n  redis.call('DEL', 'x')\n",
		"indented after line": "local A = 1\n  A = 2\n",
	} {
		if _, err := parsePrelude(src); err == nil {
			t.Errorf("%s: parsed %q", name, src)
		}
	}
}

// Every script is assembled from the real common.lua, and a script that
// uses few helpers carries few: the renewal needs only the fencing check.
func TestTheScriptsCarryPartsOfTheRealPrelude(t *testing.T) {
	src, p := realPrelude(t)
	body, err := luaFiles.ReadFile("lua/renew.lua")
	if err != nil {
		t.Fatal(err)
	}
	renew := p.forScript(string(body))
	if !strings.Contains(renew, "local function fenced(") || strings.Contains(renew, "local function deliver(") {
		t.Errorf("renew's helpers:\n%s", renew)
	}
	if len(renew) > len(src)/4 {
		t.Errorf("renew carries %d of the prelude's %d bytes", len(renew), len(src))
	}
	if _, err := loadScripts(); err != nil {
		t.Fatal(err)
	}
}

// ScriptNames names the scripts as Redis sees them: the SHA-1 of a script
// the store ran, read back from the SLOWLOG, maps to that script's file.
func TestScriptNamesNameWhatRedisRuns(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	s, err := New(rdb, "t:", clock.NewFake(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.SlowLogReset(ctx)
	cfg := task.DefaultQueueConfig()
	if _, err := s.Enqueue(ctx, "q", []NewTask{{Spec: &task.Spec{URL: "http://127.0.0.1:1/"}}},
		EnqueueOptions{CreateQueue: &cfg}); err != nil {
		t.Fatal(err)
	}
	log, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	names, err := ScriptNames()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2*len(scriptFiles) {
		t.Errorf("%d names for %d scripts in two variants", len(names), len(scriptFiles))
	}
	found := false
	for _, e := range log {
		if len(e.Args) > 1 && strings.EqualFold(e.Args[0], "evalsha") {
			if names[e.Args[1]] != "enqueue" {
				t.Errorf("Redis ran %s, named %q", e.Args[1], names[e.Args[1]])
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("no EVALSHA in the slowlog: %v", log)
	}
}

// Every helper a built script names in its code (outside strings and
// comments, not as a field) is declared in it: a missing one would fail
// only when its path runs ("nonexistent global variable").
func TestEveryBuiltScriptDeclaresTheHelpersItNames(t *testing.T) {
	_, p := realPrelude(t)
	helpers := map[string]bool{"EVENTS": true}
	for _, d := range p.defs {
		for _, n := range d.names {
			helpers[n] = true
		}
	}
	for _, name := range scriptFiles {
		body, err := luaFiles.ReadFile("lua/" + name + ".lua")
		if err != nil {
			t.Fatal(err)
		}
		built := scriptSource(p, name, string(body), true)
		declared := map[string]bool{}
		for line := range strings.SplitSeq(built, "\n") {
			if m := localFunc.FindStringSubmatch(line); m != nil {
				declared[m[1]] = true
			} else if m := localNames.FindStringSubmatch(line); m != nil {
				for n := range strings.SplitSeq(m[1], ",") {
					declared[strings.TrimSpace(n)] = true
				}
			}
		}
		for _, id := range luaNames(t, built) {
			if helpers[id] && !declared[id] {
				t.Errorf("%s.lua names %s, which its built script does not declare", name, id)
			}
		}
	}
}

// luaNames returns the names src uses outside strings and comments, less
// those after a '.' or ':' (fields and methods).
func luaNames(t *testing.T, src string) []string {
	t.Helper()
	var out []string
	isName := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	prev := byte(' ')
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case strings.HasPrefix(src[i:], "--[[") || strings.HasPrefix(src[i:], "[["):
			t.Fatalf("long brackets at %d: luaNames does not read them", i)
		case strings.HasPrefix(src[i:], "--"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\'' || c == '"':
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' {
					i++
				}
			}
			i++
			prev = c
		case isName(c) && (c < '0' || c > '9'):
			j := i
			for j < len(src) && isName(src[j]) {
				j++
			}
			if prev != '.' && prev != ':' {
				out = append(out, src[i:j])
			}
			i, prev = j, 'a'
		default:
			if c != ' ' && c != '\t' && c != '\n' {
				prev = c
			}
			i++
		}
	}
	return out
}

// realPrelude returns lua/common.lua and its cut.
func realPrelude(t *testing.T) ([]byte, *prelude) {
	t.Helper()
	src, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePrelude(string(src))
	if err != nil {
		t.Fatal(err)
	}
	return src, p
}
