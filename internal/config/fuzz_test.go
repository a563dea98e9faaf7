package config_test

import (
	"errors"
	"testing"

	"github.com/htq/htq/internal/config"
)

func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"", "# comment\n", fullYAML, legacyExample, "{}", "[]", "null", "~", "redis: ~\n",
		"redis:\n  url: x\n", "dispatcher:\n  lease_ttl: 2s\n", "dispatcher:\n  lease_ttl: -1\n",
		"api:\n  tokens: [a]\n", "api:\n  listen: ':99999'\n", "log:\n  level: loud\n",
		"queues:\n  max_attempts: 0\n", "redis: &a\n  url: *a\n", "a: &a [*a]\n",
		"{\"api_port\": \"5999\", \"redis_port\": 1}", "{\"api_port\": 1e10}", "--- \n...\n---\nlog: {level: debug}\n",
		"redis:\n  key_prefix: !!binary aGVsbG8=\n", "api:\n  max_batch: 0x10\n", "api:\n  max_batch: 1_000\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		path := writeFile(t, "htq.yaml", content)
		l, err := config.Load(path, noEnv)
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Load error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("Load returned a configuration that fails Validate: %v", err)
		}
		q := l.QueueDefaults()
		if err := q.Validate(); err != nil {
			t.Fatalf("Load returned queue defaults that fail Validate: %v", err)
		}
		_ = l.CheckAuth()
		_ = l.BearerHashes()
	})
}
