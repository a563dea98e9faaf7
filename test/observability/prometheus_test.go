package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/htq/htq/internal/testcluster"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/htq/htq/internal/redistest"
)

// promServer is a Prometheus started by a test.
type promServer struct {
	URL  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startPrometheus starts the prometheus binary on a free loopback port,
// scraping every second the given targets (job name -> host:port list) and
// loading ruleFiles, with its TSDB in a temporary directory. It is stopped
// when the test ends.
func startPrometheus(t *testing.T, jobs map[string][]string, ruleFiles ...string) *promServer {
	t.Helper()
	bin := prometheus(t)
	dir := t.TempDir()
	var scrape []any
	for job, targets := range jobs {
		scrape = append(scrape, map[string]any{
			"job_name":       job,
			"static_configs": []any{map[string]any{"targets": targets}},
		})
	}
	cfg, err := yaml.Marshal(map[string]any{
		"global": map[string]any{
			"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
		},
		"rule_files":     ruleFiles,
		"scrape_configs": scrape,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	var p *promServer
	for attempt := range 3 {
		addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
		p = &promServer{URL: "http://" + addr, log: filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt)), done: make(chan struct{})}
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bin,
			"--config.file", cfgFile,
			"--storage.tsdb.path", filepath.Join(dir, "data"),
			"--web.listen-address", addr,
			"--log.level", "warn",
		)
		p.cmd.Stdout, p.cmd.Stderr = f, f
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		go func(cmd *exec.Cmd, done chan struct{}) {
			_ = cmd.Wait()
			_ = f.Close()
			close(done)
		}(p.cmd, p.done)
		if p.waitReady(20 * time.Second) {
			t.Cleanup(func() { p.stop(t) })
			return p
		}
		p.stop(t)
		t.Logf("prometheus on %s did not start (attempt %d): %s", addr, attempt+1, testcluster.Tail(p.log))
	}
	t.Fatalf("prometheus did not start; config:\n%s", cfg)
	return nil
}

// waitReady polls /-/ready until it answers 200 or the process exits.
func (p *promServer) waitReady(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// stop sends SIGTERM and waits (SIGKILL after 10 s); safe to call twice.
func (p *promServer) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if t.Failed() {
		t.Logf("---- prometheus log (tail) ----\n%s", testcluster.Tail(p.log))
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string
	Value  float64
}

// apiGet calls the Prometheus HTTP API and decodes data into out.
func (p *promServer) apiGet(ctx context.Context, path string, params url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("GET %s: %d %q: %w", path, resp.StatusCode, b, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// query runs an instant query; an error is an error answer (a bad query),
// not an empty result.
func (p *promServer) query(expr string) ([]sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.apiGet(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	parse := func(v []any) (float64, error) {
		if len(v) != 2 {
			return 0, fmt.Errorf("query %q: value %v", expr, v)
		}
		s, _ := v[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch data.ResultType {
	case "vector":
		var rs []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &rs); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(rs))
		for _, r := range rs {
			v, err := parse(r.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Metric: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var v []any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parse(v)
		if err != nil {
			return nil, err
		}
		return []sample{{Value: f}}, nil
	}
	return nil, fmt.Errorf("query %q: result type %q", expr, data.ResultType)
}

// scalar runs a query that must answer one sample and returns its value
// (NaN when it answers nothing).
func (p *promServer) scalar(expr string) (float64, error) {
	s, err := p.query(expr)
	if err != nil {
		return 0, err
	}
	switch len(s) {
	case 0:
		return math.NaN(), nil
	case 1:
		return s[0].Value, nil
	}
	return 0, fmt.Errorf("query %q: %d series, want 1", expr, len(s))
}

// promRule is a rule as /api/v1/rules lists it.
type promRule struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	State     string `json:"state"`
	Alerts    []struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
	} `json:"alerts"`
}

func (p *promServer) rules() ([]promRule, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var data struct {
		Groups []struct {
			File  string     `json:"file"`
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.apiGet(ctx, "/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	var out []promRule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// String renders a sample list for failure messages.
func render(ss []sample) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%v=%g ", s.Metric, s.Value)
	}
	return b.String()
}
