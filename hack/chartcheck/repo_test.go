package main

// Tests of the repository's Kubernetes deliverables that need no rendering:
// the Dockerfile and .dockerignore against the source tree (there is no
// Docker engine on the build machines), values.schema.json against HTQ's
// configuration keys, and the alert rules against their runbooks.

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const repo = "../.."

func readRepo(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

func parseDockerfile(t *testing.T, text string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends in a continuation line")
	}
	return out
}

// dockerignore applies .dockerignore rules as Docker does: the last
// matching pattern wins, and a pattern that matches a parent directory
// matches everything below it.
type dockerignore []struct {
	re  *regexp.Regexp
	neg bool
}

func parseDockerignore(t *testing.T, text string) dockerignore {
	t.Helper()
	var d dockerignore
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		neg := strings.HasPrefix(l, "!")
		p := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(l, "!")), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		d = append(d, struct {
			re  *regexp.Regexp
			neg bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return d
}

func (d dockerignore) excluded(file string) bool {
	parts := strings.Split(file, "/")
	ex := false
	for _, r := range d {
		for i := 1; i <= len(parts); i++ {
			if r.re.MatchString(strings.Join(parts[:i], "/")) {
				ex = !r.neg
				break
			}
		}
	}
	return ex
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := parseDockerfile(t, readRepo(t, "Dockerfile"))
	ignore := parseDockerignore(t, readRepo(t, ".dockerignore"))

	var froms []instruction
	stages := map[string]bool{}
	args := map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in)
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[f[2]] = true
			}
		case "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok {
				args[k] = v
			}
		}
	}
	if len(froms) != 2 {
		t.Fatalf("want two stages (build, runtime), got %d", len(froms))
	}
	// The builder's Go is the one go.mod asks for.
	gomod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readRepo(t, "go.mod"))
	if gomod == nil {
		t.Fatal("go.mod has no go line")
	}
	builder := strings.Replace(strings.Fields(froms[0].args)[0], "${GO_VERSION}", args["GO_VERSION"], 1)
	if builder != "golang:"+gomod[1] {
		t.Errorf("builder image %s, want golang:%s (go.mod)", builder, gomod[1])
	}
	if got := froms[1].args; got != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime image %q, want gcr.io/distroless/static-debian12:nonroot", got)
	}

	// Which stage each instruction belongs to: 0 build, 1 runtime.
	stage := -1
	var copied []string // build-context sources
	installed := map[string]bool{}
	var env, run, user, expose, entry string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			stage++
		case "ENV":
			env += " " + in.args
		case "RUN":
			run += " " + in.args
		case "USER":
			user = in.args
		case "EXPOSE":
			expose = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "COPY":
			f := strings.Fields(in.args)
			from := ""
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				}
				f = f[1:]
			}
			if len(f) < 2 {
				t.Errorf("line %d: COPY needs sources and a destination", in.line)
				continue
			}
			srcs, dst := f[:len(f)-1], f[len(f)-1]
			if from != "" {
				if !stages[from] {
					t.Errorf("line %d: COPY --from=%s: no such stage", in.line, from)
				}
				if stage == 1 && dst == "/usr/local/bin/" {
					for _, s := range srcs {
						installed[path.Join(dst, path.Base(s))] = true
					}
				}
				continue
			}
			for _, s := range srcs {
				clean := strings.TrimSuffix(path.Clean(s), "/")
				if _, err := os.Stat(filepath.Join(repo, clean)); err != nil {
					t.Errorf("line %d: COPY source %s does not exist in the repository", in.line, s)
				}
				if ignore.excluded(clean) {
					t.Errorf("line %d: COPY source %s is excluded by .dockerignore", in.line, s)
				}
				copied = append(copied, clean)
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0"} {
		if !strings.Contains(env, want) {
			t.Errorf("the build stage does not set %s", want)
		}
	}
	for _, want := range []string{"-trimpath", "-X github.com/htq/htq/internal/buildinfo.Version=${VERSION}", "./cmd/${role}", "api scheduler dispatcher"} {
		if !strings.Contains(run, want) {
			t.Errorf("the build does not use %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^var Version = `).MatchString(readRepo(t, "internal/buildinfo/buildinfo.go")) {
		t.Errorf("internal/buildinfo has no var Version for -ldflags -X")
	}
	for _, role := range []string{"api", "scheduler", "dispatcher"} {
		if !installed["/usr/local/bin/htq-"+role] {
			t.Errorf("the image does not install /usr/local/bin/htq-%s", role)
		}
	}
	if user != "65532:65532" && user != "65532" {
		t.Errorf("USER %q, want 65532 (numeric, so runAsNonRoot can be verified)", user)
	}
	if expose != "5999" {
		t.Errorf("EXPOSE %q, want 5999 (api.listen's default)", expose)
	}
	if entry != `["/usr/local/bin/htq-api"]` {
		t.Errorf("ENTRYPOINT %s, want the exec form of /usr/local/bin/htq-api", entry)
	}

	// The chart runs binaries the image has.
	tmpl, _ := filepath.Glob(filepath.Join(repo, "helm/htq/templates/*.yaml"))
	cmdRe := regexp.MustCompile(`command: \["(/usr/local/bin/htq-[a-z]+)"\]`)
	n := 0
	for _, f := range tmpl {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cmdRe.FindAllStringSubmatch(string(b), -1) {
			n++
			if !installed[m[1]] {
				t.Errorf("%s runs %s, which the image does not install", filepath.Base(f), m[1])
			}
		}
	}
	if n != 3 {
		t.Errorf("found %d HTQ commands in the chart's templates, want 3", n)
	}

	// Every file the three binaries are built from is in the build context:
	// under a COPY source and not excluded by .dockerignore.
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,ImportPath,Module,GoFiles,EmbedFiles", "./cmd/...")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	files := 0
	for dec.More() {
		var p struct {
			Dir, ImportPath     string
			Module              *struct{ Path string }
			GoFiles, EmbedFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "github.com/htq/htq" {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles) {
			files++
			file := filepath.ToSlash(filepath.Join(rel, f))
			if !slices.ContainsFunc(copied, func(c string) bool { return file == c || strings.HasPrefix(file, c+"/") }) {
				t.Errorf("%s (package %s) is not under any COPY source %v", file, p.ImportPath, copied)
			}
			if ignore.excluded(file) {
				t.Errorf("%s (package %s) is excluded by .dockerignore", file, p.ImportPath)
			}
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if ignore.excluded(f) {
			t.Errorf("%s is excluded by .dockerignore", f)
		}
	}
	if files < 10 {
		t.Errorf("go list found only %d files", files)
	}
	// And what the build does not need stays out.
	for _, f := range []string{".git", ".tools/bin/helm", "tmp/run/token", "internal/config/load_test.go", "bench/main.go", "helm/htq/values.yaml"} {
		if !ignore.excluded(f) {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}
}

// TestSchemaMatchesConfig: values.schema.json's config section lists exactly
// HTQ's keys (the README's table): each one allowed with a type, or refused
// because the chart sets it (listen addresses, Redis connection, secrets).
func TestSchemaMatchesConfig(t *testing.T) {
	t.Parallel()
	k, err := ParseReadme(strings.NewReader(readRepo(t, "README.md")))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				AdditionalProperties *bool `json:"additionalProperties"`
				Properties           map[string]struct {
					AdditionalProperties *bool                      `json:"additionalProperties"`
					Properties           map[string]json.RawMessage `json:"properties"`
					Not                  json.RawMessage            `json:"not"`
				} `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(readRepo(t, "helm/htq/values.schema.json")), &schema); err != nil {
		t.Fatal(err)
	}
	cfg := schema.Properties.Config
	if cfg.AdditionalProperties == nil || *cfg.AdditionalProperties {
		t.Errorf("config: additionalProperties must be false")
	}
	inSchema := map[string]bool{}
	for sec, s := range cfg.Properties {
		if s.Not != nil { // a section the chart sets entirely (signing)
			for key := range k.Keys {
				if strings.HasPrefix(key, sec+".") {
					inSchema[key] = true
				}
			}
			continue
		}
		if s.AdditionalProperties == nil || *s.AdditionalProperties {
			t.Errorf("config.%s: additionalProperties must be false", sec)
		}
		for key := range s.Properties {
			inSchema[sec+"."+key] = true
			if !k.Keys[sec+"."+key] {
				t.Errorf("values.schema.json allows config.%s.%s, which is not an HTQ key (README)", sec, key)
			}
		}
	}
	for key := range k.Keys {
		if !inSchema[key] {
			t.Errorf("HTQ key %s is missing from values.schema.json's config (allow it, or set it to false if the chart sets it)", key)
		}
	}
}

// TestAlertRunbooks: every alert has a runbook section in docs/operations.md.
func TestAlertRunbooks(t *testing.T) {
	t.Parallel()
	doc := readRepo(t, "docs/operations.md")
	_, alerts, ok := strings.Cut(doc, "\n## Alerts\n")
	if !ok {
		t.Fatal("docs/operations.md has no ## Alerts section")
	}
	if i := strings.Index(alerts, "\n## "); i >= 0 {
		alerts = alerts[:i]
	}
	for _, file := range []string{"helm/htq/files/alerts.rules.yaml", "deploy/monitoring/alerts.rules.yaml"} {
		b, err := os.ReadFile(filepath.Join(repo, file))
		if os.IsNotExist(err) && file != "helm/htq/files/alerts.rules.yaml" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var rules struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := yaml.Unmarshal(b, &rules); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		n := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				n++
				if !strings.Contains(alerts, "\n### "+r.Alert+"\n") {
					t.Errorf("%s: alert %s has no \"### %s\" runbook under ## Alerts in docs/operations.md", file, r.Alert, r.Alert)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no alerts", file)
		}
	}
}

// TestDashboard: the dashboard the chart ships is a JSON object with a title.
func TestDashboard(t *testing.T) {
	t.Parallel()
	var d map[string]any
	if err := json.Unmarshal([]byte(readRepo(t, "helm/htq/files/grafana-dashboard.json")), &d); err != nil {
		t.Fatalf("helm/htq/files/grafana-dashboard.json: %v", err)
	}
	if s, _ := d["title"].(string); s == "" {
		t.Errorf("the dashboard has no title")
	}
}
