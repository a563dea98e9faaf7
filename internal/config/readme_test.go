package config

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeListsEveryKey keeps the README's configuration table complete:
// every key, with its environment variable, has a row.
func TestReadmeListsEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range Keys() {
		row := "| `" + k + "` | `" + EnvName(k) + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no configuration row for %s (want a line starting %q)", k, row)
		}
	}
}
