package probes

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/config"
)

func TestModule_Defaults(t *testing.T) {
	m := Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "plain", Username: "u", Password: "p"}}}
	m.SetDefaults()

	if m.Prober != ProberSMTP {
		t.Errorf("Prober = %q, want %q", m.Prober, ProberSMTP)
	}
	if m.Timeout != 15*time.Second {
		t.Errorf("Timeout = %s, want 15s", m.Timeout)
	}
	if m.IPProtocol != "ip4" {
		t.Errorf("IPProtocol = %q, want ip4", m.IPProtocol)
	}
	if m.IPProtocolFallback == nil || !*m.IPProtocolFallback {
		t.Errorf("IPProtocolFallback = %v, want true", m.IPProtocolFallback)
	}
	if m.SMTP.TLS != TLSStartTLS {
		t.Errorf("SMTP.TLS = %q, want %q", m.SMTP.TLS, TLSStartTLS)
	}
	if m.SMTP.MinSendInterval != 5*time.Minute {
		t.Errorf("SMTP.MinSendInterval = %s, want 5m", m.SMTP.MinSendInterval)
	}
	if m.SMTP.Auth.Mechanism != "PLAIN" {
		t.Errorf("SMTP.Auth.Mechanism = %q, want PLAIN (upper-cased)", m.SMTP.Auth.Mechanism)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate() of a defaulted module = %v, want nil", err)
	}
}

func TestModule_DefaultsAuthMechanism(t *testing.T) {
	m := Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u", Password: "p"}}}
	m.SetDefaults()
	if m.SMTP.Auth.Mechanism != DefaultAuthMechanism {
		t.Errorf("SMTP.Auth.Mechanism = %q, want %q", m.SMTP.Auth.Mechanism, DefaultAuthMechanism)
	}
}

// TestModule_DefaultsKeepSetValues checks that SetDefaults fills only what
// is unset, including an explicit ip_protocol_fallback: false.
func TestModule_DefaultsKeepSetValues(t *testing.T) {
	no := false
	m := Module{
		Prober:             ProberLMTP,
		Timeout:            3 * time.Second,
		IPProtocol:         "ip6",
		IPProtocolFallback: &no,
		SMTP:               SMTPModule{TLS: TLSImplicit, MinSendInterval: time.Hour},
	}
	m.SetDefaults()
	if m.Prober != ProberLMTP || m.Timeout != 3*time.Second || m.IPProtocol != "ip6" ||
		*m.IPProtocolFallback || m.SMTP.TLS != TLSImplicit || m.SMTP.MinSendInterval != time.Hour {
		t.Errorf("SetDefaults overwrote a set value: %+v", m)
	}
}

func TestModule_Validate(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing-pw")
	dir := t.TempDir()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		module    Module
		wantField string
		wantMsg   string
	}{
		{
			name:      "unknown prober",
			module:    Module{Prober: "http"},
			wantField: "prober",
			wantMsg:   `unknown prober "http" (want smtp, lmtp, delivery or domain)`,
		},
		{
			name:      "unknown tls mode",
			module:    Module{SMTP: SMTPModule{TLS: "ssl"}},
			wantField: "smtp.tls",
			wantMsg:   `unknown value "ssl" (want none, starttls or implicit)`,
		},
		{
			name:      "unknown ip_protocol",
			module:    Module{IPProtocol: "ipv4"},
			wantField: "ip_protocol",
			wantMsg:   `unknown value "ipv4" (want ip4, ip6 or both)`,
		},
		{
			name:      "negative timeout",
			module:    Module{Timeout: -time.Second},
			wantField: "timeout",
			wantMsg:   `must be positive, got -1s`,
		},
		{
			name:      "ehlo with a space",
			module:    Module{SMTP: SMTPModule{EHLO: "probe example.net"}},
			wantField: "smtp.ehlo",
			wantMsg:   `must be a single domain name or address literal, got "probe example.net"`,
		},
		{
			name:      "missing ca_file",
			module:    Module{SMTP: SMTPModule{TLSConfig: config.TLSConfig{CAFile: missing}}},
			wantField: "smtp.tls_config.ca_file",
			wantMsg:   `stat ` + missing + `: no such file or directory`,
		},
		{
			name:      "unsupported auth mechanism",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "gssapi", Username: "u", Password: "p"}}},
			wantField: "smtp.auth.mechanism",
			wantMsg:   `unsupported mechanism "GSSAPI" (want one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER)`,
		},
		{
			name:      "auth without username",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Password: "p"}}},
			wantField: "smtp.auth.username",
			wantMsg:   `required`,
		},
		{
			name:      "auth without password",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u"}}},
			wantField: "smtp.auth",
			wantMsg:   `PLAIN needs exactly one of password and password_file`,
		},
		{
			name:      "both password and password_file",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u", Password: "p", PasswordFile: pwFile}}},
			wantField: "smtp.auth",
			wantMsg:   `PLAIN needs exactly one of password and password_file`,
		},
		{
			name:      "token with PLAIN",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "PLAIN", Username: "u", Token: "t"}}},
			wantField: "smtp.auth",
			wantMsg:   `PLAIN takes a password or password_file, not a token (tokens are for XOAUTH2 and OAUTHBEARER)`,
		},
		{
			name:      "password with XOAUTH2",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "xoauth2", Username: "u", Password: "p"}}},
			wantField: "smtp.auth",
			wantMsg:   `XOAUTH2 takes a token or token_file, not a password`,
		},
		{
			name:      "OAUTHBEARER without token",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "OAUTHBEARER", Username: "u"}}},
			wantField: "smtp.auth",
			wantMsg:   `OAUTHBEARER needs exactly one of token and token_file`,
		},
		{
			name:      "missing password_file",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u", PasswordFile: missing}}},
			wantField: "smtp.auth.password_file",
			wantMsg:   `stat ` + missing + `: no such file or directory`,
		},
		{
			name:      "missing token_file",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "XOAUTH2", Username: "u", TokenFile: missing}}},
			wantField: "smtp.auth.token_file",
			wantMsg:   `stat ` + missing + `: no such file or directory`,
		},
		{
			name:      "auth over tls none",
			module:    Module{SMTP: SMTPModule{TLS: TLSNone, Auth: &AuthConfig{Username: "u", PasswordFile: pwFile}}},
			wantField: "smtp.auth",
			wantMsg:   `AUTH without TLS sends credentials in clear text: use tls: starttls or implicit, or set allow_insecure_auth: true`,
		},
		{
			name:      "rcpt_to without mail_from",
			module:    Module{SMTP: SMTPModule{RcptTo: []string{"sink@example.net"}}},
			wantField: "smtp.mail_from",
			wantMsg:   `required when rcpt_to is set (the probe never sends with the null sender)`,
		},
		{
			name:      "send without rcpt_to",
			module:    Module{SMTP: SMTPModule{MailFrom: "monitor@example.net", Send: true}},
			wantField: "smtp.send",
			wantMsg:   `needs at least one rcpt_to`,
		},
		{
			name:      "negative min_send_interval",
			module:    Module{SMTP: SMTPModule{MinSendInterval: -time.Minute}},
			wantField: "smtp.min_send_interval",
			wantMsg:   `must not be negative, got -1m0s`,
		},
		{
			name:      "expect_codes with an unknown phase",
			module:    Module{SMTP: SMTPModule{ExpectCodes: map[Phase][]int{"recipient": {550}}}},
			wantField: "smtp.expect_codes.recipient",
			wantMsg:   `unknown phase "recipient" (want one of banner, ehlo, lhlo, starttls, auth, mail, rcpt, data)`,
		},
		{
			name:      "expect_codes with a phase without replies",
			module:    Module{SMTP: SMTPModule{ExpectCodes: map[Phase][]int{"connect": {550}}}},
			wantField: "smtp.expect_codes.connect",
			wantMsg:   `phase "connect" has no server reply to expect (want one of banner, ehlo, lhlo, starttls, auth, mail, rcpt, data)`,
		},
		{
			name:      "expect_codes code 999",
			module:    Module{SMTP: SMTPModule{ExpectCodes: map[Phase][]int{PhaseRcpt: {550, 999}}}},
			wantField: "smtp.expect_codes.rcpt",
			wantMsg:   `code 999 is not an SMTP reply code (200-599)`,
		},
		{
			name:      "bracketed mail_from",
			module:    Module{SMTP: SMTPModule{MailFrom: "<monitor@example.net>"}},
			wantField: "smtp.mail_from",
			wantMsg:   `address "<monitor@example.net>" must be bare (no angle brackets or spaces)`,
		},
		{
			name:      "bracketed rcpt_to",
			module:    Module{SMTP: SMTPModule{MailFrom: "monitor@example.net", RcptTo: []string{"a@example.net", "<b@example.net>"}}},
			wantField: "smtp.rcpt_to[1]",
			wantMsg:   `address "<b@example.net>" must be bare (no angle brackets or spaces)`,
		},
		{
			name:      "NUL in mail_from",
			module:    Module{SMTP: SMTPModule{MailFrom: "mon\x00itor@example.net"}},
			wantField: "smtp.mail_from",
			wantMsg:   `must not contain control characters, found U+0000 at byte 3`,
		},
		{
			name:      "CR LF in rcpt_to",
			module:    Module{SMTP: SMTPModule{MailFrom: "monitor@example.net", RcptTo: []string{"a@example.net", "b@example.net\r\nRSET"}}},
			wantField: "smtp.rcpt_to[1]",
			wantMsg:   `must not contain control characters, found U+000D at byte 13`,
		},
		{
			name:      "escape in rcpt_to",
			module:    Module{SMTP: SMTPModule{MailFrom: "monitor@example.net", RcptTo: []string{"a\x1b@example.net"}}},
			wantField: "smtp.rcpt_to[0]",
			wantMsg:   `must not contain control characters, found U+001B at byte 1`,
		},
		{
			name:      "invalid UTF-8 in mail_from",
			module:    Module{SMTP: SMTPModule{MailFrom: "m\xffx@example.net"}},
			wantField: "smtp.mail_from",
			wantMsg:   `is not valid UTF-8 (at byte 1)`,
		},
		{
			name:      "NUL in ehlo",
			module:    Module{SMTP: SMTPModule{EHLO: "probe.example.net\x00"}},
			wantField: "smtp.ehlo",
			wantMsg:   `must not contain control characters, found U+0000 at byte 17`,
		},
		{
			name:      "NUL in auth username",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u\x00admin", Password: "p"}}},
			wantField: "smtp.auth.username",
			wantMsg:   `must not contain control characters, found U+0000 at byte 1`,
		},
		{
			name:      "LF in server_name",
			module:    Module{SMTP: SMTPModule{TLSConfig: config.TLSConfig{ServerName: "mail.example.net\n"}}},
			wantField: "smtp.tls_config.server_name",
			wantMsg:   `must not contain control characters, found U+000A at byte 16`,
		},
		{
			name:      "password_file is a directory",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u", PasswordFile: dir}}},
			wantField: "smtp.auth.password_file",
			wantMsg:   dir + ` is a directory, not a file`,
		},
		{
			name:      "token_file is a directory",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "XOAUTH2", Username: "u", TokenFile: dir}}},
			wantField: "smtp.auth.token_file",
			wantMsg:   dir + ` is a directory, not a file`,
		},
		{
			name:      "ca_file is a directory",
			module:    Module{SMTP: SMTPModule{TLSConfig: config.TLSConfig{CAFile: dir}}},
			wantField: "smtp.tls_config.ca_file",
			wantMsg:   dir + ` is a directory, not a file`,
		},
		{
			name:      "missing cert_file",
			module:    Module{SMTP: SMTPModule{TLSConfig: config.TLSConfig{CertFile: missing, KeyFile: pwFile}}},
			wantField: "smtp.tls_config.cert_file",
			wantMsg:   `stat ` + missing + `: no such file or directory`,
		},
		{
			name:      "key_file is a directory",
			module:    Module{SMTP: SMTPModule{TLSConfig: config.TLSConfig{CertFile: pwFile, KeyFile: dir}}},
			wantField: "smtp.tls_config.key_file",
			wantMsg:   dir + ` is a directory, not a file`,
		},
		{
			name:      "password_file is a named pipe",
			module:    Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u", PasswordFile: fifo}}},
			wantField: "smtp.auth.password_file",
			wantMsg:   fifo + ` is not a regular file`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.module
			m.SetDefaults()
			err := m.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want %s: %s", tt.wantField, tt.wantMsg)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %T %v, want a *FieldError", err, err)
			}
			if fe.Field != tt.wantField || fe.Msg != tt.wantMsg {
				t.Errorf("Validate() = %q\nwant          %q", err, tt.wantField+": "+tt.wantMsg)
			}
		})
	}
}

func TestModule_ValidateGood(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]Module{
		"zero":           {},
		"lmtp":           {Prober: ProberLMTP, SMTP: SMTPModule{TLS: TLSNone}},
		"ip6 no tls":     {IPProtocol: "ip6", SMTP: SMTPModule{TLS: TLSNone}},
		"insecure auth":  {SMTP: SMTPModule{TLS: TLSNone, AllowInsecureAuth: true, Auth: &AuthConfig{Username: "u", Password: "p"}}},
		"password_file":  {SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "login", Username: "u", PasswordFile: pwFile}}},
		"xoauth2 token":  {SMTP: SMTPModule{TLS: TLSImplicit, Auth: &AuthConfig{Mechanism: "XOAUTH2", Username: "u", Token: "t"}}},
		"oauthbearer tf": {SMTP: SMTPModule{Auth: &AuthConfig{Mechanism: "OAUTHBEARER", Username: "u", TokenFile: pwFile}}},
		"send": {SMTP: SMTPModule{
			EHLO: "[192.0.2.1]", MailFrom: "m@example.net", RcptTo: []string{"a@example.net", "b@example.net"}, Send: true,
			ExpectCodes: map[Phase][]int{PhaseRcpt: {550, 554}, PhaseMail: {250}},
		}},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			m.SetDefaults()
			if err := m.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

// TestModule_ValidateUnreadableFile checks that a password_file the
// exporter cannot read fails at load, not at every run. Root reads any
// file, so the test needs another user.
func TestModule_ValidateUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read a file without permissions")
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	m := Module{SMTP: SMTPModule{Auth: &AuthConfig{Username: "u", PasswordFile: pwFile}}}
	m.SetDefaults()
	want := "smtp.auth.password_file: open " + pwFile + ": permission denied"
	if err := m.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}

// Phases is the one list of a module's phases: the dialog runs what it
// names, in its order.
func TestModule_Phases(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Module
		want []Phase
	}{
		{"banner check", Module{SMTP: SMTPModule{TLS: TLSNone}},
			[]Phase{PhaseResolve, PhaseConnect, PhaseBanner, PhaseEHLO, PhaseQuit}},
		{"submission", Module{SMTP: SMTPModule{TLS: TLSStartTLS, Auth: &AuthConfig{}, MailFrom: "a@example.net", RcptTo: []string{"b@example.net"}, Send: true}},
			[]Phase{PhaseResolve, PhaseConnect, PhaseBanner, PhaseEHLO, PhaseSTARTTLS, PhaseAuth, PhaseMail, PhaseRcpt, PhaseData, PhaseQuit}},
		{"implicit TLS", Module{SMTP: SMTPModule{TLS: TLSImplicit, MailFrom: "a@example.net"}},
			[]Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseBanner, PhaseEHLO, PhaseMail, PhaseQuit}},
		{"lmtp", Module{Prober: ProberLMTP, SMTP: SMTPModule{TLS: TLSNone, MailFrom: "a@example.net", RcptTo: []string{"b@example.net"}}},
			[]Phase{PhaseResolve, PhaseConnect, PhaseBanner, PhaseLHLO, PhaseMail, PhaseRcpt, PhaseQuit}},
	} {
		if got := tc.m.Phases(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Phases() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func deliveryModule() Module {
	return Module{
		Prober: ProberDelivery,
		SMTP:   SMTPModule{MailFrom: "probe@example.org", RcptTo: []string{"probe@example.net"}},
		Delivery: DeliveryModule{IMAP: IMAPModule{
			Address: "imap.example.net:993",
			Auth:    &AuthConfig{Username: "probe@example.net", Password: "Correct-Horse-9!"},
		}},
	}
}

func TestModule_ValidateDelivery(t *testing.T) {
	tests := []struct {
		name      string
		change    func(m *Module)
		wantField string
	}{
		{"good", func(*Module) {}, ""},
		{"no mail_from", func(m *Module) { m.SMTP.MailFrom, m.SMTP.RcptTo = "", nil }, "smtp.mail_from"},
		{"no rcpt_to", func(m *Module) { m.SMTP.RcptTo = nil }, "smtp.rcpt_to"},
		{"no address", func(m *Module) { m.Delivery.IMAP.Address = "" }, "delivery.imap.address"},
		{"address without port", func(m *Module) { m.Delivery.IMAP.Address = "imap.example.net" }, "delivery.imap.address"},
		{"bad tls", func(m *Module) { m.Delivery.IMAP.TLS = "ssl" }, "delivery.imap.tls"},
		{"no auth", func(m *Module) { m.Delivery.IMAP.Auth = nil }, "delivery.imap.auth"},
		{"cram-md5", func(m *Module) { m.Delivery.IMAP.Auth.Mechanism = "CRAM-MD5" }, "delivery.imap.auth.mechanism"},
		{"missing password file", func(m *Module) {
			m.Delivery.IMAP.Auth.Password, m.Delivery.IMAP.Auth.PasswordFile = "", filepath.Join(t.TempDir(), "none")
		}, "delivery.imap.auth.password_file"},
		{"clear text login", func(m *Module) { m.Delivery.IMAP.TLS = TLSNone }, "delivery.imap.auth"},
		{"unknown require_auth", func(m *Module) { m.Delivery.AuthservID, m.Delivery.RequireAuth = "mx.example.net", []string{"arc"} }, "delivery.require_auth[0]"},
		{"require_auth with authserv_id", func(m *Module) { m.Delivery.AuthservID, m.Delivery.RequireAuth = "mx.example.net", []string{"spf"} }, ""},
		{"require_auth with authres_without_id", func(m *Module) { m.Delivery.AuthresWithoutID, m.Delivery.RequireAuth = true, []string{"dkim"} }, ""},
		// Nothing trusted: every verdict would be unknown, and the run
		// would fail on every message.
		{"require_auth trusting no header", func(m *Module) { m.Delivery.RequireAuth = []string{"spf"} }, "delivery.require_auth"},
		{"authserv_id and authres_without_id", func(m *Module) {
			m.Delivery.AuthservID, m.Delivery.AuthresWithoutID = "mx.example.net", true
		}, "delivery.authres_without_id"},
		{"delivery_timeout past timeout", func(m *Module) { m.Timeout, m.Delivery.DeliveryTimeout = time.Minute, 2*time.Minute }, "delivery.delivery_timeout"},
		{"good bounce_imap", func(m *Module) {
			m.Delivery.BounceIMAP = &IMAPModule{Address: "imap.example.org:993", Auth: &AuthConfig{Username: "probe@example.org", Password: "Correct-Horse-9!"}}
		}, ""},
		{"bounce_imap without auth", func(m *Module) {
			m.Delivery.BounceIMAP = &IMAPModule{Address: "imap.example.org:993"}
		}, "delivery.bounce_imap.auth"},
		{"bounce_imap clear text login", func(m *Module) {
			m.Delivery.BounceIMAP = &IMAPModule{Address: "imap.example.org:143", TLS: TLSNone, Auth: &AuthConfig{Username: "u", Password: "Correct-Horse-9!"}}
		}, "delivery.bounce_imap.auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := deliveryModule()
			tt.change(&m)
			m.SetDefaults()
			err := m.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("Validate() = %v, want a FieldError on %s", err, tt.wantField)
			}
			if strings.Contains(err.Error(), "Correct-Horse-9!") {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
}

// TestModule_RequireAuthSaysWhichKey: the error of require_auth without a
// trusted header names both keys that fix it.
func TestModule_RequireAuthSaysWhichKey(t *testing.T) {
	m := deliveryModule()
	m.Delivery.RequireAuth = []string{"dmarc"}
	m.SetDefaults()
	err := m.Validate()
	if err == nil || !strings.Contains(err.Error(), "delivery.authserv_id") || !strings.Contains(err.Error(), "delivery.authres_without_id") {
		t.Errorf("Validate() = %v, want it to name delivery.authserv_id and delivery.authres_without_id", err)
	}
}

func TestModule_DeliveryQuestions(t *testing.T) {
	m := deliveryModule()
	m.SetDefaults()
	if m.Delivery.IMAP.TLS != TLSImplicit || m.Delivery.PollInterval != DefaultPollInterval ||
		m.Delivery.DeliveryTimeout != DefaultDeliveryTimeout || m.Timeout != DefaultTimeout+DefaultDeliveryTimeout {
		t.Errorf("defaults = %+v timeout %s", m.Delivery, m.Timeout)
	}
	if !m.SendsMail() || m.ConcurrencyClass() != ClassDelivery {
		t.Errorf("SendsMail %v, class %q; want true, delivery", m.SendsMail(), m.ConcurrencyClass())
	}
	if w := m.WithoutSend(); w.SendsMail() || w.Prober != ProberSMTP {
		t.Errorf("WithoutSend: prober %q, sends %v; want the smtp dialog without a message", w.Prober, w.SendsMail())
	}
	if !m.CredentialsPinned() {
		t.Error("CredentialsPinned = false for a verified IMAP leg and no SMTP auth")
	}
	m.Delivery.IMAP.TLSConfig.InsecureSkipVerify = true
	if m.CredentialsPinned() {
		t.Error("CredentialsPinned = true with the IMAP password sent to an unverified server")
	}
}

// TestModule_FleetOptions checks the keys fleets need at load:
// source_ip_address, smtp.proxy_protocol and ip_protocol both, and how a
// source address and the families a module reaches must agree.
func TestModule_FleetOptions(t *testing.T) {
	for _, tt := range []struct {
		name   string
		module Module
		err    string
	}{
		{"ipv4 source", Module{SourceIPAddress: "127.0.0.2"}, ""},
		{"ipv6 source, family follows", Module{SourceIPAddress: "2001:db8::7"}, ""},
		{"not an ip", Module{SourceIPAddress: "mx.example.net"}, `source_ip_address: "mx.example.net" is not an IP address`},
		{"ip with port", Module{SourceIPAddress: "127.0.0.2:25"}, `source_ip_address: "127.0.0.2:25" is not an IP address`},
		{"unspecified", Module{SourceIPAddress: "0.0.0.0"}, `source_ip_address: 0.0.0.0 is not the address of an interface`},
		{"multicast", Module{SourceIPAddress: "ff02::1"}, `source_ip_address: ff02::1 is not the address of an interface`},
		{"family mismatch", Module{SourceIPAddress: "192.0.2.7", IPProtocol: IPProtocol6},
			`source_ip_address: 192.0.2.7 is an IPv4 address, but ip_protocol is ip6: a connection from it reaches IPv4 addresses only`},
		{"both with a source", Module{SourceIPAddress: "192.0.2.7", IPProtocol: IPProtocolBoth},
			`source_ip_address: 192.0.2.7 is an IPv4 address, but ip_protocol is both: a connection from it reaches IPv4 addresses only`},
		{"proxy v1", Module{SMTP: SMTPModule{ProxyProtocol: "v1"}}, ""},
		{"proxy v2", Module{SMTP: SMTPModule{ProxyProtocol: "v2"}}, ""},
		{"proxy upper case", Module{SMTP: SMTPModule{ProxyProtocol: "V2"}}, `smtp.proxy_protocol: unknown value "V2" (want v1 or v2)`},
		{"both smtp", Module{IPProtocol: IPProtocolBoth}, ""},
		{"both lmtp", Module{Prober: ProberLMTP, IPProtocol: IPProtocolBoth}, ""},
		{"both delivery", Module{Prober: ProberDelivery, IPProtocol: IPProtocolBoth},
			`ip_protocol: both is for the smtp and lmtp probers (a delivery run sends a message: give each family a module of its own)`},
		{"both domain", Module{Prober: ProberDomain, IPProtocol: IPProtocolBoth},
			`ip_protocol: both is for the smtp and lmtp probers (the domain prober probes the families listed in domain.ip_protocols)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.module
			m.SetDefaults()
			if got := errText(m.Validate()); got != tt.err {
				t.Errorf("Validate() = %q\nwant          %q", got, tt.err)
			}
		})
	}
}

func TestModule_SourceAddressSetsDefaultFamily(t *testing.T) {
	for source, want := range map[string]string{"": IPProtocol4, "127.0.0.2": IPProtocol4, "::1": IPProtocol6, "2001:db8::7": IPProtocol6} {
		m := Module{SourceIPAddress: source}
		m.SetDefaults()
		if m.IPProtocol != want {
			t.Errorf("source %q: ip_protocol defaults to %s, want %s", source, m.IPProtocol, want)
		}
	}
	// A family the file sets stays, for Validate to judge.
	m := Module{SourceIPAddress: "::1", IPProtocol: IPProtocol4}
	m.SetDefaults()
	if m.IPProtocol != IPProtocol4 {
		t.Errorf("ip_protocol = %s, want the ip4 that was set", m.IPProtocol)
	}
}

// TestModule_MXSessionsSourceFamilies: the MX sessions of a domain module
// take the source address of the module whose smtp keys they use, and a
// source that cannot reach a family the domain probes is refused at load.
func TestModule_MXSessionsSourceFamilies(t *testing.T) {
	mods := map[string]*Module{
		"from4": {Prober: ProberSMTP, SourceIPAddress: "192.0.2.7"},
		"plain": {Prober: ProberSMTP},
	}
	for _, m := range mods {
		m.SetDefaults()
	}
	get := func(n string) (*Module, bool) { m, ok := mods[n]; return m, ok }
	for _, tt := range []struct {
		name     string
		module   Module
		err      string
		mxSource string
	}{
		{name: "own source, both families", module: Module{SourceIPAddress: "192.0.2.7"},
			err: "source_ip_address: 192.0.2.7 is an IPv4 address, which cannot reach IPv6 MX addresses: list only ip4 in domain.ip_protocols"},
		{name: "own source, its family", module: Module{SourceIPAddress: "192.0.2.7", Domain: DomainModule{IPProtocols: []string{IPProtocol4}}},
			mxSource: "192.0.2.7"},
		{name: "own ipv6 source", module: Module{SourceIPAddress: "2001:db8::7", Domain: DomainModule{IPProtocols: []string{IPProtocol6}}},
			mxSource: "2001:db8::7"},
		{name: "mx_module's source, both families", module: Module{Domain: DomainModule{MXModule: "from4"}},
			err: "domain.mx_module: module \"from4\"'s source_ip_address 192.0.2.7 is an IPv4 address, which cannot reach IPv6 MX addresses: list only ip4 in domain.ip_protocols"},
		{name: "mx_module's source, its family", module: Module{Domain: DomainModule{MXModule: "from4", IPProtocols: []string{IPProtocol4}}},
			mxSource: "192.0.2.7"},
		{name: "domain's source, mx_module without", module: Module{SourceIPAddress: "192.0.2.7", Domain: DomainModule{MXModule: "plain"}},
			mxSource: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.module
			m.Prober = ProberDomain
			m.SetDefaults()
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			err := m.ResolveMXModule(get)
			if got := errText(err); got != tt.err {
				t.Fatalf("ResolveMXModule() = %q\nwant                 %q", got, tt.err)
			}
			if err == nil && m.Domain.MX.SourceIPAddress != tt.mxSource {
				t.Errorf("MX sessions' source_ip_address = %q, want %q", m.Domain.MX.SourceIPAddress, tt.mxSource)
			}
		})
	}
}

func TestModule_PinnedTo(t *testing.T) {
	m := Module{IPProtocol: IPProtocolBoth, SMTP: SMTPModule{EHLO: "probe.example"}}
	m.SetDefaults()
	for _, family := range []string{IPProtocol4, IPProtocol6} {
		p := m.PinnedTo(family)
		if p.IPProtocol != family || *p.IPProtocolFallback || p.SMTP.EHLO != "probe.example" {
			t.Errorf("PinnedTo(%s) = ip_protocol %s fallback %t ehlo %q, want %[1]s, no fallback and the module's other settings",
				family, p.IPProtocol, *p.IPProtocolFallback, p.SMTP.EHLO)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("PinnedTo(%s).Validate() = %v", family, err)
		}
	}
	if m.IPProtocol != IPProtocolBoth || !*m.IPProtocolFallback {
		t.Errorf("PinnedTo changed its module: ip_protocol %s fallback %t", m.IPProtocol, *m.IPProtocolFallback)
	}
}
