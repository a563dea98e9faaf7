package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// contextEntry is one named API and token of the config file.
type contextEntry struct {
	Name  string `yaml:"name"`
	URL   string `yaml:"url"`
	Token string `yaml:"token,omitempty"`
}

// config is ~/.config/htq/config.yaml (or $XDG_CONFIG_HOME/htq/config.yaml).
type config struct {
	Current  string         `yaml:"current-context,omitempty"`
	Contexts []contextEntry `yaml:"contexts"`
}

func (c *config) find(name string) *contextEntry {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i]
		}
	}
	return nil
}

// configPath is where the config file lives: $XDG_CONFIG_HOME/htq, else
// $HOME/.config/htq.
func configPath(getenv func(string) string) (string, error) {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("XDG_CONFIG_HOME %q is not an absolute path", d)
		}
		return filepath.Join(d, "htq", "config.yaml"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "htq", "config.yaml"), nil
	}
	return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set: no place for the config file")
}

// loadConfig reads the config file; a missing one is empty.
func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path) //nolint:gosec // the user's own config file
	if errors.Is(err, fs.ErrNotExist) {
		return &config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// saveConfig writes the config file with mode 0600 (it holds tokens), in
// a directory of mode 0700, replacing it atomically.
func saveConfig(path string, c *config) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
