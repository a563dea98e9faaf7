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
		{strict, "169.254.169.254", false}, // deny wins, allow list or not
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

// mustGuard builds a guard or fails the test.
func mustGuard(t *testing.T, deny, allow []string, denyLoopback bool) *deliver.Guard {
	t.Helper()
	g, err := deliver.NewGuard(deny, allow, denyLoopback)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The deny list is checked first and always wins: allowing loopback (the
// default) only lets loopback past the allow list, never past a deny entry.
func TestGuardDenyWinsOverLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		g       *deliver.Guard
		addr    string
		allowed bool
		rule    string // in the error when denied
	}{
		{"loopback denied by CIDR", mustGuard(t, []string{"127.0.0.0/8"}, nil, false), "127.0.0.1", false, "deny list (127.0.0.0/8)"},
		{"loopback address denied exactly", mustGuard(t, []string{"127.0.0.1"}, nil, false), "127.0.0.1", false, "deny list (127.0.0.1/32)"},
		{"other loopback addresses stay allowed", mustGuard(t, []string{"127.0.0.1"}, nil, false), "127.0.0.2", true, ""},
		{"IPv6 loopback denied", mustGuard(t, []string{"::1"}, nil, false), "::1", false, "deny list (::1/128)"},
		{"mapped loopback denied", mustGuard(t, []string{"127.0.0.0/8"}, nil, false), "::ffff:127.0.0.1", false, "deny list (127.0.0.0/8)"},
		{"deny everything", mustGuard(t, []string{"0.0.0.0/0", "::/0"}, nil, false), "127.0.0.1", false, "deny list (0.0.0.0/0)"},
		{"deny wins with an allow list too", mustGuard(t, []string{"127.0.0.0/8"}, []string{"127.0.0.0/8"}, false), "127.0.0.1", false, "deny list (127.0.0.0/8)"},
		{"loopback skips the allow list", mustGuard(t, nil, []string{"10.0.0.0/8"}, false), "127.0.0.1", true, ""},
		{"unless loopback is denied", mustGuard(t, nil, []string{"10.0.0.0/8"}, true), "127.0.0.1", false, "loopback"},
		{"deny_loopback is not undone by the allow list", mustGuard(t, nil, []string{"127.0.0.0/8"}, true), "127.0.0.1", false, "loopback"},
		// without the default deny list, 0.0.0.0 and :: (which reach this host)
		// are refused with loopback
		{"0.0.0.0 with loopback denied", mustGuard(t, nil, nil, true), "0.0.0.0", false, "unspecified"},
		{":: with loopback denied", mustGuard(t, nil, nil, true), "::", false, "unspecified"},
		{"NAT64 0.0.0.0 with loopback denied", mustGuard(t, nil, nil, true), "64:ff9b::", false, "unspecified"},
		{"0.0.0.0 with loopback allowed", mustGuard(t, nil, nil, false), "0.0.0.0", true, ""},
		{"a zoned deny entry", mustGuard(t, []string{"fe80::1%eth0"}, nil, false), "fe80::1%eth1", false, "deny list (fe80::1/128)"},
	} {
		err := tc.g.Check(netip.MustParseAddr(tc.addr))
		if tc.allowed != (err == nil) {
			t.Errorf("%s: Check(%s) = %v, want allowed=%v", tc.name, tc.addr, err, tc.allowed)
			continue
		}
		if err != nil && (!errors.Is(err, deliver.ErrEgressDenied) || !strings.Contains(err.Error(), tc.rule)) {
			t.Errorf("%s: Check(%s) = %v, want ErrEgressDenied naming %q", tc.name, tc.addr, err, tc.rule)
		}
	}
}

// Addresses that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64
// 64:ff9b::a.b.c.d) are judged as that IPv4 address: through a NAT64
// gateway, 64:ff9b::a9fe:a9fe reaches 169.254.169.254.
func TestGuardJudgesEmbeddedIPv4(t *testing.T) {
	t.Parallel()
	def := mustGuard(t, deliver.DefaultDeny, nil, false)
	noLoop := mustGuard(t, deliver.DefaultDeny, nil, true)
	allow10 := mustGuard(t, deliver.DefaultDeny, []string{"10.0.0.0/8"}, true)
	denyPrivate := mustGuard(t, []string{"10.0.0.0/8"}, nil, false)
	denyLoop := mustGuard(t, []string{"127.0.0.0/8"}, nil, false)
	denyNAT64 := mustGuard(t, []string{"64:ff9b::/96"}, nil, false)
	denyMapped := mustGuard(t, []string{"::ffff:10.0.0.0/104"}, nil, false)
	for _, tc := range []struct {
		g       *deliver.Guard
		addr    string
		allowed bool
	}{
		// NAT64 (RFC 6052 well-known prefix)
		{def, "64:ff9b::a9fe:a9fe", false}, // 169.254.169.254, metadata
		{def, "64:ff9b::169.254.169.254", false},
		{def, "64:ff9b::a9fe:1", false},    // 169.254.0.1, link-local
		{def, "64:ff9b::", false},          // 0.0.0.0
		{def, "64:ff9b::6464:64c8", false}, // 100.100.100.200
		{def, "64:ff9b::c000:c0", false},   // 192.0.0.192
		{def, "64:ff9b::5db8:d822", true},  // 93.184.216.34
		{def, "64:ff9b::7f00:1", true},     // 127.0.0.1: loopback allowed by default
		{noLoop, "64:ff9b::7f00:1", false}, // 127.0.0.1 with loopback denied
		{noLoop, "64:ff9b::7f01:203", false},
		{denyLoop, "64:ff9b::7f00:1", false}, // a deny entry wins over loopback here too
		{denyPrivate, "64:ff9b::a01:203", false},
		{denyPrivate, "64:ff9b::c0a8:101", true}, // 192.168.1.1
		{allow10, "64:ff9b::a09:909", true},      // 10.9.9.9 is in the allow list
		{allow10, "64:ff9b::c0a8:101", false},    // 192.168.1.1 is not
		{denyNAT64, "64:ff9b::5db8:d822", false}, // a deny entry for the IPv6 form still applies
		// outside the /96 nothing is unwrapped
		{def, "64:ff9b:0:0:0:1:a9fe:a9fe", true},
		{def, "2001:db8::a9fe:a9fe", true},
		// IPv4-mapped
		{def, "::ffff:169.254.169.254", false},
		{def, "::ffff:a9fe:a9fe", false},
		{def, "::ffff:0.0.0.0", false},
		{noLoop, "::ffff:127.0.0.1", false},
		{denyLoop, "::ffff:127.0.0.1", false},
		{allow10, "::ffff:10.1.1.1", true},
		{allow10, "::ffff:192.168.1.1", false},
		{denyPrivate, "::ffff:10.1.1.1", false},
		{denyMapped, "::ffff:10.1.1.1", false}, // a deny entry written in the mapped form
		{denyMapped, "10.1.1.1", false},
		{denyMapped, "64:ff9b::a01:101", false},
		{denyMapped, "192.168.1.1", true},
		// zoned addresses are judged without their zone
		{def, "fe80::1%eth0", false},
		{def, "::ffff:169.254.169.254%eth0", false},
		{noLoop, "::1%lo", false},
	} {
		err := tc.g.Check(netip.MustParseAddr(tc.addr))
		if tc.allowed != (err == nil) {
			t.Errorf("Check(%s) = %v, want allowed=%v", tc.addr, err, tc.allowed)
		}
		if err != nil && !errors.Is(err, deliver.ErrEgressDenied) {
			t.Errorf("Check(%s) error %v does not wrap ErrEgressDenied", tc.addr, err)
		}
	}
	// the error names both forms, so a refusal in the history is explained
	err := def.Check(netip.MustParseAddr("64:ff9b::a9fe:a9fe"))
	if err == nil || !strings.Contains(err.Error(), "64:ff9b::a9fe:a9fe") || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Fatalf("NAT64 refusal %v does not name the address and the IPv4 address it carries", err)
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
		{"NAT64 metadata address", def, "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"},
		{"zoned link-local address", def, "http://[fe80::1%25lo]/"},
		{"loopback in the deny list, loopback allowed", mustGuard(t, []string{"127.0.0.0/8"}, nil, false), srv.URL},
	} {
		c := newClient(t, deliver.Options{Guard: tc.guard, DialTimeout: time.Second})
		r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: &task.Spec{Method: "GET", URL: tc.url}, Timeout: 3 * time.Second})
		if r.Kind != deliver.ErrEgress || !errors.Is(r.Err, deliver.ErrEgressDenied) {
			t.Errorf("%s: kind %v, err %v; want the egress error", tc.name, r.Kind, r.Err)
		}
	}
	// the same target is reachable when loopback is allowed
	c := newClient(t, deliver.Options{Guard: def})
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
	c := newClient(t, deliver.Options{Guard: g})
	r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: &task.Spec{Method: "GET", URL: srv.URL}, Timeout: 3 * time.Second})
	if r.Kind != deliver.ErrEgress {
		t.Fatalf("redirect to metadata: kind %v, err %v", r.Kind, r.Err)
	}
}
