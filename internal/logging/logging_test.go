package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/htq/htq/internal/logging"
)

func TestNew(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log, err := logging.New(&b, "WARN", "json", "api")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["msg"] != "shown" || rec["role"] != "api" {
		t.Fatalf("json logger wrote %q (%v)", b.String(), err)
	}
	b.Reset()
	if log, err = logging.New(&b, "debug", "text", "dispatcher"); err != nil {
		t.Fatal(err)
	}
	log.Debug("x")
	if !strings.Contains(b.String(), "msg=x role=dispatcher") {
		t.Fatalf("text logger wrote %q", b.String())
	}
}

// TestNewRefusesWhatItCannotUse: an empty or unknown level or format is an
// error naming the key, not a default of the logger's own (config has them).
func TestNewRefusesWhatItCannotUse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ level, format, key string }{
		{"info", "", "log.format"},
		{"info", "xml", "log.format"},
		{"", "json", "log.level"},
		{"loud", "json", "log.level"},
	} {
		if _, err := logging.New(&bytes.Buffer{}, tt.level, tt.format, "api"); err == nil || !strings.HasPrefix(err.Error(), tt.key) {
			t.Errorf("New(%q, %q) = %v, want an error naming %s", tt.level, tt.format, err, tt.key)
		}
	}
}
