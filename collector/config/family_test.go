package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

const familiesDoc = `modules:
  dual: {ip_protocol: both, timeout: 5s, smtp: {ehlo: probe.example}}
  v6: {ip_protocol: ip6}
targets:
  - {name: mx1, address: "mx1.example.net:25", module: dual, interval: 30s}
  - {name: mx2, address: "mx2.example.net", module: v6}
  - {name: mx3, address: "mx3.example.net", module: dual}
`

// TestParse_BothFamiliesExpands: a target of an ip_protocol both module is
// loaded as one run per family, named after it and pinned to its family;
// the others stay as written, in the file's order.
func TestParse_BothFamiliesExpands(t *testing.T) {
	cfg, err := Parse([]byte(familiesDoc), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range cfg.Targets {
		names = append(names, tg.Name)
	}
	if got, want := strings.Join(names, " "), "mx1/ip4 mx1/ip6 mx2 mx3/ip4 mx3/ip6"; got != want {
		t.Fatalf("targets %s, want %s", got, want)
	}
	for _, tg := range cfg.Targets {
		m := cfg.ModuleOf(tg)
		switch tg.Name {
		case "mx2":
			if tg.IPProtocol != "" || m != cfg.Modules["v6"] {
				t.Errorf("mx2: ip_protocol %q, module %p; want none and the v6 module itself", tg.IPProtocol, m)
			}
			continue
		case "mx1/ip4", "mx1/ip6":
			if tg.Address != "mx1.example.net:25" || tg.Interval != 30*time.Second || tg.Timeout != 5*time.Second {
				t.Errorf("%s: address %s interval %s timeout %s, want mx1's", tg.Name, tg.Address, tg.Interval, tg.Timeout)
			}
		}
		family := tg.Name[strings.IndexByte(tg.Name, '/')+1:]
		// The module label stays the configured module's name.
		if tg.Module != "dual" || tg.IPProtocol != family {
			t.Errorf("%s: module %q ip_protocol %q, want dual and %s", tg.Name, tg.Module, tg.IPProtocol, family)
		}
		if m.IPProtocol != family || *m.IPProtocolFallback || m.SMTP.EHLO != "probe.example" || m.Timeout != 5*time.Second {
			t.Errorf("%s: runs with ip_protocol %s fallback %t ehlo %q timeout %s, want dual's settings pinned to %s",
				tg.Name, m.IPProtocol, *m.IPProtocolFallback, m.SMTP.EHLO, m.Timeout, family)
		}
	}
	// The module as configured keeps both: /config shows what was written.
	if m := cfg.Modules["dual"]; m.IPProtocol != probes.IPProtocolBoth {
		t.Errorf("module dual: ip_protocol %s, want both", m.IPProtocol)
	}
	// /config shows each run's family.
	b, err := json.Marshal(cfg.Targets[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"name":"mx1/ip6"`) || !strings.Contains(string(b), `"ip_protocol":"ip6"`) {
		t.Errorf("JSON of mx1/ip6: %s", b)
	}
}

func TestParse_BothFamiliesErrors(t *testing.T) {
	const modules = "modules:\n  dual: {ip_protocol: both}\n  one: {}\n"
	checkParseErrors(t, []parseCase{
		{
			name: "expanded name taken by a later target",
			yaml: modules + "targets:\n  - {name: mx1, address: mx1.example.net, module: dual}\n  - {name: mx1/ip6, address: mx9.example.net, module: one}\n",
			want: `x.yml:6: targets[1].name: duplicate target name "mx1/ip6" (also targets[0])`,
		},
		{
			name: "expanded name taken by an earlier target",
			yaml: modules + "targets:\n  - {name: mx1/ip4, address: mx9.example.net, module: one}\n  - {name: mx1, address: mx1.example.net, module: dual}\n",
			want: `x.yml:6: targets[1].name: duplicate target name "mx1/ip4" (also targets[0])`,
		},
		{
			name: "the same target twice",
			yaml: modules + "targets:\n  - {name: mx1, address: mx1.example.net, module: dual}\n  - {name: mx1, address: mx2.example.net, module: dual}\n",
			want: `x.yml:6: targets[1].name: duplicate target name "mx1/ip4" (also targets[0])`,
		},
		{
			name: "IP literal",
			yaml: modules + "targets:\n  - {name: mx1, address: \"[2001:db8::25]:25\", module: dual}\n",
			want: `x.yml:5: targets[0].address: 2001:db8::25 is an address of one family; module "dual" has ip_protocol both, which probes a name once over each: name the host, or use a module with ip_protocol ip4 or ip6`,
		},
		{
			name: "both for a delivery module",
			yaml: "modules:\n  d:\n    prober: delivery\n    ip_protocol: both\n",
			want: `x.yml:4: modules.d.ip_protocol: both is for the smtp and lmtp probers (a delivery run sends a message: give each family a module of its own)`,
		},
		{
			name: "source address of the other family",
			yaml: "modules:\n  m:\n    ip_protocol: ip6\n    source_ip_address: 192.0.2.7\n",
			want: `x.yml:4: modules.m.source_ip_address: 192.0.2.7 is an IPv4 address, but ip_protocol is ip6: a connection from it reaches IPv4 addresses only`,
		},
		{
			name: "proxy_protocol",
			yaml: "modules:\n  m:\n    smtp: {proxy_protocol: v3}\n",
			want: `x.yml:3: modules.m.smtp.proxy_protocol: unknown value "v3" (want v1 or v2)`,
		},
		{
			name: "domain module's MX sessions cannot reach ip6",
			yaml: "modules:\n  d:\n    prober: domain\n    source_ip_address: 192.0.2.7\n",
			want: `x.yml:4: modules.d.source_ip_address: 192.0.2.7 is an IPv4 address, which cannot reach IPv6 MX addresses: list only ip4 in domain.ip_protocols`,
		},
	})
}

// TestParse_SourceIPAddress: the key loads, and an IPv6 source makes ip6
// the module's default family.
func TestParse_SourceIPAddress(t *testing.T) {
	cfg, err := Parse([]byte("modules:\n  a: {source_ip_address: 192.0.2.7, smtp: {proxy_protocol: v2}}\n  b: {source_ip_address: \"2001:db8::7\"}\n"), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Modules["a"], cfg.Modules["b"]
	if a.SourceIPAddress != "192.0.2.7" || a.IPProtocol != probes.IPProtocol4 || a.SMTP.ProxyProtocol != probes.ProxyProtocolV2 {
		t.Errorf("module a: source %q ip_protocol %s proxy_protocol %q", a.SourceIPAddress, a.IPProtocol, a.SMTP.ProxyProtocol)
	}
	if b.SourceIPAddress != "2001:db8::7" || b.IPProtocol != probes.IPProtocol6 {
		t.Errorf("module b: source %q ip_protocol %s, want ip6", b.SourceIPAddress, b.IPProtocol)
	}
}
