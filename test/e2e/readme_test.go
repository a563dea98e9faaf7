package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/htq/htq/internal/testcluster"
)

// readmeShellBlocks returns the README's shell examples that call the API:
// every ```sh block with a curl in it, and every inline `curl …` span (the
// legacy example is one, wrapped over lines).
func readmeShellBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme, -1) {
		if strings.Contains(m[1], "curl ") {
			out = append(out, m[1])
		}
	}
	// an inline span: one backtick, curl, up to the closing backtick
	for _, m := range regexp.MustCompile("(?s)(?:^|[^`])`(curl [^`]+)`").FindAllStringSubmatch(readme, -1) {
		out = append(out, strings.ReplaceAll(m[1], "\n", " "))
	}
	return out
}

// TestReadmeCurlExamples runs the README's curl examples, in order, as a
// newcomer would after `make run`: against a local API whose token is in
// tmp/run/token (the cluster's credentials stand in for demo_key /
// demo_token). Every
// curl must get a 2xx (a shim adds --fail-with-body) and every legacy call
// error_code 0, so an example whose route, field, token or captured id is
// wrong fails here.
func TestReadmeCurlExamples(t *testing.T) {
	t.Parallel()
	blocks := readmeShellBlocks(t)
	if len(blocks) < 2 {
		t.Fatalf("found %d curl examples in README.md; the REST and legacy ones are expected", len(blocks))
	}
	c := testcluster.NewCluster(t, testcluster.Options{})

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "run", "token"), []byte(testcluster.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	realCurl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed to run the README's examples: %v", err)
	}
	shim := "#!/bin/sh\nexec " + realCurl + " --fail-with-body -sS \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "curl"), []byte(shim), 0o700); err != nil {
		t.Fatal(err)
	}
	for i, block := range blocks {
		script := strings.NewReplacer("http://127.0.0.1:5999", c.API,
			"app_key=demo_key", "app_key="+testcluster.LegacyKey, "app_token=demo_token", "app_token="+testcluster.LegacyToken).Replace(block)
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README example %d failed (%v):\n%s\noutput:\n%s", i+1, err, block, out)
			continue
		}
		// the legacy API answers 200 with its verdict in error_code
		if strings.Contains(block, "/api/") && !regexp.MustCompile(`"error_code":\s*0\b`).Match(out) {
			t.Errorf("README example %d: the legacy API refused it:\n%s\noutput:\n%s", i+1, block, out)
		}
	}
}
