package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// TestOpenAPICoversRoutes: every route the server answers is in the
// OpenAPI document it serves, with that method, and the document names no
// route the server lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rest(http.MethodGet, "/openapi.yaml", nil, "Authorization", "-")
	e.must(r, http.StatusOK, nil)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("/openapi.yaml is not YAML: %v", err)
	}
	ec, ok := e.srv.Handler().(*echo.Echo)
	if !ok {
		t.Skip("the handler is not an *echo.Echo")
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, rt := range ec.Routes() {
		if strings.HasPrefix(rt.Method, "echo_") || strings.HasSuffix(rt.Path, "*") {
			continue
		}
		path := param.ReplaceAllString(rt.Path, "{$1}")
		m := strings.ToLower(rt.Method)
		served[m+" "+path] = true
		if _, ok := doc.Paths[path][m]; !ok {
			t.Errorf("%s %s is served but not in openapi.yaml", rt.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				if !served[m+" "+path] {
					t.Errorf("openapi.yaml documents %s %s, which the server does not serve", strings.ToUpper(m), path)
				}
			}
		}
	}
}
