package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// DialTCP connects to address (host:port) from source, a module's
// source_ip_address, or from the address the system picks when source is
// "". The errors a source causes name it: one of the other family than
// the target's, or one this host does not have (a failover address that
// moved, a typo). They are not timeouts, so probers report them as
// connect failures.
func DialTCP(ctx context.Context, address, source string) (net.Conn, error) {
	var d net.Dialer
	if source != "" {
		ip := net.ParseIP(source)
		if ip == nil {
			return nil, fmt.Errorf("source_ip_address %q is not an IP address", source)
		}
		if host, _, err := net.SplitHostPort(address); err == nil {
			if target := net.ParseIP(host); target != nil && FamilyOf(target) != FamilyOf(ip) {
				return nil, fmt.Errorf("source_ip_address %s is an %s address and cannot reach %s, an %s address",
					ip, familyName[FamilyOf(ip)], target, familyName[FamilyOf(target)])
			}
		}
		// With a local address set, the dialer also keeps only the
		// addresses of its family when address is a name.
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err == nil || source == "" {
		return conn, err
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("source_ip_address %s is not an address of this host: %w", source, err)
	case errors.As(err, &ne) && ne.Timeout(), ctx.Err() != nil:
		return nil, err
	}
	return nil, fmt.Errorf("from source_ip_address %s: %w", source, err)
}
