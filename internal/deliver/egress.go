package deliver

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// DefaultDeny is the egress deny list: "this network", link-local (which
// holds most clouds' metadata service, 169.254.169.254) and the metadata
// addresses outside it (AWS over IPv6, Alibaba Cloud, Oracle Cloud). Private
// ranges stay allowed: self-hosted targets are usually internal.
var DefaultDeny = []string{
	"0.0.0.0/8",
	"169.254.0.0/16",
	"::/128",
	"fe80::/10",
	"fd00:ec2::254/128",
	"100.100.100.200/32",
	"192.0.0.192/32",
}

// nat64 is the NAT64 well-known prefix (RFC 6052): its addresses carry an
// IPv4 address in their last 32 bits, which a NAT64 gateway connects to.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Guard decides which addresses calls may connect to. It checks the address
// actually dialled — after DNS, on every connection, redirects included — so
// a hostname that resolves to a forbidden address is refused too.
//
// Rules, in order: an address in the deny list is refused, whatever else
// applies; then a loopback address is allowed (or refused when loopback is
// denied) without consulting the allow list; then, when an allow list is
// set, only addresses in it are allowed. An address that carries an IPv4
// address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d) is judged as
// that IPv4 address; a NAT64 address is also refused when its IPv6 form is in
// the deny list, and allowed when its IPv6 form is in the allow list.
type Guard struct {
	deny     []netip.Prefix
	allow    []netip.Prefix // when set, only these (and loopback, unless denied)
	loopback bool           // loopback allowed
}

// NewGuard builds a guard from CIDR lists. Entries may be single addresses
// (a zone is ignored); IPv4-mapped entries (::ffff:10.0.0.0/104) mean their
// IPv4 form.
func NewGuard(deny, allow []string, denyLoopback bool) (*Guard, error) {
	g := &Guard{loopback: !denyLoopback}
	parse := func(list []string, dst *[]netip.Prefix) error {
		for _, c := range list {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				a, aerr := netip.ParseAddr(c)
				if aerr != nil {
					return fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address", c)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				// addresses are unmapped before the check: match their form
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			*dst = append(*dst, p.Masked())
		}
		return nil
	}
	if err := parse(deny, &g.deny); err != nil {
		return nil, fmt.Errorf("egress deny list: %w", err)
	}
	if err := parse(allow, &g.allow); err != nil {
		return nil, fmt.Errorf("egress allow list: %w", err)
	}
	return g, nil
}

// Check returns nil when addr may be dialled, else an error wrapping
// ErrEgressDenied that names the address and the rule.
func (g *Guard) Check(addr netip.Addr) error {
	// A zone does not change where a connection goes, but no prefix
	// contains a zoned address: judge the address without it.
	// ::ffff:169.254.169.254 is 169.254.169.254.
	a := addr.WithZone("").Unmap()
	var via netip.Addr // the NAT64 address a was taken from, if any
	if nat64.Contains(a) {
		b := a.As16()
		via, a = a, netip.AddrFrom4([4]byte(b[12:]))
	}
	name := func() string { // for the error only: an allowed dial builds no string
		if via.IsValid() {
			return fmt.Sprintf("%s (NAT64 for %s)", via, a)
		}
		return a.String()
	}
	in := func(list []netip.Prefix) (netip.Prefix, bool) {
		for _, p := range list {
			if p.Contains(a) || (via.IsValid() && p.Contains(via)) {
				return p, true
			}
		}
		return netip.Prefix{}, false
	}
	if p, ok := in(g.deny); ok {
		return fmt.Errorf("%w: %s is in the deny list (%s)", ErrEgressDenied, name(), p)
	}
	if a.IsLoopback() {
		if g.loopback {
			return nil
		}
		return fmt.Errorf("%w: %s is a loopback address (egress denies loopback)", ErrEgressDenied, name())
	}
	if !g.loopback && a.IsUnspecified() {
		// connecting to 0.0.0.0 or :: reaches this host
		return fmt.Errorf("%w: %s is the unspecified address, which reaches this host (egress denies loopback)", ErrEgressDenied, name())
	}
	if len(g.allow) > 0 {
		if _, ok := in(g.allow); ok {
			return nil
		}
		return fmt.Errorf("%w: %s is not in the allow list", ErrEgressDenied, name())
	}
	return nil
}

// control is a net.Dialer Control function: it runs after DNS resolution,
// before each connection, with the address being dialled.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrEgressDenied, address, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrEgressDenied, host)
	}
	return g.Check(a)
}
