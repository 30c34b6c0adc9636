package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/delivery"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// runMain runs the whole program in process and returns its exit status
// and output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// dmarcServer answers RCPT with Gmail's DMARC rejection.
func dmarcServer(t *testing.T) *probestest.ScriptServer {
	return probestest.NewScriptServer(t, probestest.Dialog{
		Replies: map[string]string{
			"RCPT": "550 5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy",
		},
	}.Serve)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jsonResult is the part of the probe command's JSON output the tests read.
type jsonResult struct {
	Target       string   `json:"target"`
	Module       string   `json:"module"`
	Success      bool     `json:"success"`
	Phase        string   `json:"phase"`
	Reason       string   `json:"reason"`
	Temporary    bool     `json:"temporary"`
	Code         int      `json:"code"`
	EnhancedCode string   `json:"enhanced_code"`
	ReplyText    string   `json:"reply_text"`
	Duration     *float64 `json:"duration_seconds"`
	Phases       []struct {
		Name         string   `json:"name"`
		Duration     *float64 `json:"duration_seconds"`
		Code         *int     `json:"code"`
		EnhancedCode *string  `json:"enhanced_code"`
		Reason       *string  `json:"reason"`
		Text         *string  `json:"text"`
	} `json:"phases"`
	TLS *struct {
		Version        string `json:"version"`
		Cipher         string `json:"cipher"`
		ServerName     string `json:"server_name"`
		Verified       bool   `json:"verified"`
		EarliestExpiry string `json:"earliest_expiry"`
		Certificates   []struct {
			Subject  string   `json:"subject"`
			DNSNames []string `json:"dns_names"`
			NotAfter string   `json:"not_after"`
		} `json:"certificates"`
	} `json:"tls"`
	Transcript []struct {
		Dir  string `json:"dir"`
		Text string `json:"text"`
	} `json:"transcript"`
}

func decodeResult(t *testing.T, stdout string) jsonResult {
	t.Helper()
	var r jsonResult
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode JSON output: %v\n%s", err, stdout)
	}
	// Presence checks need the raw object: tls must be there, as null.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("decode JSON output: %v", err)
	}
	for _, key := range []string{"success", "phase", "reason", "temporary", "code", "enhanced_code", "duration_seconds", "phases", "tls", "transcript"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("JSON output has no %q key:\n%s", key, stdout)
		}
	}
	return r
}

func TestProbe_DMARCRejectionText(t *testing.T) {
	srv := dmarcServer(t)
	code, stdout, stderr := runMain(t, "probe", "--tls=none",
		"--mail-from=a@example.test", "--rcpt-to=b@example.test", srv.Addr)
	if code != 1 {
		t.Fatalf("exit code = %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Transcript of " + srv.Addr + " (module cli):",
		"S: 220 script.test ESMTP probestest",
		"C: MAIL FROM:<a@example.test>",
		"C: RCPT TO:<b@example.test>",
		"S: 550 5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy",
		"C: QUIT",
		"Result: FAILED in phase rcpt",
		"reason=dmarc (permanent)",
		"code=550 enhanced_code=5.7.26",
		"server said: 5.7.26 Unauthenticated email from example.test",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// Phases are listed with their reply, the failing one tagged and with
	// its codes only: the verdict quotes it.
	var rcptLine string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "rcpt ") {
			rcptLine = l
		}
	}
	if !strings.HasSuffix(rcptLine, " 550 5.7.26  [dmarc]") {
		t.Errorf("rcpt phase line = %q, want its codes and [dmarc]", rcptLine)
	}
}

func TestProbe_DMARCRejectionJSON(t *testing.T) {
	srv := dmarcServer(t)
	code, stdout, stderr := runMain(t, "probe", "--output=json", "--tls=none",
		"--mail-from=a@example.test", "--rcpt-to=b@example.test", srv.Addr)
	if code != 1 {
		t.Fatalf("exit code = %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r := decodeResult(t, stdout)
	if r.Success || r.Phase != "rcpt" || r.Reason != "dmarc" || r.Temporary || r.Code != 550 || r.EnhancedCode != "5.7.26" {
		t.Errorf("verdict = success %v phase %q reason %q temporary %v code %d enhanced_code %q, want false rcpt dmarc false 550 5.7.26",
			r.Success, r.Phase, r.Reason, r.Temporary, r.Code, r.EnhancedCode)
	}
	if !strings.Contains(r.ReplyText, "DMARC policy") {
		t.Errorf("reply_text = %q", r.ReplyText)
	}
	if r.Target != srv.Addr || r.Module != "cli" {
		t.Errorf("target %q module %q, want %q cli", r.Target, r.Module, srv.Addr)
	}
	if r.Duration == nil || *r.Duration <= 0 {
		t.Errorf("duration_seconds = %v, want > 0", r.Duration)
	}
	if r.TLS != nil {
		t.Errorf("tls = %+v, want null without TLS", r.TLS)
	}

	var names []string
	for _, p := range r.Phases {
		names = append(names, p.Name)
		if p.Duration == nil || p.Code == nil || p.EnhancedCode == nil || p.Reason == nil || p.Text == nil {
			t.Errorf("phase %q lacks one of duration_seconds, code, enhanced_code, reason, text", p.Name)
		}
	}
	if got, want := strings.Join(names, " "), "resolve connect banner ehlo mail rcpt quit"; got != want {
		t.Fatalf("phases = %q, want %q", got, want)
	}
	rcpt := r.Phases[len(r.Phases)-2]
	if *rcpt.Code != 550 || *rcpt.EnhancedCode != "5.7.26" || *rcpt.Reason != "dmarc" || !strings.Contains(*rcpt.Text, "DMARC") {
		t.Errorf("rcpt phase = code %d enhanced %q reason %q text %q", *rcpt.Code, *rcpt.EnhancedCode, *rcpt.Reason, *rcpt.Text)
	}
	if mail := r.Phases[len(r.Phases)-3]; *mail.Code != 250 || *mail.Reason != "ok" {
		t.Errorf("mail phase = code %d reason %q, want 250 ok", *mail.Code, *mail.Reason)
	}
	var sawReject bool
	for _, l := range r.Transcript {
		if l.Dir == "S" && strings.HasPrefix(l.Text, "550 5.7.26") {
			sawReject = true
		}
	}
	if !sawReject {
		t.Errorf("transcript lacks the server's 550 5.7.26: %+v", r.Transcript)
	}
}

func TestProbe_STARTTLSSendJSON(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert})
	code, stdout, stderr := runMain(t, "probe", "--output=json",
		"--ca-file="+ca.WriteCAFile(t), "--server-name=localhost",
		"--mail-from=monitor@example.test", "--rcpt-to=sink@example.test", "--send",
		"--timeout=10s", srv.Addr)
	if code != 0 {
		t.Fatalf("exit code = %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r := decodeResult(t, stdout)
	if !r.Success || r.Reason != "ok" {
		t.Errorf("success %v reason %q, want true ok", r.Success, r.Reason)
	}
	var names []string
	for _, p := range r.Phases {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, " "), "resolve connect banner ehlo starttls mail rcpt data quit"; got != want {
		t.Errorf("phases = %q, want %q", got, want)
	}
	if r.TLS == nil {
		t.Fatalf("tls is null after STARTTLS:\n%s", stdout)
	}
	if !strings.HasPrefix(r.TLS.Version, "TLS 1.") || r.TLS.Cipher == "" || !r.TLS.Verified || r.TLS.ServerName != "localhost" {
		t.Errorf("tls = version %q cipher %q verified %v server_name %q", r.TLS.Version, r.TLS.Cipher, r.TLS.Verified, r.TLS.ServerName)
	}
	expiry, err := time.Parse(time.RFC3339, r.TLS.EarliestExpiry)
	if err != nil {
		t.Errorf("earliest_expiry %q is not RFC 3339: %v", r.TLS.EarliestExpiry, err)
	} else if want := cert.Leaf.NotAfter; !expiry.Equal(want.Truncate(time.Second)) {
		t.Errorf("earliest_expiry = %s, want the leaf's %s", expiry, want)
	}
	if len(r.TLS.Certificates) != 2 {
		t.Fatalf("got %d certificates, want leaf and CA", len(r.TLS.Certificates))
	}
	if leaf := r.TLS.Certificates[0]; !strings.Contains(leaf.Subject, "CN=localhost") || leaf.NotAfter == "" {
		t.Errorf("certificates[0] = %+v, want the localhost leaf", leaf)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].From != "monitor@example.test" {
		t.Errorf("server received %+v, want one message from monitor@example.test", msgs)
	}
}

func TestProbe_ConfigModuleWithFlagOverrides(t *testing.T) {
	srv := dmarcServer(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "smtp_exporter.yml", `
modules:
  dmarc_check:
    timeout: 5s
    smtp:
      tls: starttls
      mail_from: config@example.test
      rcpt_to: [sink@example.test]
`)
	// The module asks for STARTTLS, which the script does not offer: the
	// flags turn it off and change the sender.
	code, stdout, stderr := runMain(t, "--config.file="+cfg, "probe", "--module=dmarc_check",
		"--tls=none", "--mail-from=flag@example.test", "--output=json", srv.Addr)
	if code != 1 {
		t.Fatalf("exit code = %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r := decodeResult(t, stdout)
	if r.Module != "dmarc_check" || r.Phase != "rcpt" || r.Reason != "dmarc" {
		t.Errorf("module %q phase %q reason %q, want dmarc_check rcpt dmarc", r.Module, r.Phase, r.Reason)
	}
	received := strings.Join(srv.Received(), "\n")
	if !strings.Contains(received, "MAIL FROM:<flag@example.test>") || !strings.Contains(received, "RCPT TO:<sink@example.test>") {
		t.Errorf("server received:\n%s\nwant the flag's sender and the module's recipient", received)
	}
	if strings.Contains(received, "STARTTLS") {
		t.Errorf("probe sent STARTTLS despite --tls=none:\n%s", received)
	}

	// Without the override the module's own settings apply.
	code, stdout, _ = runMain(t, "--config.file="+cfg, "probe", "--module=dmarc_check", srv.Addr)
	if code != 1 || !strings.Contains(stdout, "Result: FAILED in phase starttls") || !strings.Contains(stdout, "reason=starttls_unavailable") {
		t.Errorf("exit %d, want a STARTTLS failure from the module's tls: starttls:\n%s", code, stdout)
	}
}

func TestProbe_UnknownModule(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "smtp_exporter.yml", "modules:\n  mx: {}\n  submission: {}\n")
	code, stdout, stderr := runMain(t, "--config.file="+cfg, "probe", "--module=nope", "127.0.0.1:1")
	if code != 2 {
		t.Fatalf("exit code = %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := `smtp_exporter: module "nope" not found in ` + cfg + " (have: mx, submission)\n"
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestProbe_InvalidConfig(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "smtp_exporter.yml", "modules:\n  mx:\n    smtp:\n      tsl: none\n")
	code, _, stderr := runMain(t, "--config.file="+cfg, "probe", "--module=mx", "127.0.0.1:1")
	if code != 2 {
		t.Fatalf("exit code = %d, want 2; stderr:\n%s", code, stderr)
	}
	want := "smtp_exporter: " + cfg + `:4: modules.mx.smtp.tsl: unknown field "tsl"` + "\n"
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

func TestProbe_InvalidFlags(t *testing.T) {
	// Flags that make an invalid module are refused before any connection.
	code, _, stderr := runMain(t, "probe", "--send", "127.0.0.1:1")
	if code != 2 {
		t.Fatalf("exit code = %d, want 2; stderr:\n%s", code, stderr)
	}
	if want := "smtp_exporter: invalid module: smtp.send: needs at least one rcpt_to\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}

	code, _, stderr = runMain(t, "probe", "--tls=ssl", "127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "ssl") {
		t.Errorf("--tls=ssl: exit %d, stderr %q; want 2 and a message naming the value", code, stderr)
	}
}

func TestServe_ConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", "modules:\n  mx: {}\ntargets:\n  - {name: mx1, address: mx1.example.net:25, module: mx}\n")
	bad := writeFile(t, dir, "bad.yml", "modules:\n  mx: {}\ntargets:\n  - {name: mx1, address: mx1.example.net:25, module: smtp}\n")

	code, _, stderr := runMain(t, "--config.file="+good, "serve", "--config.check")
	if code != 0 {
		t.Errorf("good config: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, `msg="Configuration is valid"`) || !strings.Contains(stderr, "modules=1 targets=1") {
		t.Errorf("good config: stderr = %q", stderr)
	}

	code, _, stderr = runMain(t, "--config.file="+bad, "serve", "--config.check")
	if code != 1 {
		t.Errorf("bad config: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, bad+`:4: targets[0].module: unknown module \"smtp\" (have: mx)`) {
		t.Errorf("bad config: stderr = %q, want file:line, field and message", stderr)
	}

	// serve is the default command.
	if code, _, stderr := runMain(t, "--config.file="+good, "--config.check"); code != 0 {
		t.Errorf("default command --config.check: exit %d; stderr:\n%s", code, stderr)
	}
	if code, _, _ := runMain(t, "--config.file="+filepath.Join(dir, "missing.yml"), "serve", "--config.check"); code != 1 {
		t.Errorf("missing config: exit %d, want 1", code)
	}
}

// TestServe_ConfigCheckExample checks that the documented example config is
// valid as shipped, and what it holds: its password file is the placeholder
// beside it, named relative to it.
func TestServe_ConfigCheckExample(t *testing.T) {
	cfg := "../../examples/smtp_exporter.yml"
	if code, _, stderr := runMain(t, "--config.file="+cfg, "serve", "--config.check"); code != 0 {
		t.Errorf("example config: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	c, err := config.LoadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(slices.Sorted(maps.Keys(c.Modules)), " "), "lmtp mx open_relay smtps submission"; got != want {
		t.Errorf("example modules = %q, want %q", got, want)
	}
	if len(c.Targets) != 5 {
		t.Errorf("example has %d targets, want 5", len(c.Targets))
	}
}

// TestServe_ConfigCheckQuickstart checks the config README.md's first
// command runs with, as it is, from the repository root.
func TestServe_ConfigCheckQuickstart(t *testing.T) {
	if code, _, stderr := runMain(t, "--config.file=../../examples/quickstart.yml", "--config.check"); code != 0 {
		t.Errorf("quickstart config: exit %d, want 0; stderr:\n%s", code, stderr)
	}
}

// TestE2E_ProbeCommand_Postfix runs `smtp_exporter probe` against the real
// Postfix: STARTTLS, AUTH PLAIN and a real message, as an operator would.
func TestE2E_ProbeCommand_Postfix(t *testing.T) {
	env := probestest.PostfixFromEnv(t)
	if env == nil {
		t.Skip("no real Postfix configured; make test-e2e runs this test")
	}
	cfg := writeFile(t, t.TempDir(), "smtp_exporter.yml", "modules:\n"+env.SendModuleYAML("submission", ""))
	password, err := os.ReadFile(env.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runMain(t, "--config.file="+cfg, "probe", "--module=submission", env.Addr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"C: STARTTLS", "S: 220 2.0.0 Ready to start TLS", "C: AUTH PLAIN <redacted>", "S: 235 2.7.0 Authentication successful",
		"C: DATA", "queued as", "C: QUIT", "verified: true", "Result: SUCCESS"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, strings.TrimSpace(string(password))) {
		t.Error("the password appears in the output")
	}

	code, stdout, _ = runMain(t, "--config.file="+cfg, "probe", "--module=submission", "--output=json", env.Addr)
	r := decodeResult(t, stdout)
	var names []string
	for _, p := range r.Phases {
		names = append(names, p.Name)
	}
	if code != 0 || !r.Success || strings.Join(names, " ") != "resolve connect banner ehlo starttls auth mail rcpt data quit" {
		t.Errorf("exit %d success=%t phases=%v", code, r.Success, names)
	}
	if r.TLS == nil || !r.TLS.Verified || r.TLS.ServerName != env.ServerName {
		t.Errorf("tls = %+v", r.TLS)
	}
}

// TestProbe_DeliveryModuleText runs a delivery module from the config
// file against an in-process mail path: the text output shows the found
// message's flags, the clean-up counts, the bounce mailbox's state and the
// IMAP leg's TLS, and never a password.
func TestProbe_DeliveryModuleText(t *testing.T) {
	const (
		imapUser, imapPass     = "probe@example.test", "Imap-Pass-7x9"
		bounceUser, bouncePass = "sender@example.test", "Bnc-Wrong-3k5"
	)
	ca := probestest.NewCA(t)
	cert := ca.Valid(t, "127.0.0.1", "localhost")
	mailbox := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: imapUser, Password: imapPass,
		TLS: probes.TLSImplicit, Cert: &cert, UIDPlus: true})
	bounces := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: bounceUser, Password: "the-right-one"})
	srv := probestest.NewScriptServer(t, probestest.Dialog{Deliver: func(msg string) {
		now := time.Now()
		hdr := "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=example.test; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\n" +
			"Received: from submit.example.test by mx.example.test; " + now.Format(time.RFC1123Z) + "\r\n"
		uid := mailbox.Deliver(t, "INBOX", hdr+msg, now)
		mailbox.Flag(t, "INBOX", uid, `\Flagged`, "$Junk")
	}}.Serve)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "smtp_exporter.yml", `
modules:
  mailflow:
    prober: delivery
    timeout: 10s
    smtp:
      tls: none
      mail_from: sender@example.test
      rcpt_to: [`+imapUser+`]
    delivery:
      imap:
        address: `+mailbox.Addr+`
        tls_config: {ca_file: `+ca.WriteCAFile(t)+`}
        auth: {mechanism: login, username: `+imapUser+`, password: `+imapPass+`}
      bounce_imap:
        address: `+bounces.Addr+`
        tls: none
        allow_insecure_auth: true
        auth: {mechanism: login, username: `+bounceUser+`, password: `+bouncePass+`}
      poll_interval: 20ms
      delivery_timeout: 3s
      authserv_id: mx.example.test
`)
	loaded, err := config.LoadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A leftover of an earlier run that arrived an hour after it was sent.
	prefix := delivery.TokenPrefix(srv.Addr, loaded.Modules["mailflow"])
	arrived := time.Now().Add(-time.Hour)
	mailbox.Deliver(t, "INBOX", "Date: "+arrived.Add(-time.Hour).Format(time.RFC1123Z)+"\r\nFrom: sender@example.test\r\n"+
		delivery.ProbeHeader+": "+prefix+"0123456789abcdef01234567\r\n\r\nbody\r\n", arrived)

	code, stdout, stderr := runMain(t, "--config.file="+cfg, "probe", "--module=mailflow", srv.Addr)
	if code != 0 {
		t.Fatalf("exit code = %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Delivery: in inbox after ",
		"  flags: \\Flagged $Junk\n",
		"  cleaned up: 1 probe messages of earlier runs (1 late), 0 old bounces\n",
		"  bounce mailbox: failed: delivery.bounce_imap: imap_auth: auth_failed: ",
		"\nIMAP TLS: TLS 1.3, ",
		"verified: true",
		"Result: SUCCESS",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	for _, secret := range []string{imapPass, bouncePass} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("a password is in the output:\n%s", stdout)
		}
	}
}

// TestProbe_OtherModulesMissingFile: a one-shot probe needs only its own
// module's files. Another module's missing password file (a secret present
// only where the exporter runs) is a warning for the probe, while
// --config.check, which answers for the whole file, still refuses it, and
// so does a probe of that module.
func TestProbe_OtherModulesMissingFile(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "smtp_exporter.yml", `
modules:
  mx:
    timeout: 5s
    smtp: {tls: none}
  submission:
    smtp:
      auth: {username: monitor@example.test, password_file: secrets/missing.password}
targets:
  - {name: sub, address: "192.0.2.1:587", module: submission}
`)
	code, stdout, stderr := runMain(t, "--config.file="+cfg, "probe", "--module=mx", srv.Addr)
	if code != 0 {
		t.Fatalf("probe --module=mx: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "Result: SUCCESS") {
		t.Errorf("stdout does not show the success:\n%s", stdout)
	}
	missing := filepath.Join(dir, "secrets", "missing.password")
	if !strings.Contains(stderr, "level=warn") || !strings.Contains(stderr, "modules.submission.smtp.auth.password_file") || !strings.Contains(stderr, missing) {
		t.Errorf("stderr = %q, want a warning naming the other module's field and file", stderr)
	}

	code, _, stderr = runMain(t, "--config.file="+cfg, "probe", "--module=submission", srv.Addr)
	if code != 2 || !strings.Contains(stderr, "modules.submission.smtp.auth.password_file") {
		t.Errorf("probe --module=submission: exit %d, stderr %q; want 2 and its missing file", code, stderr)
	}
	code, _, stderr = runMain(t, "--config.file="+cfg, "--config.check")
	if code != 1 || !strings.Contains(stderr, "modules.submission.smtp.auth.password_file") {
		t.Errorf("--config.check: exit %d, stderr %q; want 1 and the missing file", code, stderr)
	}
}

// TestProbe_ExampleHeaderCommand runs the probe the example configuration's
// header suggests, with its module, against a test server: the example's
// other modules must not stand in its way.
func TestProbe_ExampleHeaderCommand(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	code, stdout, stderr := runMain(t, "--config.file=../../examples/smtp_exporter.yml", "probe", "--module=mx", "--tls=none", srv.Addr)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
