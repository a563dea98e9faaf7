package main

import (
	"bufio"
	"io"
	"regexp"
)

// Known is the set of HTQ configuration keys and their variables, read from
// the README's configuration table (which internal/config's tests keep
// complete).
type Known struct {
	Keys map[string]bool // "dispatcher.shutdown_grace"
	Envs map[string]bool // "HTQ_DISPATCHER_SHUTDOWN_GRACE"
}

var readmeRow = regexp.MustCompile("^\\| `([a-z0-9_]+\\.[a-z0-9_]+)` \\| `(HTQ_[A-Z0-9_]+)` \\|")

// ParseReadme reads the configuration table's rows.
func ParseReadme(r io.Reader) (*Known, error) {
	k := &Known{Keys: map[string]bool{}, Envs: map[string]bool{"HTQ_CONFIG": true}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := readmeRow.FindStringSubmatch(sc.Text()); m != nil {
			k.Keys[m[1]] = true
			k.Envs[m[2]] = true
		}
	}
	return k, sc.Err()
}
