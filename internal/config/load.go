package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that sets a key: the key
// "dispatcher.lease_ttl" is HTQ_DISPATCHER_LEASE_TTL. Lists are
// comma-separated.
const EnvPrefix = "HTQ_"

// Loaded is a configuration with what loading it noticed.
type Loaded struct {
	*Config
	Legacy   bool     // the file was a legacy config.json
	Warnings []string // keys ignored, for the log
}

// Load reads path (YAML, or a legacy config.json; empty: defaults only),
// applies the environment (lookup is os.LookupEnv outside tests), and
// validates the result.
func Load(path string, lookup func(string) (string, bool)) (*Loaded, error) {
	l := &Loaded{Config: Default()}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrInvalid, path, err)
		}
		if isLegacy(path, b) {
			l.Legacy, l.LegacyFile = true, true
			warn, err := applyLegacy(l.Config, b)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
			}
			l.Warnings = warn
		} else if err := decodeYAML(l.Config, b); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
		}
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if err := applyEnv(l.Config, lookup); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

func isLegacy(path string, b []byte) bool {
	return strings.EqualFold(filepath.Ext(path), ".json") || bytes.HasPrefix(bytes.TrimSpace(b), []byte("{"))
}

func decodeYAML(c *Config, b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// io.EOF: a file of nothing but comments, such as a commented-out template.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// legacyFile is the original HTQ's config.json.
type legacyFile struct {
	AppKey         *string          `json:"app_key"`
	AppToken       *string          `json:"app_token"`
	APIPort        *json.RawMessage `json:"api_port"`
	RedisHost      *string          `json:"redis_host"`
	RedisPort      *json.RawMessage `json:"redis_port"`
	RedisKeyPrefix *string          `json:"redis_key_prefix"`
	RedisPassword  *string          `json:"redis_password"`
	RedisDB        *json.RawMessage `json:"redis_db"`
}

var legacyKeys = map[string]bool{
	"app_key": true, "app_token": true, "api_port": true, "redis_host": true,
	"redis_port": true, "redis_key_prefix": true, "redis_password": true, "redis_db": true,
}

// applyLegacy maps the legacy keys onto c. The legacy app_token is also
// accepted as a bearer token, so REST clients can use it.
func applyLegacy(c *Config, b []byte) ([]string, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	var f legacyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("legacy config: %w", err)
	}
	var warn []string
	for k := range all {
		if !legacyKeys[k] {
			warn = append(warn, fmt.Sprintf("legacy config key %q is not used by HTQ; ignored", k))
		}
	}
	sort.Strings(warn)
	if f.AppKey != nil {
		c.API.LegacyAppKey = *f.AppKey
	}
	if f.AppToken != nil {
		c.API.LegacyAppToken = *f.AppToken
	}
	if f.APIPort != nil {
		p, err := jsonPort(*f.APIPort)
		if err != nil {
			return nil, fmt.Errorf("api_port: %w", err)
		}
		c.API.Listen = ":" + strconv.Itoa(p)
	}
	host, port := "127.0.0.1", 6379
	if f.RedisHost != nil && *f.RedisHost != "" {
		host = *f.RedisHost
	}
	if f.RedisPort != nil {
		p, err := jsonPort(*f.RedisPort)
		if err != nil {
			return nil, fmt.Errorf("redis_port: %w", err)
		}
		port = p
	}
	db := 0
	if f.RedisDB != nil {
		n, err := jsonInt(*f.RedisDB)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("redis_db: want a number 0 or more")
		}
		db = n
	}
	c.Redis.URL = fmt.Sprintf("redis://%s/%d", joinHostPort(host, port), db)
	if f.RedisPassword != nil {
		c.Redis.Password = *f.RedisPassword
	}
	if f.RedisKeyPrefix != nil {
		c.Redis.KeyPrefix = SeparatePrefix(*f.RedisKeyPrefix)
	}
	return warn, nil
}

// SeparatePrefix returns HTQ's key prefix for a Redis the original shares
// under its redis_key_prefix p. The original names its keys p + anything
// (p + queue name, for any queue name a client posts), so no HTQ key may
// start with p: HTQ's prefix is p with its last character changed ("htq_"
// becomes "htq:", "app:" becomes "app_"), which differs from p before p
// ends, whatever follows. An empty p leaves nothing to differ from: HTQ's
// default prefix is used (an original queue named "htq:..." could then
// still collide; give the original a prefix).
func SeparatePrefix(p string) string {
	if p == "" {
		return DefaultKeyPrefix
	}
	_, size := utf8.DecodeLastRuneInString(p)
	last := p[len(p)-size:]
	if last == ":" {
		return p[:len(p)-size] + "_"
	}
	return p[:len(p)-size] + ":"
}

func joinHostPort(h string, p int) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(p)
}

// jsonPort accepts 5999 or "5999", as hand-written config files have both.
func jsonPort(raw json.RawMessage) (int, error) {
	n, err := jsonInt(raw)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want a port number 1 to 65535, got %s", string(raw))
	}
	return n, nil
}

func jsonInt(raw json.RawMessage) (int, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// applyEnv sets every key that has an HTQ_ variable.
func applyEnv(c *Config, lookup func(string) (string, bool)) error {
	return walk(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) error {
		name := EnvName(key)
		s, ok := lookup(name)
		if !ok {
			return nil
		}
		if err := setValue(v, s); err != nil {
			return fmt.Errorf("%s (%s): %w", key, name, err)
		}
		return nil
	})
}

// EnvName returns the environment variable of a key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// walk calls fn for every leaf key of a config struct.
func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
			if err := walk(fv, key, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(key, fv); err != nil {
			return err
		}
	}
	return nil
}

func setValue(v reflect.Value, s string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Keys lists every configuration key with its environment variable, for
// the documentation and for tests that keep it complete.
func Keys() []string {
	var keys []string
	_ = walk(reflect.ValueOf(Default()).Elem(), "", func(key string, _ reflect.Value) error {
		keys = append(keys, key)
		return nil
	})
	return keys
}
