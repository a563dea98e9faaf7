package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/htq/htq/internal/console"
)

func get(t *testing.T, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	console.Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServe(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path, status, ctype, cache, contains string
	}{
		{"/ui/", "200", "text/html; charset=utf-8", "no-cache, no-store", `<script type="module" src="/ui/app.js">`},
		{"/ui/index.html", "200", "text/html; charset=utf-8", "no-cache, no-store", `<div id="app">`},
		{"/ui/app.js", "200", "text/javascript; charset=utf-8", "no-cache", "import"},
		{"/ui/console.css", "200", "text/css; charset=utf-8", "no-cache", ":root"},
		// unknown paths are pages of the single-page application
		{"/ui/queues/some-queue", "200", "text/html; charset=utf-8", "no-cache, no-store", `<div id="app">`},
		{"/ui/../../etc/passwd", "200", "text/html; charset=utf-8", "no-cache, no-store", `<div id="app">`},
		{"/ui", "301", "", "", ""},
		{"/other", "404", "", "", ""},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			r := get(t, http.MethodGet, tt.path)
			b := body(t, r)
			if got := strings.Fields(r.Status)[0]; got != tt.status {
				t.Fatalf("status %s, want %s", r.Status, tt.status)
			}
			h := r.Header
			for k, want := range map[string]string{
				"Content-Security-Policy": console.ContentSecurityPolicy, "X-Frame-Options": "DENY",
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tt.ctype != "" && h.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", h.Get("Content-Type"), tt.ctype)
			}
			if tt.cache != "" && h.Get("Cache-Control") != tt.cache {
				t.Errorf("Cache-Control = %q, want %q", h.Get("Cache-Control"), tt.cache)
			}
			if !strings.Contains(b, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			if tt.status == "301" && h.Get("Location") != "/ui/" {
				t.Errorf("Location = %q", h.Get("Location"))
			}
		})
	}
}

func TestCSPHasNoUnsafe(t *testing.T) {
	t.Parallel()
	csp := console.ContentSecurityPolicy
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP allows %q: %s", bad, csp)
		}
	}
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
}

func TestConditionalAndHead(t *testing.T) {
	t.Parallel()
	r := get(t, http.MethodGet, "/ui/app.js")
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if r2 := get(t, http.MethodGet, "/ui/app.js", "If-None-Match", etag); r2.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: status %d, want 304", r2.StatusCode)
	}
	if r3 := get(t, http.MethodGet, "/ui/app.js", "If-None-Match", `"stale"`); r3.StatusCode != http.StatusOK {
		t.Fatalf("stale If-None-Match: status %d, want 200", r3.StatusCode)
	}
	h := get(t, http.MethodHead, "/ui/app.js")
	if h.StatusCode != http.StatusOK || body(t, h) != "" {
		t.Fatalf("HEAD: status %d", h.StatusCode)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		r := get(t, m, "/ui/")
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q", m, r.StatusCode, r.Header.Get("Allow"))
		}
	}
}

// TestStaticFilesAreSafe reads the embedded sources: nothing may parse data
// as HTML or code, set inline styles or handlers from strings, or load
// anything from another origin (the console must work air-gapped).
func TestStaticFilesAreSafe(t *testing.T) {
	t.Parallel()
	banned := map[string]*regexp.Regexp{
		"innerHTML/outerHTML":               regexp.MustCompile(`\.(inner|outer)HTML`),
		"insertAdjacentHTML":                regexp.MustCompile(`insertAdjacentHTML`),
		"document.write":                    regexp.MustCompile(`document\.write`),
		"eval/new Function":                 regexp.MustCompile(`\beval\(|new Function\(`),
		"style attribute":                   regexp.MustCompile(`setAttribute\(\s*['"]style|\sstyle=`),
		"on* attribute in HTML":             regexp.MustCompile(`<[^>]+\son[a-z]+=`),
		"inline script":                     regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`),
		"other origin":                      regexp.MustCompile(`(?:src|href|url\(|from|import\(|fetch\(|@import)\s*=?\s*["'\x60]?(?:https?:|wss?:)?//`),
		"storage other than sessionStorage": regexp.MustCompile(`localStorage|document\.cookie`),
	}
	dir := "static"
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for what, re := range banned {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s: %s at byte %d: %q", p, what, loc[0], b[loc[0]:min(loc[1]+20, len(b))])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
