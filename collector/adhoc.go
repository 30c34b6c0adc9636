package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// AdhocRule lets ad hoc probes reach one network, on the listed ports or,
// without any, on every port.
type AdhocRule struct {
	Network netip.Prefix
	Ports   []PortRange
}

// PortRange is First to Last, both included.
type PortRange struct{ First, Last uint16 }

// AdhocAllowList is the repeatable --probe.adhoc-allow=CIDR[:PORTS] flag:
// the networks and ports that ad hoc /probe targets may be in. Empty, it
// allows loopback addresses only.
type AdhocAllowList []AdhocRule

// loopbackOnly is what an empty allow-list allows: the exporter's own
// host, which whoever enables ad hoc probing already trusts with it.
var loopbackOnly = AdhocAllowList{
	{Network: netip.MustParsePrefix("127.0.0.0/8")},
	{Network: netip.MustParsePrefix("::1/128")},
}

// Set parses and adds one rule (kingpin's flag.Value).
func (l *AdhocAllowList) Set(value string) error {
	r, err := parseAdhocRule(value)
	if err != nil {
		return fmt.Errorf("--probe.adhoc-allow: %q is not CIDR[:PORTS]: %w", value, err)
	}
	*l = append(*l, r)
	return nil
}

// IsCumulative makes the flag repeatable.
func (l *AdhocAllowList) IsCumulative() bool { return true }

func (l *AdhocAllowList) String() string {
	s := make([]string, len(*l))
	for i, r := range *l {
		s[i] = r.String()
	}
	return strings.Join(s, " ")
}

func (r AdhocRule) String() string {
	if len(r.Ports) == 0 {
		return r.Network.String()
	}
	ports := make([]string, len(r.Ports))
	for i, p := range r.Ports {
		ports[i] = strconv.Itoa(int(p.First))
		if p.Last != p.First {
			ports[i] += "-" + strconv.Itoa(int(p.Last))
		}
	}
	return r.Network.String() + ":" + strings.Join(ports, ",")
}

// parseAdhocRule reads CIDR[:PORTS]. The prefix length is required: it
// tells an IPv6 network's colons from the one before the ports.
func parseAdhocRule(value string) (AdhocRule, error) {
	slash := strings.Index(value, "/")
	if slash < 0 {
		return AdhocRule{}, fmt.Errorf("the network needs a prefix length (%s/32 for one address)", value)
	}
	network, ports, hasPorts := strings.Cut(value[slash:], ":")
	prefix, err := netip.ParsePrefix(value[:slash] + network)
	if err != nil {
		return AdhocRule{}, fmt.Errorf("invalid network %q (want an address and a prefix length: 192.0.2.0/24, 2001:db8::/32)", value[:slash]+network)
	}
	r := AdhocRule{Network: prefix.Masked()}
	if !hasPorts {
		return r, nil
	}
	if ports == "" {
		return AdhocRule{}, errors.New("empty port list")
	}
	for _, p := range strings.Split(ports, ",") {
		first, last, isRange := strings.Cut(p, "-")
		if !isRange {
			last = first
		}
		lo, err := parsePort(first)
		if err != nil {
			return AdhocRule{}, err
		}
		hi, err := parsePort(last)
		if err != nil {
			return AdhocRule{}, err
		}
		if lo > hi {
			return AdhocRule{}, fmt.Errorf("invalid port range %q", p)
		}
		r.Ports = append(r.Ports, PortRange{lo, hi})
	}
	return r, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid port %q (want 1-65535)", s)
	}
	return uint16(n), nil
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// check says why the allow-list refuses addr:port, or nil; shown is what
// the message calls the address. IPv4 addresses written as IPv6
// (::ffff:192.0.2.1) are checked as IPv4.
func (l AdhocAllowList) check(addr netip.Addr, port uint16, shown string) error {
	rules, hint := l, ""
	if len(rules) == 0 {
		rules, hint = loopbackOnly, " (without --probe.adhoc-allow, only loopback addresses are allowed)"
	}
	addr = addr.Unmap()
	inNetwork := false
	for _, r := range rules {
		if !r.Network.Contains(addr) {
			continue
		}
		inNetwork = true
		if r.allowsPort(port) {
			return nil
		}
	}
	if inNetwork {
		return fmt.Errorf("port %d of %s is not allowed by --probe.adhoc-allow%s", port, shown, hint)
	}
	return fmt.Errorf("%s is not in a network that --probe.adhoc-allow allows%s", shown, hint)
}

func (r AdhocRule) allowsPort(port uint16) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, p := range r.Ports {
		if p.First <= port && port <= p.Last {
			return true
		}
	}
	return false
}

// dialCheck is the allow-list as a probes.WithDialCheck check, for
// probers that find their own addresses. Like a refused name, a refused
// dial does not say where it pointed: the domain's DNS, answered by the
// exporter's resolver, may name internal hosts.
func (l AdhocAllowList) dialCheck(addr netip.AddrPort) error {
	if err := l.check(addr.Addr(), addr.Port(), "an address the domain's DNS names"); err != nil {
		return fmt.Errorf("ad hoc probe: %w", err)
	}
	return nil
}
