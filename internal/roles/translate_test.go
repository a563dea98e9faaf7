package roles

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
)

// translated is everything the translations make of a configuration.
type translated struct {
	Store      store.Options
	API        api.Config
	UI         bool // API.UI is set (a handler, compared apart)
	Scheduler  schedule.Config
	Dispatcher dispatch.Config
	Deliver    deliver.Options
}

func translate(t *testing.T, cfg *config.Config) translated {
	t.Helper()
	a, err := APIConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ui := a.UI != nil
	a.UI = nil
	d, err := deliverOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return translated{
		Store: storeOptions(&cfg.Redis), API: a, UI: ui, Scheduler: schedulerConfig(&cfg.Scheduler),
		Dispatcher: dispatcherConfig(&cfg.Dispatcher), Deliver: d,
	}
}

// readElsewhere are the keys the roles read themselves rather than through
// a translation, with where.
var readElsewhere = map[string]string{
	"redis.key_prefix":             "openStore: store.New",
	"api.listen":                   "RunAPI",
	"api.metrics_listen":           "RunAPI",
	"scheduler.listen":             "RunScheduler",
	"scheduler.backlog_top_queues": "RunScheduler: metrics.NewBacklog",
	"dispatcher.listen":            "RunDispatcher",
	"debug.pprof":                  "healthServer and RunAPI",
	"log.level":                    "Setup: logging.New",
	"log.format":                   "Setup: logging.New",
}

// changed are values for the keys a generic change would not reach the
// components with (the translation drops or refuses it).
var changed = map[string]any{
	"api.time_zone":           "UTC",
	"api.token_sha256":        []string{strings.Repeat("ab", 32)},
	"egress.deny":             []string{"10.0.0.0/8"},
	"egress.allow":            []string{"10.0.0.0/8"},
	"signing.secret":          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"signing.previous_secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
}

// leaves calls fn with every key of c and its value, as config.Keys names them.
func leaves(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	for i := range v.NumField() {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := strings.TrimPrefix(prefix+"."+tag, ".")
		if f := v.Field(i); f.Kind() == reflect.Struct {
			leaves(f, key, fn)
		} else {
			fn(key, f)
		}
	}
}

// change sets v, the value of key, to something else.
func change(t *testing.T, key string, v reflect.Value) {
	t.Helper()
	if c, ok := changed[key]; ok {
		v.Set(reflect.ValueOf(c))
		return
	}
	switch {
	case v.Type() == reflect.TypeFor[config.Duration]():
		v.SetInt(v.Int() + int64(time.Second))
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		v.SetInt(v.Int() + 1)
	case v.Kind() == reflect.String:
		v.SetString(v.String() + "x")
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.Append(v, reflect.ValueOf("x")))
	default:
		t.Fatalf("%s: no way to change a %s: add one here", key, v.Type())
	}
}

// TestEveryKeyIsTranslated fails when a configuration key reaches no
// component: changing any key must change what the translations give the
// components, unless the key is listed in readElsewhere.
func TestEveryKeyIsTranslated(t *testing.T) {
	t.Parallel()
	base := func() *config.Config {
		c := config.Default()
		c.Dispatcher.ID = "d1" // else a new name each time
		return c
	}
	want := translate(t, base())
	var keys []string
	leaves(reflect.ValueOf(base()).Elem(), "", func(key string, _ reflect.Value) {
		keys = append(keys, key)
		cfg := base()
		leaves(reflect.ValueOf(cfg).Elem(), "", func(k string, v reflect.Value) {
			if k == key {
				change(t, key, v)
			}
		})
		got := translate(t, cfg)
		_, elsewhere := readElsewhere[key]
		switch same := reflect.DeepEqual(got, want); {
		case same && !elsewhere:
			t.Errorf("%s reaches no component: translate it in translate.go (or list it in readElsewhere with where it is read)", key)
		case !same && elsewhere:
			t.Errorf("%s is translated: take it out of readElsewhere", key)
		}
	})
	if !slices.Equal(keys, config.Keys()) {
		t.Fatalf("the test's keys differ from config.Keys():\n%q\n%q", keys, config.Keys())
	}
	for k := range readElsewhere {
		if !slices.Contains(keys, k) {
			t.Errorf("readElsewhere lists %s, which is not a key", k)
		}
	}
}

// TestDefaultsSatisfyTheComponents: the defaults live in config alone, and
// every component accepts them as translated.
func TestDefaultsSatisfyTheComponents(t *testing.T) {
	t.Parallel()
	tr := translate(t, config.Default())
	if err := tr.API.Validate(); err != nil {
		t.Errorf("api: %v", err)
	}
	if err := tr.Scheduler.Validate(); err != nil {
		t.Errorf("scheduler: %v", err)
	}
	if err := tr.Dispatcher.Validate(); err != nil {
		t.Errorf("dispatcher: %v", err)
	}
	if _, err := deliver.New(tr.Deliver); err != nil {
		t.Errorf("deliver: %v", err)
	}
	if tr.Dispatcher.ID == "" {
		t.Error("the dispatcher got no name")
	}
}
