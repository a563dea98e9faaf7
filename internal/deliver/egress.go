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

// Guard decides which addresses calls may connect to. It checks the address
// actually dialled — after DNS, on every connection, redirects included — so
// a hostname that resolves to a forbidden address is refused too.
type Guard struct {
	deny     []netip.Prefix
	allow    []netip.Prefix // when set, only these
	loopback bool           // loopback allowed
}

// NewGuard builds a guard from CIDR lists.
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
	a := addr.Unmap() // ::ffff:169.254.169.254 is 169.254.169.254
	if a.IsLoopback() {
		if g.loopback {
			return nil
		}
		return fmt.Errorf("%w: %s is a loopback address (egress denies loopback)", ErrEgressDenied, a)
	}
	for _, p := range g.deny {
		if p.Contains(a) {
			return fmt.Errorf("%w: %s is in the deny list (%s)", ErrEgressDenied, a, p)
		}
	}
	if len(g.allow) > 0 {
		for _, p := range g.allow {
			if p.Contains(a) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is not in the allow list", ErrEgressDenied, a)
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
