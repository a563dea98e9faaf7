package observability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// usedMetrics is every metric the dashboard and the alert rules read. The
// extraction from their expressions must find exactly these (so a new panel
// or rule updates this list, and the end-to-end test then proves the metric
// returns data).
var usedMetrics = []string{
	"go_goroutines",
	"htq_api_enqueue_duration_seconds_bucket",
	"htq_api_legacy_execute_time_fallbacks_total",
	"htq_api_request_duration_seconds_bucket",
	"htq_api_requests_total",
	"htq_api_tasks_enqueued_total",
	"htq_api_tasks_rejected_total",
	"htq_build_info",
	"htq_dispatcher_call_duration_seconds_bucket",
	"htq_dispatcher_calls_total",
	"htq_dispatcher_claims_total",
	"htq_dispatcher_inflight_calls",
	"htq_dispatcher_leases_total",
	"htq_dispatcher_max_queues",
	"htq_dispatcher_owned_queues",
	"htq_dispatcher_queue_lag_seconds_bucket",
	"htq_dispatcher_stale_writes_total",
	"htq_dispatcher_tasks_finished_total",
	"htq_queue_tasks",
	"htq_queues",
	"htq_redis_errors_total",
	"htq_redis_pool_connections",
	"htq_redis_pool_hits_total",
	"htq_redis_pool_misses_total",
	"htq_redis_pool_timeouts_total",
	"htq_scheduler_is_leader",
	"htq_scheduler_janitor_fixes_total",
	"htq_scheduler_leader_changes_total",
	"htq_scheduler_promotion_lag_seconds_bucket",
	"htq_scheduler_schedule_lateness_seconds_bucket",
	"htq_scheduler_schedule_runs_total",
	"htq_scheduler_tasks_promoted_total",
	"process_cpu_seconds_total",
	"process_resident_memory_bytes",
	"up",
}

// requiredAlerts are the alerts the issue asks for (the file may hold more).
var requiredAlerts = []string{
	"HTQSchedulerNoLeader", "HTQBacklogGrowing", "HTQDeadLettersIncreasing", "HTQCallErrorRatioHigh",
	"HTQQueueLagHigh", "HTQRoleDown", "HTQRedisErrors", "HTQScheduleRunsMissed",
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelTarget struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type dashboardPanel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource *datasourceRef   `json:"datasource"`
	Targets    []panelTarget    `json:"targets"`
	Panels     []dashboardPanel `json:"panels"` // a collapsed row's panels
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type dashboardFile struct {
	Title         string           `json:"title"`
	UID           string           `json:"uid"`
	SchemaVersion int              `json:"schemaVersion"`
	Panels        []dashboardPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) *dashboardFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboardFile
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json is not valid JSON: %v", err)
	}
	return &d
}

// allPanels flattens rows (a collapsed row holds its panels).
func (d *dashboardFile) allPanels() []dashboardPanel {
	var out []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// panelQuery is one PromQL expression of the dashboard.
type panelQuery struct {
	Panel string // "<id> <title> / <refId>"
	Expr  string // as written, with Grafana variables
}

func (d *dashboardFile) queries() []panelQuery {
	var out []panelQuery
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{Panel: fmt.Sprintf("%d %q / %s", p.ID, p.Title, tg.RefID), Expr: tg.Expr})
		}
	}
	return out
}

var grafanaVarRE = regexp.MustCompile(`\$\{?(\w+)\}?`)

// expand replaces the dashboard's variables so that Prometheus can run the
// expression: $__rate_interval by rateInterval.
// It returns an error for any other variable.
func expand(expr, rateInterval string) (string, error) {
	var bad []string
	out := grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		switch grafanaVarRE.FindStringSubmatch(m)[1] {
		case "__rate_interval":
			return rateInterval
		}
		bad = append(bad, m)
		return m
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown variables %v in %q", bad, expr)
	}
	return out, nil
}

var (
	promStringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchersRE = regexp.MustCompile(`\{[^}]*\}`)
	promRangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	promGroupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdentRE    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and groupings are
// removed, that are neither keywords nor function or aggregation names.
func metricNames(expr string) []string {
	s := promStringRE.ReplaceAllString(expr, `""`)
	s = promMatchersRE.ReplaceAllString(s, " ")
	s = promRangeRE.ReplaceAllString(s, " ")
	s = promGroupingRE.ReplaceAllString(s, " ")
	var out []string
	for _, m := range promIdentRE.FindAllStringSubmatch(s, -1) {
		name := strings.TrimRight(strings.TrimSuffix(strings.TrimSpace(m[0]), "("), " ")
		if m[1] != "" || promKeywords[strings.ToLower(name)] {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (le) (rate(a_bucket{x="y{z}"}[5m]))`, []string{"a_bucket"}},
		{`sum(b) < 1 or absent(c{job="d"})`, []string{"b", "c"}},
		{`x * on (job, instance) group_left (role) y`, []string{"x", "y"}},
		{`(sum(rate(r{code=~"5.."}[1m])) or vector(0)) / sum(rate(r[1m]))`, []string{"r", "r"}},
		{`deriv(sum(q{state=~"a|b"})[5m:1m]) > 0 and z > bool 3`, []string{"q", "z"}},
		{`histogram_quantile(0.99, sum without (pod) (rate(h_bucket[5m])))`, []string{"h_bucket"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// TestDashboard: the dashboard is valid JSON with what Grafana needs, every
// panel queries the templated Prometheus data source, and every expression
// parses (promtool check rules on a rules file made of the expressions).
func TestDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.Title == "" || d.UID != "htq-overview" || d.SchemaVersion < 36 || len(d.Panels) == 0 {
		t.Fatalf("dashboard: title %q, uid %q (want htq-overview), schemaVersion %d (want >= 36), %d panels",
			d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Name == "DS_PROMETHEUS" && (v.Type != "datasource" || v.Query != "prometheus") {
			t.Errorf("variable DS_PROMETHEUS: type %q, query %v; want a datasource variable of type prometheus", v.Type, v.Query)
		}
	}
	for _, name := range []string{"DS_PROMETHEUS"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("dashboard has no %s variable", name)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.allPanels() {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("%s: id missing or not unique", where)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Type == "" {
			t.Errorf("%s: no title or type", where)
		}
		if g := p.GridPos; g == nil || g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("%s: bad gridPos %+v", where, p.GridPos)
		}
		if p.Type == "row" {
			// Rows only group panels: no query of their own.
			if len(p.Targets) > 0 {
				t.Errorf("%s: a row with targets", where)
			}
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("%s: datasource %+v, want {prometheus ${DS_PROMETHEUS}}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: target %q: refId missing or repeated, or no expr", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && *tg.Datasource != *p.Datasource {
				t.Errorf("%s / %s: target datasource %+v differs from the panel's", where, tg.RefID, *tg.Datasource)
			}
		}
	}

	// Every expression parses: promtool checks a rules file whose recording
	// rules are the expressions ($__rate_interval as 1m).
	var rules []map[string]string
	for i, q := range d.queries() {
		e, err := expand(q.Expr, "1m")
		if err != nil {
			t.Errorf("%s: %v", q.Panel, err)
			continue
		}
		rules = append(rules, map[string]string{"record": fmt.Sprintf("htq_dashboard:query_%d", i), "expr": e})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool(t), "check", "rules", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", len(rules))) {
		t.Fatalf("promtool check rules on the dashboard's %d expressions: %v\n%s", len(rules), err, out)
	}

	// The metrics the dashboard and the rules read are exactly usedMetrics.
	got := map[string]bool{}
	for _, q := range d.queries() {
		e, _ := expand(q.Expr, "1m")
		for _, m := range metricNames(e) {
			got[m] = true
		}
	}
	for _, r := range loadRules(t).alerts() {
		for _, m := range metricNames(r.Expr) {
			got[m] = true
		}
	}
	var names []string
	for m := range got {
		names = append(names, m)
	}
	sort.Strings(names)
	if !slices.Equal(names, usedMetrics) {
		t.Errorf("metrics read by the dashboard and the rules:\n  %v\nusedMetrics:\n  %v", names, usedMetrics)
	}
}

type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) *rulesFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f rulesFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.rules.yaml: %v", err)
	}
	return &f
}

func (f *rulesFile) alerts() []rule {
	var out []rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// TestAlertRules: promtool check rules and promtool test rules pass; every
// alert has a severity, a summary, a description and the runbook link; the
// unit tests have a firing and a not-firing case for every alert.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	pt := promtool(t)
	if out, err := exec.Command(pt, "check", "rules", filepath.Join(monitoringDir, "alerts.rules.yaml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(pt, "test", "rules", "alerts_test.yaml")
	cmd.Dir = monitoringDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}

	alerts := loadRules(t).alerts()
	names := map[string]bool{}
	for _, a := range alerts {
		names[a.Alert] = true
		if s := a.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", a.Alert, s)
		}
		for _, k := range []string{"summary", "description"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("%s: no %s annotation", a.Alert, k)
			}
		}
		if !strings.HasSuffix(a.Annotations["runbook_url"], "docs/operations.md#alerts") {
			t.Errorf("%s: runbook_url %q does not point to docs/operations.md#alerts", a.Alert, a.Annotations["runbook_url"])
		}
	}
	for _, n := range requiredAlerts {
		if !names[n] {
			t.Errorf("alert %s is missing", n)
		}
	}

	b, err := os.ReadFile(filepath.Join(monitoringDir, "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			Name           string `yaml:"name"`
			AlertRuleTests []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("alerts_test.yaml: %v", err)
	}
	firing, quiet := map[string]int{}, map[string]int{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTests {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname]++
			} else {
				quiet[a.Alertname]++
			}
		}
	}
	for n := range names {
		if firing[n] == 0 || quiet[n] == 0 {
			t.Errorf("alerts_test.yaml: %s has %d firing and %d not-firing cases; want at least one of each", n, firing[n], quiet[n])
		}
	}
	for n := range firing {
		if !names[n] {
			t.Errorf("alerts_test.yaml tests %s, which is not in alerts.rules.yaml", n)
		}
	}
}
