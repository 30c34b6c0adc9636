package probes

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ProberDomain checks a mail domain's posture: every MX and address, and
// the DNS records and policies that senders read (issue 10).
const ProberDomain = "domain"

// ClassDomain is the concurrency class of domain runs: many lookups and
// one short dialog per MX address, seconds to tens of seconds, so kept
// apart from both the one-dialog probes and the long delivery waits.
const ClassDomain = "domain"

// Defaults of the domain prober's settings.
const (
	DefaultMXPort       = 25
	DefaultMaxMX        = 10
	DefaultMaxAddresses = 4
	DefaultDNSTimeout   = 5 * time.Second
	// DefaultDomainTimeout covers the lookups and, in parallel, the MX
	// dialogs (each bounded by the MX module's own timeout).
	DefaultDomainTimeout = 60 * time.Second
)

// DomainModule holds the domain prober's settings. The target is the mail
// domain itself (example.com), not a host.
type DomainModule struct {
	// MXModule names an smtp module whose smtp settings (tls, ehlo,
	// tls_config, timeout) the MX sessions use; unset, the domain module's
	// own smtp keys apply. Its sessions greet, STARTTLS and QUIT: the named
	// module must not authenticate or send.
	MXModule string `yaml:"mx_module,omitempty" json:"mx_module,omitempty"`
	// MX is the module the MX sessions run, filled at load from MXModule
	// or the domain module's own smtp keys.
	MX *Module `yaml:"-" json:"-"`
	// MXPort is where the MX sessions connect (25; another port for tests
	// or setups that publish MX on other ports).
	MXPort int `yaml:"mx_port,omitempty" json:"mx_port,omitempty"`
	// MaxMX and MaxAddresses cap the MX hosts walked (by preference) and
	// the addresses probed per host and family: they bound the series of
	// a domain whatever its DNS says.
	MaxMX        int `yaml:"max_mx,omitempty" json:"max_mx,omitempty"`
	MaxAddresses int `yaml:"max_addresses,omitempty" json:"max_addresses,omitempty"`
	// IPProtocols are the address families probed on every MX.
	IPProtocols []string `yaml:"ip_protocols,omitempty" json:"ip_protocols,omitempty"`
	// AddressLabels adds each MX address as a label value; off, an MX is
	// told by host and family only (a domain's addresses change without
	// notice, and every change would mint series).
	AddressLabels bool `yaml:"address_labels,omitempty" json:"address_labels,omitempty"`
	// DNSServer is the resolver asked, host:port; unset, the system's
	// (/etc/resolv.conf). DANE needs a validating one (its AD bit).
	DNSServer  string        `yaml:"dns_server,omitempty" json:"dns_server,omitempty"`
	DNSTimeout time.Duration `yaml:"dns_timeout,omitempty" json:"dns_timeout,omitempty"`
	// SendingIPs are evaluated against the domain's SPF record and checked
	// against the blocklists.
	SendingIPs    []string `yaml:"sending_ips,omitempty" json:"sending_ips,omitempty"`
	DKIMSelectors []string `yaml:"dkim_selectors,omitempty" json:"dkim_selectors,omitempty"`
	// DNSBLZones are checked for every MX address and sending IP; none by
	// default, since public lists limit or refuse bulk and public-resolver
	// queries.
	DNSBLZones []string `yaml:"dnsbl_zones,omitempty" json:"dnsbl_zones,omitempty"`
	// The checks that run by default and can be turned off.
	MTASTS *bool `yaml:"mta_sts,omitempty" json:"mta_sts,omitempty"`
	TLSRPT *bool `yaml:"tls_rpt,omitempty" json:"tls_rpt,omitempty"`
	DANE   *bool `yaml:"dane,omitempty" json:"dane,omitempty"`
	PTR    *bool `yaml:"ptr,omitempty" json:"ptr,omitempty"`
}

// Enabled reports whether an optional check is on (on when unset).
func Enabled(b *bool) bool { return b == nil || *b }

func (d *DomainModule) setDefaults() {
	if d.MXPort == 0 {
		d.MXPort = DefaultMXPort
	}
	if d.MaxMX == 0 {
		d.MaxMX = DefaultMaxMX
	}
	if d.MaxAddresses == 0 {
		d.MaxAddresses = DefaultMaxAddresses
	}
	if len(d.IPProtocols) == 0 {
		d.IPProtocols = []string{"ip4", "ip6"}
	}
	if d.DNSTimeout == 0 {
		d.DNSTimeout = DefaultDNSTimeout
	}
	for _, b := range []**bool{&d.MTASTS, &d.TLSRPT, &d.DANE, &d.PTR} {
		if *b == nil {
			t := true
			*b = &t
		}
	}
	for i, z := range d.DNSBLZones {
		d.DNSBLZones[i] = strings.TrimSuffix(strings.ToLower(z), ".")
	}
}

// validateDomain checks the domain prober's settings. The MX module, when
// named, is resolved and checked by the loader (ResolveMXModule), which
// knows the other modules.
func (m *Module) validateDomain() error {
	d := &m.Domain
	s := &m.SMTP
	switch {
	case s.Auth != nil:
		return fieldErr("smtp.auth", "not used by prober domain: its MX sessions greet, STARTTLS and QUIT")
	case s.MailFrom != "" || len(s.RcptTo) > 0 || s.Send:
		return fieldErr("smtp.mail_from", "not used by prober domain: its MX sessions send nothing")
	case len(s.ExpectCodes) > 0:
		return fieldErr("smtp.expect_codes", "not supported by prober domain")
	}
	if d.MXPort < 1 || d.MXPort > 65535 {
		return fieldErr("domain.mx_port", "must be a port number (1-65535), got %d", d.MXPort)
	}
	if d.MaxMX < 1 || d.MaxMX > 50 {
		return fieldErr("domain.max_mx", "must be between 1 and 50, got %d", d.MaxMX)
	}
	if d.MaxAddresses < 1 || d.MaxAddresses > 16 {
		return fieldErr("domain.max_addresses", "must be between 1 and 16, got %d", d.MaxAddresses)
	}
	for i, p := range d.IPProtocols {
		if p != "ip4" && p != "ip6" {
			return fieldErr(fmt.Sprintf("domain.ip_protocols[%d]", i), "unknown value %q (want ip4 or ip6)", p)
		}
		if slices.Index(d.IPProtocols, p) != i {
			return fieldErr(fmt.Sprintf("domain.ip_protocols[%d]", i), "%s listed twice", p)
		}
	}
	if d.DNSServer != "" {
		host, port, err := net.SplitHostPort(d.DNSServer)
		if err != nil {
			return fieldErr("domain.dns_server", "want host:port (an IP address and port, e.g. 127.0.0.1:53), got %q", d.DNSServer)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			// Resolving the resolver's name would need a resolver.
			return fieldErr("domain.dns_server", "host must be an IP address, got %q", host)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fieldErr("domain.dns_server", "invalid port %q", port)
		}
	}
	if d.DNSTimeout < 0 {
		return fieldErr("domain.dns_timeout", "must be positive, got %s", d.DNSTimeout)
	}
	if d.DNSTimeout >= m.Timeout {
		return fieldErr("domain.dns_timeout", "%s leaves nothing of the module's timeout %s", d.DNSTimeout, m.Timeout)
	}
	for i, ip := range d.SendingIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fieldErr(fmt.Sprintf("domain.sending_ips[%d]", i), "not an IP address: %q", ip)
		}
	}
	for i, sel := range d.DKIMSelectors {
		if !isDNSName(sel) {
			return fieldErr(fmt.Sprintf("domain.dkim_selectors[%d]", i), "not a DNS label sequence: %q", sel)
		}
	}
	for _, b := range []**bool{&d.MTASTS, &d.TLSRPT, &d.DANE, &d.PTR} {
		if *b == nil {
			t := true
			*b = &t
		}
	}
	for i, z := range d.DNSBLZones {
		if !isDNSName(z) || !strings.Contains(z, ".") {
			return fieldErr(fmt.Sprintf("domain.dnsbl_zones[%d]", i), "not a DNS zone name: %q", z)
		}
	}
	return nil
}

// ResolveMXModule fills d.MX from the module named by mx_module (looked up
// with get), or from m's own smtp keys. Called by the loader after every
// module has its defaults; the field error names mx_module.
func (m *Module) ResolveMXModule(get func(name string) (*Module, bool)) error {
	if m.Prober != ProberDomain {
		return nil
	}
	d := &m.Domain
	src := m
	if d.MXModule != "" {
		named, ok := get(d.MXModule)
		switch {
		case !ok:
			return fieldErr("domain.mx_module", "unknown module %q", d.MXModule)
		case named.Prober != ProberSMTP:
			return fieldErr("domain.mx_module", "module %q has prober %s; want an smtp module", d.MXModule, named.Prober)
		case named.SMTP.Auth != nil || named.SMTP.MailFrom != "" || named.SMTP.Send || len(named.SMTP.ExpectCodes) > 0:
			return fieldErr("domain.mx_module", "module %q authenticates or sends mail; MX sessions only greet, STARTTLS and QUIT", d.MXModule)
		}
		src = named
	}
	mx := &Module{
		Prober: ProberSMTP, Timeout: src.Timeout,
		IPProtocol: src.IPProtocol, IPProtocolFallback: src.IPProtocolFallback,
		SourceIPAddress: src.SourceIPAddress, SMTP: src.SMTP,
	}
	if msg := checkSourceFamilies(mx.SourceIPAddress, d.IPProtocols); msg != "" {
		if d.MXModule != "" {
			return fieldErr("domain.mx_module", "module %q's source_ip_address %s", d.MXModule, msg)
		}
		return fieldErr("source_ip_address", "%s", msg)
	}
	if d.MXModule == "" {
		// The domain module's timeout covers the whole run; one MX dialog
		// gets the dialog default.
		mx.Timeout = DefaultTimeout
	}
	d.MX = mx
	return nil
}

// isDNSName accepts what can be a label sequence in a query name.
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// domainPhases are a domain run's checks in order; optional ones only
// when configured.
func (m *Module) domainPhases() []Phase {
	d := &m.Domain
	ps := []Phase{PhaseMX}
	if Enabled(d.PTR) {
		ps = append(ps, PhasePTR)
	}
	ps = append(ps, PhaseSPF, PhaseDMARC)
	if len(d.DKIMSelectors) > 0 {
		ps = append(ps, PhaseDKIM)
	}
	if Enabled(d.MTASTS) {
		ps = append(ps, PhaseMTASTS)
	}
	if Enabled(d.TLSRPT) {
		ps = append(ps, PhaseTLSRPT)
	}
	if Enabled(d.DANE) {
		ps = append(ps, PhaseDANE)
	}
	if len(d.DNSBLZones) > 0 {
		ps = append(ps, PhaseDNSBL)
	}
	return ps
}
