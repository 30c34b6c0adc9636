package probes

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SplitTarget splits a target address into host and port. A bare host
// takes the module's default port: 24 for LMTP, 465 for implicit TLS, else
// 25. The config loader uses it too, so that an address the probe cannot
// use is a configuration error, not a failing probe.
//
// A domain module's target is a mail domain, not a host: it has no port
// (the MX sessions use domain.mx_port), and port is "".
func SplitTarget(target string, m *Module) (host, port string, err error) {
	if m.Prober == ProberDomain {
		d := strings.TrimSuffix(target, ".")
		if !isDNSName(d) || !strings.Contains(d, ".") || strings.Trim(d[strings.LastIndexByte(d, '.')+1:], "0123456789") == "" {
			return "", "", fmt.Errorf("target %q is not a mail domain (a domain name such as example.com, without port)", target)
		}
		return d, "", nil
	}
	if strings.Contains(target, "/") || strings.ContainsAny(target, " \t\r\n") {
		return "", "", fmt.Errorf("target %q is not host:port (no scheme, path or spaces)", target)
	}
	host, port, err = net.SplitHostPort(target)
	if err != nil {
		if strings.Count(target, ":") == 1 && !strings.HasPrefix(target, "[") {
			// "host:" or "host:port:..." shapes SplitHostPort rejects.
			return "", "", fmt.Errorf("target %q is not host:port", target)
		}
		port = "25"
		if strings.HasPrefix(target, "[") != strings.HasSuffix(target, "]") {
			return "", "", fmt.Errorf("target %q has unbalanced brackets", target)
		}
		host = strings.TrimSuffix(strings.TrimPrefix(target, "["), "]")
		// With colons and no port, only an IPv6 literal makes sense:
		// "host:25:26" is a typo, not a host.
		if strings.Contains(host, ":") && net.ParseIP(host) == nil {
			return "", "", fmt.Errorf("target %q is not host:port", target)
		}
		switch {
		case m.Prober == ProberLMTP:
			port = "24"
		case m.SMTP.TLS == TLSImplicit:
			port = "465"
		}
	}
	if host == "" {
		return "", "", fmt.Errorf("target %q has no host", target)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", "", fmt.Errorf("target %q has an invalid port %q", target, port)
	}
	return host, port, nil
}
