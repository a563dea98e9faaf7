package store

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// hashCall finds the start of a redis.call of a hash command.
var hashCall = regexp.MustCompile(`redis\.call\('(HSET|HGET|HMGET|HDEL|HINCRBY)',`)

// callArgs returns the arguments of the call whose argument list starts at
// s[i:] (after the command), up to its closing parenthesis.
func callArgs(s string, i int) []string {
	depth := 1
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '(', '{':
			depth++
		case ')', '}':
			depth--
			if depth == 0 {
				return splitArgs(s[i:j])
			}
		}
	}
	return splitArgs(s[i:])
}

// hashOfKey says which hash a script's key expression names.
func hashOfKey(file, key string) string {
	key = strings.TrimSpace(key)
	switch {
	case strings.Contains(key, "meta") || strings.Contains(key, "'m:'"):
		return "meta"
	case strings.Contains(key, "skey") || strings.Contains(key, "state_key"):
		return "state"
	case file == "queue_delete.lua" && key == "KEYS[1]":
		return "meta"
	case (file == "cancel.lua" || file == "retry.lua") && key == "KEYS[2]":
		return "state"
	case strings.Contains(key, "seqs") || strings.Contains(key, "KEYS[5]"):
		return "seqs" // field: a queue name
	}
	return ""
}

// splitArgs splits a Lua argument list at its top-level commas.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(', '{':
			depth++
		case ')', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func TestFieldsTable(t *testing.T) {
	known := make(map[string]bool)
	for _, f := range HashFields {
		if known[f.Hash+"."+f.Name] {
			t.Errorf("field %s.%s listed twice", f.Hash, f.Name)
		}
		known[f.Hash+"."+f.Name] = true
		if f.Meaning == "" || f.Writers == "" {
			t.Errorf("field %s.%s: say what it means and who writes it", f.Hash, f.Name)
		}
	}
	used := make(map[string]bool)
	literal := regexp.MustCompile(`^'([a-z]+)'$`)
	files, err := fs.Glob(luaFiles, "lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		body, err := luaFiles.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		file := strings.TrimPrefix(path, "lua/")
		for i, line := range strings.Split(string(body), "\n") {
			for _, loc := range hashCall.FindAllStringSubmatchIndex(line, -1) {
				cmd := line[loc[2]:loc[3]]
				all := callArgs(line, loc[1])
				if len(all) == 0 {
					continue
				}
				hash, args := hashOfKey(file, all[0]), all[1:]
				if hash == "" {
					t.Errorf("%s:%d: %s on a key this test does not know (%s): teach hashOfKey", file, i+1, cmd, all[0])
					continue
				}
				if hash == "seqs" {
					continue
				}
				for j, a := range args {
					if cmd == "HSET" && j%2 == 1 || cmd == "HINCRBY" && j > 0 {
						continue // a value
					}
					lm := literal.FindStringSubmatch(a)
					if lm == nil {
						if cmd != "HSET" || !strings.HasPrefix(a, "unpack(") {
							// a computed field name is a value passed by the caller
							if !strings.HasPrefix(a, "ARGV[") && a != "'1'" {
								t.Errorf("%s:%d: %s field %q is not a literal", file, i+1, cmd, a)
							}
						}
						continue
					}
					name := hash + "." + lm[1]
					used[name] = true
					if !known[name] {
						t.Errorf("%s:%d: %s writes or reads %s, which fields.go does not list", file, i+1, cmd, name)
					}
				}
			}
		}
	}
	// Fields set from Go (metaFields, through queue_put's and enqueue's
	// field/value arguments), and the last status and error, which
	// complete.lua gathers in a table before its HSET.
	for _, f := range []string{"meta.type", "meta.cfg", "meta.conc", "meta.maxbl", "meta.rate", "meta.burst", "meta.ret", "meta.dret", "state.sc", "state.err"} {
		used[f] = true
	}
	for name := range known {
		if !used[name] {
			t.Errorf("fields.go lists %s, which no script uses", name)
		}
	}
}
