package config_test

import (
	"testing"

	"github.com/htq/htq/internal/config"
)

// TestAPIUI covers api.ui: on by default, off from YAML or the environment,
// and a value that is not a boolean refused with the key's name.
func TestAPIUI(t *testing.T) {
	t.Parallel()
	tok := map[string]string{"HTQ_API_TOKENS": "0123456789abcdef-ui"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range tok {
			m[a] = b
		}
		return m
	}
	if !config.Default().API.UI || !config.DefaultUI {
		t.Fatal("api.ui is off by default")
	}
	for _, tt := range []struct {
		name, file string
		env        map[string]string
		want       bool
	}{
		{name: "default", env: tok, want: true},
		{name: "yaml off", file: "api:\n  ui: false\n", env: tok, want: false},
		{name: "env off", env: with("HTQ_API_UI", "false"), want: false},
		{name: "env over yaml", file: "api:\n  ui: false\n", env: with("HTQ_API_UI", "1"), want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := ""
			if tt.file != "" {
				name = "htq.yaml"
			}
			l := mustLoad(t, name, tt.file, tt.env)
			if l.API.UI != tt.want {
				t.Fatalf("api.ui = %v, want %v", l.API.UI, tt.want)
			}
		})
	}
	t.Run("env not a boolean", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load("", envOf(with("HTQ_API_UI", "sometimes")))
		wantErr(t, err, "api.ui", "HTQ_API_UI", "sometimes")
	})
	t.Run("yaml not a boolean", func(t *testing.T) {
		t.Parallel()
		_, err := load(t, "htq.yaml", "api:\n  ui: [yes]\n", tok)
		wantErr(t, err, "line 2", "bool") // the YAML decoder names the line, as for every key
	})
}
