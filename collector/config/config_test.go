package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"go.yaml.in/yaml/v3"
)

func TestLoadFile_Good(t *testing.T) {
	cfg, err := LoadFile("testdata/good.yml")
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}

	if got, want := slices.Sorted(maps.Keys(cfg.Modules)), []string{"lmtp", "mx", "relay_test", "submission"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("modules = %v, want %v", got, want)
	}

	sub := cfg.Modules["submission"]
	if sub.Prober != probes.ProberSMTP || sub.Timeout != 20*time.Second || sub.IPProtocol != "ip4" || !*sub.IPProtocolFallback {
		t.Errorf("submission: prober %q timeout %s ip_protocol %q fallback %v", sub.Prober, sub.Timeout, sub.IPProtocol, *sub.IPProtocolFallback)
	}
	s := sub.SMTP
	if s.TLS != probes.TLSStartTLS || s.EHLO != "probe.example.net" || s.TLSConfig.ServerName != "mail.example.net" {
		t.Errorf("submission.smtp: tls %q ehlo %q server_name %q", s.TLS, s.EHLO, s.TLSConfig.ServerName)
	}
	wantAuth := &probes.AuthConfig{Mechanism: "PLAIN", Username: "monitor@example.net", PasswordFile: "testdata/password"}
	if !reflect.DeepEqual(s.Auth, wantAuth) {
		t.Errorf("submission.smtp.auth = %+v, want %+v", s.Auth, wantAuth)
	}
	if s.MailFrom != "monitor@example.net" || !reflect.DeepEqual(s.RcptTo, []string{"sink@example.net"}) || !s.Send || s.MinSendInterval != 15*time.Minute {
		t.Errorf("submission.smtp: mail_from %q rcpt_to %v send %v min_send_interval %s", s.MailFrom, s.RcptTo, s.Send, s.MinSendInterval)
	}

	mx := cfg.Modules["mx"]
	if mx.Prober != probes.ProberSMTP || mx.Timeout != probes.DefaultTimeout || mx.SMTP.TLS != probes.TLSStartTLS ||
		mx.SMTP.Send || mx.SMTP.Auth != nil || mx.SMTP.MinSendInterval != probes.DefaultMinSendInterval {
		t.Errorf("mx does not have the defaults: %+v", mx)
	}
	if !reflect.DeepEqual(mx.SMTP.RcptTo, []string{"postmaster@example.net"}) {
		t.Errorf("mx.smtp.rcpt_to = %v", mx.SMTP.RcptTo)
	}

	relay := cfg.Modules["relay_test"]
	if relay.IPProtocol != "ip6" || *relay.IPProtocolFallback || relay.SMTP.TLS != probes.TLSNone || !relay.SMTP.AllowInsecureAuth {
		t.Errorf("relay_test: ip_protocol %q fallback %v tls %q allow_insecure_auth %v",
			relay.IPProtocol, *relay.IPProtocolFallback, relay.SMTP.TLS, relay.SMTP.AllowInsecureAuth)
	}
	if relay.SMTP.Auth == nil || relay.SMTP.Auth.Mechanism != "PLAIN" || string(relay.SMTP.Auth.Password) != "hunter2" {
		t.Errorf("relay_test.smtp.auth = %+v", relay.SMTP.Auth)
	}
	if want := map[probes.Phase][]int{probes.PhaseRcpt: {550, 554}}; !reflect.DeepEqual(relay.SMTP.ExpectCodes, want) {
		t.Errorf("relay_test.smtp.expect_codes = %v, want %v", relay.SMTP.ExpectCodes, want)
	}

	if l := cfg.Modules["lmtp"]; l.Prober != probes.ProberLMTP || l.SMTP.TLS != probes.TLSNone {
		t.Errorf("lmtp: prober %q tls %q", l.Prober, l.SMTP.TLS)
	}

	// A target without a timeout has its module's: the scheduler reads a
	// target's settings as loaded, defaults and all.
	wantTargets := []*Target{
		{Name: "mail-submission", Address: "mail.example.net:587", Module: "submission", Interval: 2 * time.Minute, Timeout: 20 * time.Second},
		{Name: "mx1", Address: "mx1.example.net:25", Module: "mx", Interval: DefaultInterval, Timeout: probes.DefaultTimeout},
		{Name: "open-relay", Address: "mx1.example.net:25", Module: "relay_test", Interval: 30 * time.Second, Timeout: 5 * time.Second},
		{Name: "dovecot-lmtp", Address: "127.0.0.1:24", Module: "lmtp", Interval: 60 * time.Second, Timeout: probes.DefaultTimeout},
	}
	if len(cfg.Targets) != len(wantTargets) {
		t.Fatalf("got %d targets, want %d", len(cfg.Targets), len(wantTargets))
	}
	for i, want := range wantTargets {
		if got := cfg.Targets[i]; !reflect.DeepEqual(got, want) {
			t.Errorf("targets[%d] = %+v, want %+v", i, got, want)
		}
	}
}

// TestLoadFile_Invalid checks each broken file against the exact message
// an operator sees: file, line, the field's path and what is wrong.
func TestLoadFile_Delivery(t *testing.T) {
	cfg, err := LoadFile("testdata/good-delivery.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Modules["mailflow"]
	d := m.Delivery
	if m.Prober != probes.ProberDelivery || d.IMAP.Address != "imap.example.net:993" || d.IMAP.TLS != probes.TLSImplicit ||
		d.IMAP.Auth == nil || d.IMAP.Auth.Mechanism != "LOGIN" || d.PollInterval != 5*time.Second ||
		d.DeliveryTimeout != 2*time.Minute || d.AuthservID != "mx.example.net" || !d.RequireInbox ||
		!slices.Equal(d.RequireAuth, []string{"spf", "dkim", "dmarc"}) {
		t.Errorf("delivery = %+v", d)
	}
	if want := 2*time.Minute + probes.DefaultTimeout; m.Timeout != want {
		t.Errorf("timeout = %s, want delivery_timeout plus the default, %s", m.Timeout, want)
	}
	if !filepath.IsAbs(d.IMAP.Auth.PasswordFile) && !strings.HasPrefix(d.IMAP.Auth.PasswordFile, "testdata") {
		t.Errorf("imap password_file = %q, want it relative to the config file", d.IMAP.Auth.PasswordFile)
	}
	if !m.SendsMail() || m.ConcurrencyClass() != probes.ClassDelivery {
		t.Errorf("SendsMail %v, ConcurrencyClass %q; want true, delivery", m.SendsMail(), m.ConcurrencyClass())
	}
	ps := m.Phases()
	if got := ps[len(ps)-3:]; !slices.Equal(got, []probes.Phase{probes.PhaseIMAPConnect, probes.PhaseIMAPAuth, probes.PhaseWait}) {
		t.Errorf("phases end with %v, want imap_connect, imap_auth, wait", got)
	}
}

func TestLoadFile_Domain(t *testing.T) {
	cfg, err := LoadFile("testdata/good-domain.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Modules["posture"]
	d := m.Domain
	if m.Prober != probes.ProberDomain || d.MXPort != 25 || d.MaxMX != probes.DefaultMaxMX || d.DNSServer != "127.0.0.1:53" ||
		!slices.Equal(d.IPProtocols, []string{"ip4", "ip6"}) || !slices.Equal(d.DNSBLZones, []string{"zen.example.org"}) ||
		probes.Enabled(d.MTASTS) || !probes.Enabled(d.DANE) {
		t.Errorf("domain = %+v", d)
	}
	if m.Timeout != probes.DefaultDomainTimeout {
		t.Errorf("timeout = %s, want %s", m.Timeout, probes.DefaultDomainTimeout)
	}
	// The MX sessions run the named module's smtp keys.
	if d.MX == nil || d.MX.Prober != probes.ProberSMTP || d.MX.SMTP.EHLO != "probe.example.net" || d.MX.Timeout != probes.DefaultTimeout {
		t.Errorf("MX module = %+v", d.MX)
	}
	if m.SendsMail() || m.ConcurrencyClass() != probes.ClassDomain {
		t.Errorf("SendsMail %v, ConcurrencyClass %q; want false, domain", m.SendsMail(), m.ConcurrencyClass())
	}
	want := []probes.Phase{probes.PhaseMX, probes.PhasePTR, probes.PhaseSPF, probes.PhaseDMARC, probes.PhaseDKIM, probes.PhaseTLSRPT, probes.PhaseDANE, probes.PhaseDNSBL}
	if got := m.Phases(); !slices.Equal(got, want) {
		t.Errorf("phases = %v, want %v", got, want)
	}
}

func TestLoadFile_Invalid(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"invalid-unknown-key-top.yml", `3: target: unknown field "target"`},
		{"invalid-unknown-key-module.yml", `3: modules.mx.timout: unknown field "timout"`},
		{"invalid-unknown-key.yml", `5: modules.submission.smtp.tsl: unknown field "tsl"`},
		{"invalid-unknown-key-tls-config.yml", `7: modules.submission.smtp.tls_config.insecure_skip_verfy: unknown field "insecure_skip_verfy"`},
		{"invalid-unknown-key-tls-config-flow.yml", `4: modules.submission.smtp.tls_config.cafile: unknown field "cafile"`},
		{"invalid-unknown-key-auth.yml", `6: modules.submission.smtp.auth.user: unknown field "user"`},
		{"invalid-unknown-key-target.yml", `8: targets[1].adress: unknown field "adress"`},
		{"invalid-tls.yml", `4: modules.smtps.smtp.tls: unknown value "ssl" (want none, starttls or implicit)`},
		{"invalid-duration.yml", `3: modules.mx.timeout: invalid duration "15 seconds": want a number with a unit (ms, s, m or h), e.g. 15s or 1m30s`},
		{"invalid-duplicate-target.yml", `7: targets[1].name: duplicate target name "mx" (also targets[0])`},
		{"invalid-missing-module.yml", `7: targets[0].module: unknown module "smtp" (have: mx, submission)`},
		{"invalid-interval.yml", `7: targets[0].interval: must be at least 1s, got 500ms`},
		{"invalid-target-timeout.yml", `8: targets[0].timeout: timeout 45s exceeds interval 30s: runs would overlap`},
		{"invalid-module-timeout.yml", `5: targets[0].interval: module "slow" timeout 2m0s exceeds default interval 1m0s: runs would overlap (set a longer interval or a shorter per-target timeout)`},
		{"invalid-missing-address.yml", `4: targets[0].address: required`},
		{"invalid-no-modules.yml", `1: modules: at least one module is required`},
		{"invalid-empty.yml", `modules: at least one module is required`},
		{"invalid-syntax.yml", `4: did not find expected key`},
		{"invalid-type.yml", `5: modules.mx.smtp.rcpt_to: want a list, got an integer 5`},
		{"invalid-expect-codes.yml", `7: modules.relay.smtp.expect_codes.rcpt: code 5540 is not an SMTP reply code (200-599)`},
		{"invalid-password-file.yml", `6: modules.submission.smtp.auth.password_file: stat testdata/no-such-password: no such file or directory`},
		{"invalid-password-file-directory.yml", `6: modules.submission.smtp.auth.password_file: testdata is a directory, not a file`},
		{"invalid-control-mail-from.yml", `4: modules.mx.smtp.mail_from: must not contain control characters, found U+0000 at byte 7`},
		{"invalid-control-target-name.yml", `5: targets[0].name: must not contain control characters, found U+000A at byte 2`},
		{"invalid-delivery-require-auth.yml", `11: modules.mailflow.delivery.require_auth[1]: unknown method "arc" (want spf, dkim or dmarc)`},
		{"invalid-delivery-address.yml", `8: modules.mailflow.delivery.imap.address: required`},
		{"invalid-domain-mx-module.yml", `5: modules.posture.domain.mx_module: unknown module "inbund"`},
		{"invalid-domain-target.yml", `5: targets[0].address: target "mx.example.com:25" is not a mail domain (a domain name such as example.com, without port)`},
		{"invalid-domain-dns-server.yml", `5: modules.posture.domain.dns_server: host must be an IP address, got "resolver.example.net"`},
		{"invalid-control-module-name.yml", `4: modules.m\x00x: module name must not contain control characters, found U+0000 at byte 1`},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(strings.TrimSuffix(tt.file, ".yml"), func(t *testing.T) {
			path := "testdata/" + tt.file
			// Errors without a line read "file: field: msg".
			want := path + ":" + tt.want
			if tt.want[0] < '0' || tt.want[0] > '9' {
				want = path + ": " + tt.want
			}
			cfg, err := LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile(%s) = %+v, want error %q", path, cfg, want)
			}
			if err.Error() != want {
				t.Errorf("LoadFile(%s) error\n got: %s\nwant: %s", path, err, want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error is %T, want *ConfigError", err)
			}
		})
	}
	// Every invalid file must have a test case, so that none is dead.
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
}

// parseCase is a document for Parse and the error it must return.
type parseCase struct{ name, yaml, want string }

func checkParseErrors(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "x.yml")
			if err == nil || err.Error() != tc.want {
				t.Errorf("Parse error\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
}

// TestParse_TypeErrorField checks that a type error inside nested flow
// collections on one line names the value at fault, not its parent.
func TestParse_TypeErrorField(t *testing.T) {
	tests := []parseCase{
		{
			name: "mapping for a list",
			yaml: "modules:\n  mx:\n    smtp:\n      rcpt_to: {a: b}\n",
			want: "x.yml:4: modules.mx.smtp.rcpt_to: want a list, got a mapping",
		},
		{
			name: "mapping for the targets list",
			yaml: "targets:\n  mx: {}\n",
			want: "x.yml:2: targets: want a list, got a mapping",
		},
		{
			name: "string in a list of codes",
			yaml: "modules:\n  mx:\n    smtp:\n      expect_codes: {rcpt: [abc]}\n",
			want: `x.yml:4: modules.mx.smtp.expect_codes.rcpt[0]: want an integer, got a string "abc"`,
		},
		{
			name: "integer duration",
			yaml: "modules:\n  mx:\n    timeout: 15\n",
			want: `x.yml:3: modules.mx.timeout: invalid duration "15": want a number with a unit (ms, s, m or h), e.g. 15s or 1m30s`,
		},
		{
			name: "list for a string",
			yaml: "modules:\n  mx: {}\ntargets:\n  - name: [a]\n",
			want: "x.yml:4: targets[0].name: want a string, got a list",
		},
		{
			name: "mapping for a secret",
			yaml: "modules:\n  mx:\n    smtp:\n      auth: {username: u, password: {a: b}}\n",
			want: "x.yml:4: modules.mx.smtp.auth.password: want a string, got a mapping",
		},
		{
			name: "list for a duration",
			yaml: "modules:\n  mx:\n    timeout: [1, 2]\n",
			want: "x.yml:3: modules.mx.timeout: want a duration such as 15s or 1m30s, got a list",
		},
		{
			name: "mapping for a duration",
			yaml: "modules:\n  mx: {}\ntargets:\n  - {name: a, address: b, module: mx, interval: {s: 1}}\n",
			want: "x.yml:4: targets[0].interval: want a duration such as 15s or 1m30s, got a mapping",
		},
		{
			name: "mapping for a TLS version",
			yaml: "modules:\n  mx:\n    smtp:\n      tls_config: {min_version: {a: b}}\n",
			want: "x.yml:4: modules.mx.smtp.tls_config.min_version: want a string, got a mapping",
		},
		{
			name: "top level list",
			yaml: "- modules\n",
			want: "x.yml:1: want a mapping, got a list",
		},
		{
			name: "duplicate key",
			yaml: "modules:\n  mx:\n    timeout: 5s\n    timeout: 6s\n",
			want: `x.yml:4: modules.mx.timeout: mapping key "timeout" already defined at line 3`,
		},
		{
			name: "tab indentation",
			yaml: "modules:\n  mx:\n\tsmtp: {}\n",
			want: "x.yml:3: found character that cannot start any token",
		},
		{
			name: "unclosed flow list after a multi-line one",
			yaml: "modules:\n  mx:\n    smtp:\n      rcpt_to: [a@b,\n        c@d]\n  bad: [\n",
			want: "x.yml:6: did not find expected node content",
		},
	}
	checkParseErrors(t, tests)
}

// TestParse_FieldOfNode checks mistakes whose line or field only the node
// at fault knows: the YAML library's message names neither, or names a
// line that holds several keys.
func TestParse_FieldOfNode(t *testing.T) {
	tests := []parseCase{
		{
			name: "tls_config refused by its own decoding",
			yaml: "modules:\n  mx:\n    smtp:\n      tls_config: {ca: x, ca_file: y}\n",
			want: "x.yml:4: modules.mx.smtp.tls_config: at most one of ca, ca_file & ca_ref must be configured",
		},
		{
			name: "unknown TLS version",
			yaml: "modules:\n  mx:\n    smtp:\n      tls_config:\n        min_version: TLS9\n",
			want: "x.yml:5: modules.mx.smtp.tls_config.min_version: unknown TLS version: TLS9",
		},
		{
			name: "duplicate module in a flow mapping",
			yaml: "modules: {mx: {}, mx: {}}\n",
			want: `x.yml:1: modules.mx: mapping key "mx" already defined at line 1`,
		},
		{
			name: "unknown key named like an earlier key on its line",
			yaml: "modules:\n  mx:\n    smtp: {tls: none, auth: {tls: x}}\n",
			want: `x.yml:3: modules.mx.smtp.auth.tls: unknown field "tls"`,
		},
		{
			name: "wrong value named like an earlier value on its line",
			yaml: "modules:\n  mx: {smtp: {ehlo: 5, rcpt_to: 5}}\n",
			want: "x.yml:2: modules.mx.smtp.rcpt_to: want a list, got an integer 5",
		},
		{
			name: "unknown key merged in",
			yaml: "modules:\n  base: &base {smtp: {tls: none}}\n  mx:\n    <<: *base\n    smtp: {tsl: none}\n",
			want: `x.yml:5: modules.mx.smtp.tsl: unknown field "tsl"`,
		},
		{
			name: "invalid value over a merged one",
			yaml: "modules:\n  base: &base {ip_protocol: ip4}\n  mx:\n    <<: *base\n    ip_protocol: ip5\n",
			want: `x.yml:5: modules.mx.ip_protocol: unknown value "ip5" (want ip4, ip6 or both)`,
		},
		{
			name: "empty target",
			yaml: "modules:\n  mx:\ntargets:\n  - ~\n",
			want: "x.yml:4: targets[0]: empty target",
		},
	}
	checkParseErrors(t, tests)
}

// TestParse_AnchorsAndMergeKeys checks that modules may share settings
// through YAML anchors and merge keys, as the YAML library decodes them.
func TestParse_AnchorsAndMergeKeys(t *testing.T) {
	const doc = `modules:
  base: &base
    timeout: 10s
    smtp: &smtp {tls: none, mail_from: monitor@example.net, rcpt_to: [sink@example.net]}
  derived:
    <<: *base
    timeout: 5s
  other:
    smtp: *smtp
targets:
  - &target {name: a, address: "127.0.0.1:25", module: derived, interval: 1m}
  - {<<: *target, name: b}
`
	cfg, err := Parse([]byte(doc), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Modules["derived"]
	if d.Timeout != 5*time.Second || d.SMTP.TLS != probes.TLSNone || d.SMTP.MailFrom != "monitor@example.net" {
		t.Errorf("derived: timeout %s tls %q mail_from %q, want 5s none monitor@example.net", d.Timeout, d.SMTP.TLS, d.SMTP.MailFrom)
	}
	if o := cfg.Modules["other"]; !reflect.DeepEqual(o.SMTP.RcptTo, []string{"sink@example.net"}) {
		t.Errorf("other: rcpt_to %v", o.SMTP.RcptTo)
	}
	if b := cfg.Targets[1]; b.Name != "b" || b.Address != "127.0.0.1:25" || b.Module != "derived" {
		t.Errorf("targets[1] = %+v", b)
	}
}

// TestParse_ExcessiveAliasing checks that a document of aliases to aliases
// (a "billion laughs") is refused, and soon: the check before decoding
// looks at each anchor once, however often it is repeated.
func TestParse_ExcessiveAliasing(t *testing.T) {
	var b strings.Builder
	b.WriteString("modules:\n  l0: &l0 {timeout: 1s}\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d {<<: [%s]}\n", i, i, strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9)+fmt.Sprintf("*l%d", i-1))
	}
	_, err := Parse([]byte(b.String()), "x.yml")
	if want := "x.yml: document contains excessive aliasing"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestLoadFile_Missing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yml")
	_, err := LoadFile(path)
	if err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file %s", err, path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v is not os.ErrNotExist", err)
	}
}

// TestConfig_SecretsMasked checks what /config shows: the password is
// masked whether the config is shown as YAML or as JSON, and the
// password_file path (not a secret) stays visible.
func TestConfig_SecretsMasked(t *testing.T) {
	cfg, err := LoadFile("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	const password = "hunter2"

	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	if strings.Contains(string(y), password) {
		t.Errorf("YAML shows the password:\n%s", y)
	}
	if !strings.Contains(string(y), "password: <secret>") {
		t.Errorf("YAML does not show password as <secret>:\n%s", y)
	}
	if !strings.Contains(string(y), "password_file: testdata/password") {
		t.Errorf("YAML does not show password_file:\n%s", y)
	}

	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if strings.Contains(string(j), password) {
		t.Errorf("JSON shows the password:\n%s", j)
	}
	if !strings.Contains(string(j), `"password":"\u003csecret\u003e"`) {
		t.Errorf("JSON does not show password as <secret>:\n%s", j)
	}

	// What is shown must load again, to the same config apart from the
	// masked secret: /config output is a valid starting point for a file.
	var again Config
	if err := yaml.Unmarshal(y, &again); err != nil {
		t.Fatalf("marshalled YAML does not decode: %v\n%s", err, y)
	}
	if got := again.Modules["relay_test"].SMTP.Auth.Password; got != "<secret>" {
		t.Errorf("re-read password = %q, want <secret>", got)
	}
	if got := again.Modules["submission"].Timeout; got != 20*time.Second {
		t.Errorf("re-read submission timeout = %s, want 20s", got)
	}
}

// TestLoadFile_RelativePaths checks that relative file paths are resolved
// against the configuration file's directory, not the working directory.
func TestLoadFile_RelativePaths(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{"pw": []byte("x\n"), "ca.pem": probestest.NewCA(t).CertPEM}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "smtp_exporter.yml")
	body := "modules:\n  m:\n    smtp:\n      tls_config: {ca_file: ca.pem}\n      auth: {username: u, password_file: pw}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Modules["m"].SMTP
	if s.Auth.PasswordFile != filepath.Join(dir, "pw") || s.TLSConfig.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("password_file=%q ca_file=%q, want them under %s", s.Auth.PasswordFile, s.TLSConfig.CAFile, dir)
	}
}

func TestParse_AddressAndTLSAndDocuments(t *testing.T) {
	checkParseErrors(t, []parseCase{
		{"bad port", "modules: {mx: {smtp: {tls: none}}}\ntargets:\n  - {name: a, address: \"mx.example.net:abc\", module: mx}\n",
			`x.yml:3: targets[0].address: target "mx.example.net:abc" has an invalid port "abc"`},
		{"scheme", "modules: {mx: {smtp: {tls: none}}}\ntargets:\n  - {name: a, address: \"smtp://mx.example.net:25\", module: mx}\n",
			`x.yml:3: targets[0].address: target "smtp://mx.example.net:25" is not host:port (no scheme, path or spaces)`},
		{"bad inline key", "modules:\n  mx:\n    smtp:\n      tls_config: {cert: nonsense, key: nonsense}\n",
			`x.yml:4: modules.mx.smtp.tls_config: unable to use specified client cert (inline) & key (inline): tls: failed to find any PEM data in certificate input`},
		{"two documents", "modules: {mx: {}}\n---\nmodules: {other: {}}\n",
			`x.yml:2: more than one YAML document (---); put everything in one`},
		{"trailing empty document", "modules: {mx: {smtp: {tls: bogus}}}\n---\n# nothing\n",
			`x.yml:1: modules.mx.smtp.tls: unknown value "bogus" (want none, starttls or implicit)`},
	})
}

// TestParse_SyntaxErrorLineInLargeFile checks the line of a syntax error
// deep in a large file, which is found by bisecting the file's prefixes.
func TestParse_SyntaxErrorLineInLargeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("modules:\n  mx:\n    smtp:\n      tls: none\ntargets:\n")
	for i := 0; i < 3000; i++ {
		indent := "    "
		if i == 2500 {
			indent = "     " // one space too many: line 5+3*2500+2
		}
		fmt.Fprintf(&b, "  - name: t%d\n%saddress: 127.0.0.1:25\n    module: mx\n", i, indent)
	}
	_, err := Parse([]byte(b.String()), "big.yml")
	want := fmt.Sprintf("big.yml:%d: mapping values are not allowed in this context", 5+3*2500+2)
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestValidate_TargetNameNotUTF8 checks names that YAML cannot carry (its
// parser refuses invalid UTF-8) but a Config built in code can: label
// values must be UTF-8.
func TestValidate_TargetNameNotUTF8(t *testing.T) {
	cfg := &Config{
		Modules: map[string]*probes.Module{"mx": {SMTP: probes.SMTPModule{TLS: probes.TLSNone}}},
		Targets: []*Target{{Name: "mx\xff1", Address: "127.0.0.1:25", Module: "mx"}},
	}
	err := cfg.validate("", nil)
	want := "targets[0].name: is not valid UTF-8 (at byte 2)"
	if err == nil || err.Error() != ": "+want {
		t.Errorf("validate() = %v, want %s", err, want)
	}
}

// TestLoadFile_TooLarge checks that a configuration file over the limit is
// refused, naming the file and the limit, without being read whole: a
// sparse file says its size, /dev/zero does not and never ends.
func TestLoadFile_TooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxConfigFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, file := range []string{path, "/dev/zero"} {
		_, err := LoadFile(file)
		want := file + ": larger than 16 MiB, the limit for a configuration file"
		if err == nil || err.Error() != want {
			t.Errorf("LoadFile(%s) = %v, want %s", file, err, want)
		}
	}
}

// TestParse_MessageErrors: a mistake in the test message's settings is
// reported at its own line and key, header names with dots included.
func TestParse_MessageErrors(t *testing.T) {
	const head = "modules:\n  m:\n    smtp:\n      message:\n"
	checkParseErrors(t, []parseCase{
		{
			name: "header of the prober's",
			yaml: head + "        headers:\n          Subject: Weekly report\n          Message-ID: \"<a@example.test>\"\n",
			want: "x.yml:7: modules.m.smtp.message.headers.Message-ID: Message-ID is the prober's own and cannot be set: it carries the probe's token, by which the message is found, matched to its bounces and cleaned up",
		},
		{
			name: "CR LF in a header value",
			yaml: head + "        headers:\n          X-Report: \"weekly\\r\\nBcc: victim@example.org\"\n",
			want: "x.yml:6: modules.m.smtp.message.headers.X-Report: must not contain CR, LF or NUL, found U+000D at byte 6: it would end the header and start another",
		},
		{
			name: "header name with a dot and a space",
			yaml: head + "        headers:\n          X-Ok: fine\n          X.Bad Name: v\n",
			want: `x.yml:7: modules.m.smtp.message.headers.X.Bad Name: header name "X.Bad Name" is not an RFC 5322 field name: want printable US-ASCII without spaces or ":"`,
		},
		{
			name: "flow style",
			yaml: head + "        headers: {Date: now}\n",
			want: "x.yml:5: modules.m.smtp.message.headers.Date: Date is the prober's own and cannot be set: it is the moment of sending, new at every run",
		},
		{
			name: "8-bit body",
			yaml: head + "        body: |\n          Grüße\n",
			want: "x.yml:5: modules.m.smtp.message.body: must be US-ASCII, found byte 0xC3 at byte 2 (an 8-bit body needs 8BITMIME, which the probe does not support)",
		},
		{
			name: "body and body_file",
			yaml: head + "        body: hello\n        body_file: /dev/null\n",
			want: "x.yml:6: modules.m.smtp.message.body_file: set body or body_file, not both",
		},
	})
}

// TestLoadFile_MessageBodyFile: body_file is relative to the configuration
// file and read at load.
func TestLoadFile_MessageBodyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "body.txt"), []byte("Quarterly figures attached.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "smtp_exporter.yml")
	if err := os.WriteFile(file, []byte("modules:\n  m:\n    smtp:\n      message: {body_file: body.txt}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mc := cfg.Modules["m"].SMTP.Message
	if body, ok := mc.CustomBody(); mc.BodyFile != filepath.Join(dir, "body.txt") || !ok || body != "Quarterly figures attached.\r\n" {
		t.Errorf("body_file %q, body %q (%t), want the file under %s read", mc.BodyFile, body, ok, dir)
	}
	if err := os.Remove(filepath.Join(dir, "body.txt")); err != nil {
		t.Fatal(err)
	}
	want := file + ":4: modules.m.smtp.message.body_file: stat " + filepath.Join(dir, "body.txt") + ": no such file or directory"
	if _, err := LoadFile(file); err == nil || err.Error() != want {
		t.Errorf("LoadFile without the body file = %v\nwant %s", err, want)
	}
}
