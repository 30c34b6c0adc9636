package probes

import (
	"errors"
	"testing"
	"time"
)

func TestModule_ValidateDomain(t *testing.T) {
	f := false
	for _, tt := range []struct {
		name         string
		mutate       func(m *Module)
		field, msg   string
		wantNoErrors bool
	}{
		{name: "defaults", mutate: func(m *Module) {}, wantNoErrors: true},
		{name: "auth", mutate: func(m *Module) { m.SMTP.Auth = &AuthConfig{Username: "u", Password: "p"} },
			field: "smtp.auth", msg: "not used by prober domain: its MX sessions greet, STARTTLS and QUIT"},
		{name: "mail_from", mutate: func(m *Module) { m.SMTP.MailFrom = "a@example.com" },
			field: "smtp.mail_from", msg: "not used by prober domain: its MX sessions send nothing"},
		{name: "port", mutate: func(m *Module) { m.Domain.MXPort = 70000 },
			field: "domain.mx_port", msg: "must be a port number (1-65535), got 70000"},
		{name: "max_mx", mutate: func(m *Module) { m.Domain.MaxMX = 51 },
			field: "domain.max_mx", msg: "must be between 1 and 50, got 51"},
		{name: "max_addresses", mutate: func(m *Module) { m.Domain.MaxAddresses = -1 },
			field: "domain.max_addresses", msg: "must be between 1 and 16, got -1"},
		{name: "family", mutate: func(m *Module) { m.Domain.IPProtocols = []string{"ip4", "ipx"} },
			field: "domain.ip_protocols[1]", msg: `unknown value "ipx" (want ip4 or ip6)`},
		{name: "family twice", mutate: func(m *Module) { m.Domain.IPProtocols = []string{"ip6", "ip6"} },
			field: "domain.ip_protocols[1]", msg: "ip6 listed twice"},
		{name: "dns_server no port", mutate: func(m *Module) { m.Domain.DNSServer = "127.0.0.1" },
			field: "domain.dns_server", msg: `want host:port (an IP address and port, e.g. 127.0.0.1:53), got "127.0.0.1"`},
		{name: "dns_server port", mutate: func(m *Module) { m.Domain.DNSServer = "[::1]:0" },
			field: "domain.dns_server", msg: `invalid port "0"`},
		{name: "dns_timeout", mutate: func(m *Module) { m.Domain.DNSTimeout = 2 * time.Minute },
			field: "domain.dns_timeout", msg: "2m0s leaves nothing of the module's timeout 1m0s"},
		{name: "sending ip", mutate: func(m *Module) { m.Domain.SendingIPs = []string{"192.0.2.300"} },
			field: "domain.sending_ips[0]", msg: `not an IP address: "192.0.2.300"`},
		{name: "selector", mutate: func(m *Module) { m.Domain.DKIMSelectors = []string{"s1", "bad selector"} },
			field: "domain.dkim_selectors[1]", msg: `not a DNS label sequence: "bad selector"`},
		{name: "zone", mutate: func(m *Module) { m.Domain.DNSBLZones = []string{"localhost"} },
			field: "domain.dnsbl_zones[0]", msg: `not a DNS zone name: "localhost"`},
		{name: "checks off", mutate: func(m *Module) { m.Domain.MTASTS, m.Domain.DANE = &f, &f }, wantNoErrors: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := Module{Prober: ProberDomain}
			tt.mutate(&m)
			m.SetDefaults()
			err := m.Validate()
			if tt.wantNoErrors {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Msg != tt.msg {
				t.Errorf("Validate() = %v\nwant %s: %s", err, tt.field, tt.msg)
			}
		})
	}
}

func TestModule_ResolveMXModule(t *testing.T) {
	mods := map[string]*Module{
		"inbound": {Prober: ProberSMTP, Timeout: 7 * time.Second, SMTP: SMTPModule{TLS: TLSImplicit, EHLO: "probe.example"}},
		"submit":  {Prober: ProberSMTP, SMTP: SMTPModule{MailFrom: "a@example.com", RcptTo: []string{"b@example.com"}}},
		"lmtp":    {Prober: ProberLMTP},
	}
	get := func(n string) (*Module, bool) { m, ok := mods[n]; return m, ok }
	for _, tt := range []struct{ mx, err string }{
		{"inbound", ""},
		{"", ""},
		{"nope", `domain.mx_module: unknown module "nope"`},
		{"submit", `domain.mx_module: module "submit" authenticates or sends mail; MX sessions only greet, STARTTLS and QUIT`},
		{"lmtp", `domain.mx_module: module "lmtp" has prober lmtp; want an smtp module`},
	} {
		m := Module{Prober: ProberDomain, Domain: DomainModule{MXModule: tt.mx}}
		m.SetDefaults()
		err := m.ResolveMXModule(get)
		if got := errText(err); got != tt.err {
			t.Errorf("mx_module %q: error %q, want %q", tt.mx, got, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		mx := m.Domain.MX
		switch tt.mx {
		case "inbound":
			if mx.SMTP.TLS != TLSImplicit || mx.SMTP.EHLO != "probe.example" || mx.Timeout != 7*time.Second {
				t.Errorf("MX module = %+v, want inbound's smtp keys and timeout", mx)
			}
		case "":
			if mx.SMTP.TLS != TLSStartTLS || mx.Timeout != DefaultTimeout || mx.Prober != ProberSMTP {
				t.Errorf("MX module = %+v, want the domain module's own smtp keys and the dialog timeout", mx)
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
