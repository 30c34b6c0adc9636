package probes

import (
	"context"
	"fmt"
	"net"
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
