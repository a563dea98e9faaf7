package deliver_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/task"
)

func TestGuardRules(t *testing.T) {
	t.Parallel()
	def, err := deliver.NewGuard(deliver.DefaultDeny, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := deliver.NewGuard(deliver.DefaultDeny, []string{"10.0.0.0/8"}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		g       *deliver.Guard
		addr    string
		allowed bool
	}{
		{def, "169.254.169.254", false},
		{def, "::ffff:169.254.169.254", false}, // IPv4-mapped form
		{def, "169.254.10.1", false},
		{def, "fe80::1", false},
		{def, "fd00:ec2::254", false},
		{def, "100.100.100.200", false},
		{def, "0.0.0.0", false},
		{def, "::", false},
		{def, "127.0.0.1", true}, // loopback allowed by default
		{def, "::1", true},
		{def, "10.1.2.3", true}, // private ranges allowed
		{def, "192.168.1.1", true},
		{def, "93.184.216.34", true},
		{strict, "127.0.0.1", false}, // loopback denied by config
		{strict, "::ffff:127.0.0.1", false},
		{strict, "10.9.9.9", true}, // in the allow list
		{strict, "192.168.1.1", false},
		{strict, "169.254.169.254", false}, // deny wins over nothing
	} {
		err := tc.g.Check(netip.MustParseAddr(tc.addr))
		if tc.allowed != (err == nil) {
			t.Errorf("Check(%s) = %v, want allowed=%v", tc.addr, err, tc.allowed)
		}
		if err != nil && !errors.Is(err, deliver.ErrEgressDenied) {
			t.Errorf("Check(%s) error %v does not wrap ErrEgressDenied", tc.addr, err)
		}
	}
	if _, err := deliver.NewGuard([]string{"not-a-cidr"}, nil, false); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}

func TestDeniedTargetsFailWithTheEgressError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	noLoop, err := deliver.NewGuard(deliver.DefaultDeny, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	def, err := deliver.NewGuard(deliver.DefaultDeny, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		guard *deliver.Guard
		url   string
	}{
		{"metadata address", def, "http://169.254.169.254/latest/meta-data/"},
		{"IPv4-mapped metadata address", def, "http://[::ffff:169.254.169.254]/"},
		{"hostname resolving to a denied address", noLoop, "http://localhost" + port + "/"},
		{"loopback literal", noLoop, srv.URL},
	} {
		c := deliver.New(deliver.Options{Guard: tc.guard, DialTimeout: time.Second})
		r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: &task.Spec{Method: "GET", URL: tc.url}, Timeout: 3 * time.Second})
		if r.Kind != deliver.ErrEgress || !errors.Is(r.Err, deliver.ErrEgressDenied) {
			t.Errorf("%s: kind %v, err %v; want the egress error", tc.name, r.Kind, r.Err)
		}
	}
	// the same target is reachable when loopback is allowed
	c := deliver.New(deliver.Options{Guard: def})
	if r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: &task.Spec{Method: "GET", URL: srv.URL}, Timeout: 3 * time.Second}); r.Err != nil || r.Status != 200 {
		t.Fatalf("allowed call: %d %v", r.Status, r.Err)
	}
}

func TestRedirectToDeniedAddressIsRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer srv.Close()
	g, err := deliver.NewGuard(deliver.DefaultDeny, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c := deliver.New(deliver.Options{Guard: g})
	r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: &task.Spec{Method: "GET", URL: srv.URL}, Timeout: 3 * time.Second})
	if r.Kind != deliver.ErrEgress {
		t.Fatalf("redirect to metadata: kind %v, err %v", r.Kind, r.Err)
	}
}
