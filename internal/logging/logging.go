// Package logging builds the slog logger every role is given.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON or text logger at the given level, with a "role"
// attribute on every record. level and format have no defaults here (the
// configuration's are log.level and log.format): empty ones are refused.
func New(w io.Writer, level, format, role string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("log.level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log.format %q: want json or text", format)
	}
	return slog.New(h).With("role", role), nil
}
