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

// flushCall finds flush_meta(c, {pairs}); appendCall the pairs appended to
// a delivery's meta fields (f[#f + 1], … = 'name', value, …).
var (
	flushCall  = regexp.MustCompile(`flush_meta\(\w+, \{([^}]*)\}\)`)
	appendCall = regexp.MustCompile(`f\[#f \+ 1\][^=]*= ([^\n]*)`)
)

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
	case strings.Contains(key, "shash"):
		return "schedule"
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
		text := string(body)
		lineOf := func(off int) int { return strings.Count(text[:off], "\n") + 1 }
		use := func(hash, name string, off int, what string) {
			key := hash + "." + name
			used[key] = true
			if !known[key] {
				t.Errorf("%s:%d: %s %s, which fields.go does not list", file, lineOf(off), what, key)
			}
		}
		for _, loc := range hashCall.FindAllStringSubmatchIndex(text, -1) {
			cmd := text[loc[2]:loc[3]]
			all := callArgs(text, loc[1])
			if len(all) == 0 {
				continue
			}
			hash, args := hashOfKey(file, all[0]), all[1:]
			if hash == "" {
				t.Errorf("%s:%d: %s on a key this test does not know (%s): teach hashOfKey", file, lineOf(loc[0]), cmd, all[0])
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
					// a computed field list (unpack of a table this test reads
					// below) or a field name passed by the caller
					if !strings.HasPrefix(a, "unpack(") && !strings.HasPrefix(a, "ARGV[") {
						t.Errorf("%s:%d: %s field %q is not a literal", file, lineOf(loc[0]), cmd, a)
					}
					continue
				}
				use(hash, lm[1], loc[0], cmd)
			}
		}
		// Meta fields gathered in a delivery's table and written by
		// flush_meta: its extra pairs, and the pairs common.lua appends.
		for _, loc := range flushCall.FindAllStringSubmatchIndex(text, -1) {
			pairs := splitArgs(text[loc[2]:loc[3]])
			for j := 0; j < len(pairs); j += 2 {
				if lm := literal.FindStringSubmatch(pairs[j]); lm != nil {
					use("meta", lm[1], loc[0], "flush_meta")
				}
			}
		}
		for _, loc := range appendCall.FindAllStringSubmatchIndex(text, -1) {
			vals := splitArgs(text[loc[2]:loc[3]])
			for j := 0; j < len(vals); j += 2 {
				if lm := literal.FindStringSubmatch(vals[j]); lm != nil {
					use("meta", lm[1], loc[0], "a flush_meta pair")
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
