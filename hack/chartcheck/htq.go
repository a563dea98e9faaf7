package main

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// HTQ's own defaults (internal/config), for settings the manifests leave out.
const (
	defaultAPIListen     = ":5999"
	defaultRoleListen    = "127.0.0.1:0"
	defaultShutdownGrace = 25 * time.Second
	// The image's user (gcr.io/distroless/static-debian12:nonroot).
	htqUID = 65532
)

// htqRole returns "api", "scheduler" or "dispatcher" for a container that
// runs an HTQ binary, else "".
func htqRole(c *corev1.Container) string {
	var bin string
	switch {
	case len(c.Command) > 0:
		bin = c.Command[0]
	case len(c.Args) > 0:
		bin = c.Args[0]
	}
	switch path.Base(bin) {
	case "htq-api":
		return "api"
	case "htq-scheduler":
		return "scheduler"
	case "htq-dispatcher":
		return "dispatcher"
	}
	return ""
}

// flagValue finds --name=v, -name=v, --name v or -name v in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// htqSettings is what one HTQ container will run with, as far as the
// manifests tell: the config file (parsed) and the environment.
type htqSettings struct {
	role   string
	config map[string]any // nil: no --config
	env    map[string]corev1.EnvVar
	args   []string
}

// lookup returns a setting by key: a flag wins over its variable, which wins
// over the file. ok is false when nothing sets it; an error when the value
// comes from somewhere the check cannot read (a Secret, a field reference).
func (s *htqSettings) lookup(key, flag string) (string, bool, error) {
	if flag != "" {
		if v, ok := flagValue(s.args[1:], flag); ok {
			return v, true, nil
		}
	}
	name := "HTQ_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if e, ok := s.env[name]; ok {
		if e.ValueFrom != nil {
			return "", false, fmt.Errorf("%s comes from valueFrom: cannot check it", name)
		}
		return e.Value, true, nil
	}
	sec, k, _ := strings.Cut(key, ".")
	if m, ok := s.config[sec].(map[string]any); ok {
		if v, ok := m[k]; ok && v != nil {
			switch v := v.(type) {
			case string:
				return v, true, nil
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64), true, nil
			default:
				return fmt.Sprint(v), true, nil
			}
		}
	}
	return "", false, nil
}

// listenPort checks an HTQ listen address for use in a pod: a fixed port on
// all interfaces (probes and Services come in on the pod IP).
func listenPort(addr string) (int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
	default:
		return 0, fmt.Errorf("listen address %q: listens on %s only; probes and Services reach the pod IP (use :PORT)", addr, host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("listen address %q: want a fixed port 1-65535 (0 picks a random one no probe can know)", addr)
	}
	return int32(n), nil
}

// parseHTQDuration reads a duration as HTQ does: "25s", "1m30s", or seconds.
func parseHTQDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// parseConfig reads HTQ's YAML config and, when the README's keys are
// known, reports keys HTQ does not have (it refuses to start on them).
func parseConfig(data string, known *Known) (map[string]any, []string) {
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return nil, []string{fmt.Sprintf("config is not valid YAML: %v", err)}
	}
	var probs []string
	for sec, v := range cfg {
		m, ok := v.(map[string]any)
		if !ok {
			probs = append(probs, fmt.Sprintf("config section %q is not a map", sec))
			continue
		}
		if known == nil {
			continue
		}
		for k := range m {
			if !known.Keys[sec+"."+k] {
				probs = append(probs, fmt.Sprintf("config key %s.%s is not one of HTQ's (README configuration table)", sec, k))
			}
		}
	}
	sort.Strings(probs)
	return cfg, probs
}
