package store

import (
	"fmt"
	"regexp"
	"strings"
)

// prelude is lua/common.lua cut into its top-level definitions, so that a
// script carries only the helpers it uses (scriptSource).
//
// Lua runs a script's whole chunk on every call, and every helper the chunk
// defines is a closure made on every call: the full prelude cost ~6 µs of
// Redis CPU per call on a busy server and ~17 µs on one that a lone request
// wakes (an EVALSHA of the prelude and `return 1` against one of `return 1`
// alone, BENCHMARKS.md). A wake-up runs three scripts; most use a third
// of the helpers.
//
// Leaving a definition out changes nothing a script does: definitions keep
// their order, and one is left out only when neither the script nor any
// definition kept names it. The name test is by word, over code and trailing
// comments alike, so it can keep a helper the script does not need but never
// drop one it calls (a Lua local is only ever reached through its name).
type prelude struct {
	defs []definition
}

// definition is one top-level `local` of the prelude with the comment lines
// above it.
type definition struct {
	names []string // the locals it declares
	text  string
	words map[string]bool
}

var (
	luaWord      = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	localFunc    = regexp.MustCompile(`^local function ([A-Za-z_][A-Za-z0-9_]*)\(`)
	localNames   = regexp.MustCompile(`^local ([A-Za-z_][A-Za-z0-9_, ]*)=`)
	continuation = regexp.MustCompile(`^(end\b|[})\]])`)
)

// parsePrelude cuts src into definitions. Every line of code must open a
// definition (`local …` at the left margin), continue one that is open (an
// indented line after a `local function` line without its `end`, or after
// a line ending in an opening bracket or a comma) or close it (`end` or a
// closing bracket at the left margin). A statement of its own would run in
// some scripts and not in others, so it is refused.
func parsePrelude(src string) (*prelude, error) {
	p := new(prelude)
	var pending strings.Builder // comments and blank lines before the next line of code
	open := false               // the last definition continues on the next lines
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "--") && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t"):
			pending.WriteString(line + "\n")
		case strings.HasPrefix(line, "local "):
			var names []string
			if m := localFunc.FindStringSubmatch(line); m != nil {
				names = []string{m[1]}
			} else if m := localNames.FindStringSubmatch(line); m != nil {
				for n := range strings.SplitSeq(m[1], ",") {
					names = append(names, strings.TrimSpace(n))
				}
			} else {
				return nil, fmt.Errorf("common.lua:%d: cannot tell what %q declares", i+1, line)
			}
			p.defs = append(p.defs, definition{names: names, text: pending.String() + line + "\n"})
			pending.Reset()
			open = opens(line)
		case open && (line[0] == ' ' || line[0] == '\t' || continuation.MatchString(line)):
			d := &p.defs[len(p.defs)-1]
			d.text += pending.String() + line + "\n"
			pending.Reset()
			if line[0] != ' ' && line[0] != '\t' {
				open = false
			}
		default:
			return nil, fmt.Errorf("common.lua:%d: a statement outside a local definition: %q", i+1, line)
		}
	}
	for i := range p.defs {
		p.defs[i].words = codeWords(p.defs[i].text)
	}
	return p, nil
}

// opens reports whether the definition starting on line continues on the
// next lines.
func opens(line string) bool {
	code := strings.TrimSpace(line)
	if strings.HasPrefix(code, "local function ") {
		return !strings.HasSuffix(code, " end")
	}
	return strings.HasSuffix(code, "{") || strings.HasSuffix(code, "(") || strings.HasSuffix(code, ",")
}

// codeWords returns the words of src outside whole-line comments.
func codeWords(src string) map[string]bool {
	words := map[string]bool{}
	for line := range strings.SplitSeq(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		for _, w := range luaWord.FindAllString(line, -1) {
			words[w] = true
		}
	}
	return words
}

// forScript returns the definitions body needs, directly or through other
// definitions, in the prelude's order.
func (p *prelude) forScript(body string) string {
	need := codeWords(body)
	keep := make([]bool, len(p.defs))
	// A definition can only name those above it, so one pass from the
	// bottom up settles everything.
	for i := len(p.defs) - 1; i >= 0; i-- {
		for _, n := range p.defs[i].names {
			if need[n] {
				keep[i] = true
			}
		}
		if keep[i] {
			for w := range p.defs[i].words {
				need[w] = true
			}
		}
	}
	var out strings.Builder
	for i, d := range p.defs {
		if keep[i] {
			out.WriteString(d.text)
		}
	}
	return out.String()
}
