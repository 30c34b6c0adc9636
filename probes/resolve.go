package probes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// resolvedKey holds, in a probe's context, a lookup its caller made.
type resolvedKey struct{}

type resolved struct {
	host  string
	addrs []net.IPAddr
	err   error
}

// WithResolved returns a context in which a probe uses addrs (or err), the
// answer of a lookup of host its caller made, instead of resolving host
// again. A caller that checked where a name points (the ad hoc
// allow-list) pins the answer it checked: a second lookup may answer
// otherwise (DNS rebinding).
func WithResolved(ctx context.Context, host string, addrs []net.IPAddr, err error) context.Context {
	return context.WithValue(ctx, resolvedKey{}, &resolved{host: host, addrs: addrs, err: err})
}

// LookupIPAddr is host's addresses: the ones pinned in ctx, else from DNS.
// A context pinned for another name never falls back to DNS, which would
// bypass whatever check the pinning was for.
func LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	r, ok := ctx.Value(resolvedKey{}).(*resolved)
	switch {
	case !ok:
		return net.DefaultResolver.LookupIPAddr(ctx, host)
	case r.host != host:
		return nil, fmt.Errorf("addresses were looked up for %s, not %s", r.host, host)
	}
	return r.addrs, r.err
}

// dialCheckKey holds, in a probe's context, the check every address a
// prober finds for itself must pass before it connects.
type dialCheckKey struct{}

// WithDialCheck returns a context in which probers that find their own
// addresses (the domain prober's MX hosts, its MTA-STS policy host) ask
// check before connecting to one, and skip it with check's error. The ad
// hoc allow-list uses it: an ad hoc caller names a domain, and DNS, which
// the caller may control, names the hosts.
func WithDialCheck(ctx context.Context, check func(netip.AddrPort) error) context.Context {
	return context.WithValue(ctx, dialCheckKey{}, check)
}

// CheckDial applies the context's dial check to addr; nil without one.
func CheckDial(ctx context.Context, addr netip.AddrPort) error {
	if check, ok := ctx.Value(dialCheckKey{}).(func(netip.AddrPort) error); ok && check != nil {
		return check(addr)
	}
	return nil
}
