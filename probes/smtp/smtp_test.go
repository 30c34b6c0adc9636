package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/common/config"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// tlsModule is a module that verifies against ca for "localhost".
func tlsModule(t *testing.T, ca *probestest.CA, mode string) probes.Module {
	t.Helper()
	return probes.Module{
		Timeout: 5 * time.Second,
		SMTP: probes.SMTPModule{
			TLS:       mode,
			EHLO:      "probe.example.test",
			TLSConfig: config.TLSConfig{CAFile: ca.WriteCAFile(t), ServerName: "localhost"},
		},
	}
}

func phaseNames(r *probes.Result) []string {
	var out []string
	for _, p := range r.Phases {
		out = append(out, string(p.Phase))
	}
	return out
}

func requireSuccess(t *testing.T, r *probes.Result) {
	t.Helper()
	if !r.Success {
		for _, l := range r.Transcript {
			t.Log(l)
		}
		t.Fatalf("probe failed in %s: %s: %v", r.FailedPhase, r.Reason, r.Err)
	}
}

func TestRun_STARTTLSAuthSend(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: map[string]string{"monitor@example.test": "pw"}})
	m := tlsModule(t, ca, probes.TLSStartTLS)
	m.SMTP.Auth = &probes.AuthConfig{Username: "monitor@example.test", Password: "pw"}
	m.SMTP.MailFrom = "monitor@example.test"
	m.SMTP.RcptTo = []string{"sink@example.test", "sink2@example.test"}
	m.SMTP.Send = true

	r := Probe(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, r)
	want := "resolve connect banner ehlo starttls auth mail rcpt data quit"
	if got := strings.Join(phaseNames(r), " "); got != want {
		t.Errorf("phases = %q, want %q", got, want)
	}
	if !r.SMTP.STARTTLSOffered {
		t.Error("STARTTLSOffered = false")
	}
	if r.TLS == nil || !r.TLS.Verified || r.TLS.Version != "TLS 1.3" || r.TLS.Cipher == "" {
		t.Fatalf("TLS facts = %+v", r.TLS)
	}
	if len(r.TLS.Certificates) != 2 || r.TLS.EarliestExpiry.IsZero() || r.TLS.ChainExpiry.IsZero() {
		t.Errorf("certificates/expiry not recorded: %+v", r.TLS)
	}
	if !r.TLS.EarliestExpiry.Equal(cert.Leaf.NotAfter) {
		t.Errorf("EarliestExpiry = %v, want leaf NotAfter %v", r.TLS.EarliestExpiry, cert.Leaf.NotAfter)
	}
	if rc := r.Phase(probes.PhaseRcpt); len(rc.Replies) != 2 {
		t.Errorf("rcpt replies = %d, want 2", len(rc.Replies))
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	msg := string(msgs[0].Data)
	for _, h := range []string{"Auto-Submitted: auto-generated", "X-SMTP-Exporter-Probe: ", "Message-ID: " + r.SMTP.MessageID, "Date: ", "Subject: smtp_exporter probe "} {
		if !strings.Contains(msg, h) {
			t.Errorf("message lacks %q:\n%s", h, msg)
		}
	}
	if !strings.Contains(msg, "\r\n.\r\n") {
		t.Errorf("lone dot line did not survive dot-stuffing:\n%q", msg)
	}
	if msgs[0].AuthUser != "monitor@example.test" {
		t.Errorf("AuthUser = %q", msgs[0].AuthUser)
	}
	// The EHLO after STARTTLS is the one whose extensions count (RFC 3207).
	if _, ok := r.SMTP.Extensions["STARTTLS"]; ok {
		t.Error("extensions still list STARTTLS after the TLS EHLO")
	}
	if q := r.Phase(probes.PhaseQuit); q == nil || q.LastReply() == nil || q.LastReply().Code != 221 {
		t.Errorf("QUIT not answered 221: %+v", q)
	}
}

func TestRun_ImplicitTLS(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, ImplicitTLS: true})
	r := Probe(context.Background(), srv.Addr, tlsModule(t, ca, probes.TLSImplicit), nil)
	requireSuccess(t, r)
	if got := strings.Join(phaseNames(r), " "); got != "resolve connect tls banner ehlo quit" {
		t.Errorf("phases = %q", got)
	}
	if r.TLS == nil || !r.TLS.Verified {
		t.Errorf("TLS not verified: %+v", r.TLS)
	}
}

func TestRun_AuthMechanisms(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{
		TLS:    &cert,
		Users:  map[string]string{"u@example.test": "pw"},
		Tokens: map[string]string{"u@example.test": "tok"},
	})
	for _, tc := range []struct {
		mech, password, token string
		ok                    bool
	}{
		{"PLAIN", "pw", "", true},
		{"LOGIN", "pw", "", true},
		{"CRAM-MD5", "pw", "", true},
		{"XOAUTH2", "", "tok", true},
		{"OAUTHBEARER", "", "tok", true},
		{"PLAIN", "wrong", "", false},
		{"LOGIN", "wrong", "", false},
		{"CRAM-MD5", "wrong", "", false},
		{"XOAUTH2", "", "wrong", false},
		{"OAUTHBEARER", "", "wrong", false},
	} {
		t.Run(tc.mech+"_"+map[bool]string{true: "ok", false: "bad"}[tc.ok], func(t *testing.T) {
			m := tlsModule(t, ca, probes.TLSStartTLS)
			m.SMTP.Auth = &probes.AuthConfig{Mechanism: tc.mech, Username: "u@example.test", Password: config.Secret(tc.password), Token: config.Secret(tc.token)}
			r := Probe(context.Background(), srv.Addr, m, nil)
			if tc.ok {
				requireSuccess(t, r)
				return
			}
			if r.Success || r.FailedPhase != probes.PhaseAuth || r.Reason != probes.ReasonAuthFailed || r.Temporary {
				t.Fatalf("got success=%t phase=%s reason=%s temporary=%t, want auth_failed in auth", r.Success, r.FailedPhase, r.Reason, r.Temporary)
			}
			if r.Code != 535 {
				t.Errorf("code = %d, want 535", r.Code)
			}
		})
	}
}

func TestRun_AuthMechanismNotOffered(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: map[string]string{"u": "pw"}})
	m := tlsModule(t, ca, probes.TLSStartTLS)
	m.SMTP.Auth = &probes.AuthConfig{Mechanism: "XOAUTH2", Username: "u", Token: "t"}
	r := Probe(context.Background(), srv.Addr, m, nil)
	if r.Success || r.FailedPhase != probes.PhaseAuth || r.Reason != probes.ReasonAuthFailed {
		t.Fatalf("got %s/%s, want auth/auth_failed", r.FailedPhase, r.Reason)
	}
	if !strings.Contains(r.Err.Error(), "does not offer AUTH XOAUTH2") {
		t.Errorf("err = %v", r.Err)
	}
}

func TestRun_LMTP(t *testing.T) {
	srv := probestest.NewServer(t, probestest.ServerOptions{LMTP: true})
	m := probes.Module{Prober: probes.ProberLMTP, Timeout: 5 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.example.test", MailFrom: "a@example.test",
		RcptTo: []string{"b@example.test", "c@example.test"}, Send: true,
	}}
	r := Probe(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, r)
	if got := strings.Join(phaseNames(r), " "); got != "resolve connect banner lhlo mail rcpt data quit" {
		t.Errorf("phases = %q", got)
	}
	// DATA's 354 plus one final reply per recipient (RFC 2033 §4.2).
	if n := len(r.Phase(probes.PhaseData).Replies); n != 3 {
		t.Errorf("data replies = %d, want 3", n)
	}
}

func TestRun_LMTPOneRecipientRefused(t *testing.T) {
	srv := probestest.NewServer(t, probestest.ServerOptions{LMTP: true, LMTPDataErrors: map[string]*smtp.SMTPError{
		"c@example.test": {Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"},
	}})
	m := probes.Module{Prober: probes.ProberLMTP, Timeout: 5 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.example.test", MailFrom: "a@example.test",
		RcptTo: []string{"b@example.test", "c@example.test"}, Send: true,
	}}
	r := Probe(context.Background(), srv.Addr, m, nil)
	if r.Success || r.FailedPhase != probes.PhaseData || r.Reason != probes.ReasonMailboxFull || r.EnhancedCode != "5.2.2" {
		t.Fatalf("got %s/%s/%s, want data/mailbox_full/5.2.2", r.FailedPhase, r.Reason, r.EnhancedCode)
	}
}

func dialogModule() probes.Module {
	return probes.Module{Timeout: 5 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.example.test", MailFrom: "a@example.test", RcptTo: []string{"b@example.test"},
	}}
}

func TestRun_RcptDMARC(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{
		"RCPT": "550-5.7.26 This mail has been blocked because the sender is\r\n550 5.7.26 unauthenticated. Gmail requires all senders to authenticate.",
	}}.Serve)
	r := Probe(context.Background(), srv.Addr, dialogModule(), nil)
	if r.Success || r.FailedPhase != probes.PhaseRcpt || r.Reason != probes.ReasonDMARC || r.Temporary {
		t.Fatalf("got success=%t phase=%s reason=%s temporary=%t", r.Success, r.FailedPhase, r.Reason, r.Temporary)
	}
	if r.Code != 550 || r.EnhancedCode != "5.7.26" || !strings.Contains(r.ReplyText, "unauthenticated") {
		t.Errorf("code=%d enhanced=%q text=%q", r.Code, r.EnhancedCode, r.ReplyText)
	}
	got := strings.Join(srv.Received(), "|")
	if !strings.Contains(got, "RSET|QUIT") {
		t.Errorf("probe did not RSET and QUIT after the refusal: %s", got)
	}
}

func TestRun_ExpectCodes(t *testing.T) {
	refusing := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"RCPT": "554 5.7.1 <b@example.test>: Relay access denied"}}.Serve)
	open := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	m := dialogModule()
	m.SMTP.Send = true
	m.SMTP.ExpectCodes = map[probes.Phase][]int{probes.PhaseRcpt: {550, 554}}

	r := Probe(context.Background(), refusing.Addr, m, nil)
	requireSuccess(t, r)
	if !r.SMTP.ExpectationMet || r.Phase(probes.PhaseData) != nil {
		t.Errorf("expectation met = %t, data phase ran = %t", r.SMTP.ExpectationMet, r.Phase(probes.PhaseData) != nil)
	}
	if rep := r.Phase(probes.PhaseRcpt).LastReply(); rep.Reason != probes.ReasonRelayDenied {
		t.Errorf("reply reason = %s, want relay_denied", rep.Reason)
	}

	r = Probe(context.Background(), open.Addr, m, nil)
	if r.Success || r.FailedPhase != probes.PhaseRcpt || r.Reason != probes.ReasonUnexpectedReply || r.Code != 250 {
		t.Fatalf("open relay: got success=%t %s/%s code %d, want rcpt/unexpected_reply 250", r.Success, r.FailedPhase, r.Reason, r.Code)
	}
	for _, l := range open.Received() {
		if l == "DATA" {
			t.Error("probe sent DATA through an open relay")
		}
	}
}

func TestRun_HELOFallback(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"EHLO": "502 5.5.2 Error: command not recognized"}}.Serve)
	r := Probe(context.Background(), srv.Addr, dialogModule(), nil)
	requireSuccess(t, r)
	if !r.SMTP.HELOFallback || len(r.Phase(probes.PhaseEHLO).Replies) != 2 {
		t.Errorf("HELOFallback=%t replies=%d", r.SMTP.HELOFallback, len(r.Phase(probes.PhaseEHLO).Replies))
	}
}

func TestRun_EHLOExtensions(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{EHLO: []string{
		"250-mx.example.test Hello", "250-PIPELINING", "250-SIZE 35882577", "250-AUTH=LOGIN PLAIN",
		"250-AUTH CRAM-MD5", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250-DSN",
		"250-REQUIRETLS", "250-STARTTLS", "250 SMTPUTF8",
	}}.Serve)
	m := dialogModule()
	r := Probe(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, r)
	for _, kw := range []string{"PIPELINING", "SIZE", "AUTH", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN", "REQUIRETLS", "STARTTLS", "SMTPUTF8"} {
		if _, ok := r.SMTP.Extensions[kw]; !ok {
			t.Errorf("extension %s not parsed: %v", kw, r.SMTP.Extensions)
		}
	}
	if r.SMTP.Extensions["SIZE"] != "35882577" || r.SMTP.Extensions["AUTH"] != "LOGIN PLAIN CRAM-MD5" {
		t.Errorf("SIZE=%q AUTH=%q", r.SMTP.Extensions["SIZE"], r.SMTP.Extensions["AUTH"])
	}
	if !r.SMTP.STARTTLSOffered {
		t.Error("STARTTLS on the last 250 line's neighbour not seen")
	}
}

func TestRun_STARTTLSUnavailable(t *testing.T) {
	notOffered := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	ca := probestest.NewCA(t)
	refused := probestest.NewScriptServer(t, probestest.Dialog{
		TLS:     probestest.ServerTLSConfig(ca.Valid(t)),
		Replies: map[string]string{"STARTTLS": "454 4.7.0 TLS not available due to local problem"},
	}.Serve)
	for name, addr := range map[string]string{"not_offered": notOffered.Addr, "refused": refused.Addr} {
		t.Run(name, func(t *testing.T) {
			r := Probe(context.Background(), addr, tlsModule(t, ca, probes.TLSStartTLS), nil)
			if r.Success || r.FailedPhase != probes.PhaseSTARTTLS || r.Reason != probes.ReasonSTARTTLSUnavailable {
				t.Fatalf("got %s/%s, want starttls/starttls_unavailable", r.FailedPhase, r.Reason)
			}
			if r.Phase(probes.PhaseQuit) == nil {
				t.Error("no QUIT after STARTTLS failure")
			}
		})
	}
}

func TestRun_InsecureSkipVerifyRecordsFacts(t *testing.T) {
	ca := probestest.NewCA(t)
	srv := probestest.NewScriptServer(t, probestest.Dialog{TLS: probestest.ServerTLSConfig(probestest.SelfSigned(t, "localhost"))}.Serve)
	m := tlsModule(t, ca, probes.TLSStartTLS)
	m.SMTP.TLSConfig.InsecureSkipVerify = true
	r := Probe(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, r)
	if r.TLS == nil || r.TLS.Verified || r.TLS.VerifyError == nil || len(r.TLS.Certificates) != 1 {
		t.Fatalf("TLS facts = %+v", r.TLS)
	}
}

func TestRun_BannerRefusals(t *testing.T) {
	for _, tc := range []struct {
		banner    string
		reason    probes.Reason
		temporary bool
	}{
		{"554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org", probes.ReasonReputation, false},
		{"421 4.3.2 Service shutting down", probes.ReasonServiceUnavailable, true},
	} {
		srv := probestest.NewScriptServer(t, probestest.Dialog{Banner: tc.banner}.Serve)
		r := Probe(context.Background(), srv.Addr, dialogModule(), nil)
		if r.Success || r.FailedPhase != probes.PhaseBanner || r.Reason != tc.reason || r.Temporary != tc.temporary {
			t.Errorf("%q: got %s/%s temporary=%t", tc.banner, r.FailedPhase, r.Reason, r.Temporary)
		}
	}
}

func TestRun_NoSendResets(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	r := Probe(context.Background(), srv.Addr, dialogModule(), nil)
	requireSuccess(t, r)
	got := strings.Join(srv.Received(), "|")
	if !strings.HasSuffix(got, "RCPT TO:<b@example.test>|RSET|QUIT") {
		t.Errorf("dialog = %s", got)
	}
}

func TestPickAddress(t *testing.T) {
	v4, v6 := net.IPAddr{IP: net.ParseIP("192.0.2.1")}, net.IPAddr{IP: net.ParseIP("2001:db8::1")}
	for _, tc := range []struct {
		name            string
		addrs           []net.IPAddr
		want4, fallback bool
		want            string
		fellBack        bool
	}{
		{"ip4 preferred", []net.IPAddr{v6, v4}, true, true, "192.0.2.1", false},
		{"ip6 preferred", []net.IPAddr{v4, v6}, false, true, "2001:db8::1", false},
		{"ip6 falls back to ip4", []net.IPAddr{v4}, false, true, "192.0.2.1", true},
		{"ip4 falls back to ip6", []net.IPAddr{v6}, true, true, "2001:db8::1", true},
		{"no fallback", []net.IPAddr{v6}, true, false, "<nil>", false},
		{"nothing", nil, true, true, "<nil>", false},
	} {
		ip, fellBack := pickAddress(tc.addrs, tc.want4, tc.fallback)
		if ip.String() != tc.want || fellBack != tc.fellBack {
			t.Errorf("%s: got %v fellBack=%t, want %s fellBack=%t", tc.name, ip, fellBack, tc.want, tc.fellBack)
		}
	}
}

func TestRun_MultiLineBanner(t *testing.T) {
	// Postscreen and some appliances greet with several 220- lines.
	srv := probestest.NewScriptServer(t, probestest.Dialog{Banner: "220-mx.example.test ESMTP\r\n220-No UCE\r\n220 Ready"}.Serve)
	r := Probe(context.Background(), srv.Addr, dialogModule(), nil)
	requireSuccess(t, r)
	if rep := r.Phase(probes.PhaseBanner).LastReply(); len(rep.Lines) != 3 || rep.Lines[2] != "Ready" {
		t.Errorf("banner lines = %q", rep.Lines)
	}
}

func TestRun_ExpectAuthFailure(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: map[string]string{"u": "pw"}})
	m := tlsModule(t, ca, probes.TLSStartTLS)
	m.SMTP.Auth = &probes.AuthConfig{Username: "u", Password: "not-the-password"}
	m.SMTP.ExpectCodes = map[probes.Phase][]int{probes.PhaseAuth: {535}}
	r := Probe(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, r)
	if !r.SMTP.ExpectationMet || r.Phase(probes.PhaseAuth).LastReply().Code != 535 {
		t.Errorf("expectation met = %t", r.SMTP.ExpectationMet)
	}
	// The same module with the right password fails: the server must
	// reject these credentials.
	m.SMTP.Auth.Password = "pw"
	r = Probe(context.Background(), srv.Addr, m, nil)
	if r.Success || r.Reason != probes.ReasonUnexpectedReply || r.Code != 235 {
		t.Errorf("accepted credentials: got success=%t reason=%s code=%d, want unexpected_reply 235", r.Success, r.Reason, r.Code)
	}
}

func TestDefaultEHLOName_NeverLocalhost(t *testing.T) {
	name := probes.DefaultEHLOName()
	if name != "" && (!strings.Contains(name, ".") || strings.HasPrefix(name, "localhost")) {
		t.Errorf("DefaultEHLOName() = %q: want a dotted name or empty", name)
	}
	srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	m := dialogModule()
	m.SMTP.EHLO = ""
	requireSuccess(t, Probe(context.Background(), srv.Addr, m, nil))
	ehlo := srv.Received()[0]
	if !strings.HasPrefix(ehlo, "EHLO ") || strings.Contains(ehlo, "localhost") || len(ehlo) < len("EHLO x.y") {
		t.Errorf("greeted with %q", ehlo)
	}
}

func replyCodes(pr *probes.PhaseResult) []int {
	if pr == nil {
		return nil
	}
	codes := make([]int, len(pr.Replies))
	for i, r := range pr.Replies {
		codes[i] = r.Code
	}
	return codes
}

// Every target of a module is probed with the same probes.Module value, whose
// Auth is a pointer: concurrent runs must not write through it (run under
// -race), nor change the caller's module at all.
func TestRun_SharedModuleConcurrently(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: map[string]string{"u@example.test": "pw"}})
	m := tlsModule(t, ca, probes.TLSStartTLS)
	m.SMTP.Auth = &probes.AuthConfig{Username: "u@example.test", Password: "pw"}
	results := make([]*probes.Result, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = Probe(context.Background(), srv.Addr, m, nil) })
	}
	wg.Wait()
	for _, r := range results {
		requireSuccess(t, r)
	}
	if m.SMTP.Auth.Mechanism != "" {
		t.Errorf("Run set the caller's Auth.Mechanism to %q", m.SMTP.Auth.Mechanism)
	}
}

// expect_codes judge the reply that decides a phase: the 354 to DATA only
// lets the message go, and the reply to the final dot is the verdict.
func TestRun_ExpectCodesData(t *testing.T) {
	m := dialogModule()
	m.Timeout = 2 * time.Second
	m.SMTP.Send = true
	m.SMTP.ExpectCodes = map[probes.Phase][]int{probes.PhaseData: {554}}

	t.Run("rejected", func(t *testing.T) {
		srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"DOT": "554 5.7.1 Message rejected as spam"}}.Serve)
		r := Probe(context.Background(), srv.Addr, m, nil)
		requireSuccess(t, r)
		if !r.SMTP.ExpectationMet {
			t.Error("ExpectationMet = false")
		}
		if got := replyCodes(r.Phase(probes.PhaseData)); !slices.Equal(got, []int{354, 554}) {
			t.Errorf("data replies = %v, want [354 554]", got)
		}
		got := srv.Received()
		end := slices.Index(got, ".")
		if end < 0 || end+1 >= len(got) || (got[end+1] != "RSET" && got[end+1] != "QUIT") || got[len(got)-1] != "QUIT" {
			t.Errorf("server received %q, want the message, its final dot, then RSET or QUIT", got)
		}
		if q := r.Phase(probes.PhaseQuit); q == nil || q.LastReply() == nil || q.LastReply().Code != 221 {
			t.Errorf("QUIT not answered 221: %+v", q)
		}
	})
	t.Run("accepted", func(t *testing.T) {
		srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"DOT": "250 2.0.0 Ok: queued as ABC123"}}.Serve)
		r := Probe(context.Background(), srv.Addr, m, nil)
		if r.Success || r.FailedPhase != probes.PhaseData || r.Reason != probes.ReasonUnexpectedReply || r.Code != 250 {
			t.Fatalf("got success=%t %s/%s code %d (%v), want data/unexpected_reply 250", r.Success, r.FailedPhase, r.Reason, r.Code, r.Err)
		}
	})
}

// STARTTLS's own reply is judged by the starttls expectations; the EHLO
// after the handshake is an EHLO and judged by the ehlo ones.
func TestRun_ExpectCodesSTARTTLS(t *testing.T) {
	ca := probestest.NewCA(t)
	cfg := probestest.ServerTLSConfig(ca.Valid(t))
	accepting := probestest.NewScriptServer(t, probestest.Dialog{TLS: cfg}.Serve)
	refusing := probestest.NewScriptServer(t, probestest.Dialog{
		TLS:     cfg,
		Replies: map[string]string{"STARTTLS": "454 4.7.0 TLS not available due to local problem"},
	}.Serve)
	module := func(t *testing.T, expect []int) probes.Module {
		m := tlsModule(t, ca, probes.TLSStartTLS)
		m.SMTP.ExpectCodes = map[probes.Phase][]int{probes.PhaseSTARTTLS: expect}
		return m
	}

	t.Run("220 expected", func(t *testing.T) {
		r := Probe(context.Background(), accepting.Addr, module(t, []int{220}), nil)
		requireSuccess(t, r)
		if r.SMTP.ExpectationMet || r.TLS == nil || !r.TLS.Verified {
			t.Errorf("ExpectationMet=%t TLS=%+v, want a verified TLS session", r.SMTP.ExpectationMet, r.TLS)
		}
	})
	t.Run("454 expected and sent", func(t *testing.T) {
		r := Probe(context.Background(), refusing.Addr, module(t, []int{454}), nil)
		requireSuccess(t, r)
		if !r.SMTP.ExpectationMet {
			t.Error("ExpectationMet = false")
		}
	})
	t.Run("454 expected, 220 sent", func(t *testing.T) {
		r := Probe(context.Background(), accepting.Addr, module(t, []int{454}), nil)
		if r.Success || r.FailedPhase != probes.PhaseSTARTTLS || r.Reason != probes.ReasonUnexpectedReply || r.Code != 220 {
			t.Fatalf("got success=%t %s/%s code %d (%v), want starttls/unexpected_reply 220", r.Success, r.FailedPhase, r.Reason, r.Code, r.Err)
		}
		// After its 220 the server reads a TLS handshake: a plaintext
		// QUIT would be garbage to it.
		if probeSentCommand(r, "QUIT") {
			t.Error("QUIT sent where the server expects a TLS handshake")
		}
	})
	t.Run("EHLO after TLS judged as EHLO", func(t *testing.T) {
		srv := probestest.NewScriptServer(t, hostileSTARTTLSThen(func(c *probestest.Conn) {
			if c.StartTLS(cfg) != nil {
				return
			}
			if _, ok := c.Expect("EHLO"); !ok {
				return
			}
			c.Send("550 5.7.1 Client host rejected: cannot find your hostname")
			if _, ok := c.Expect("QUIT"); ok {
				c.Send("221 2.0.0 Bye")
			}
		}))
		m := tlsModule(t, ca, probes.TLSStartTLS)
		m.SMTP.ExpectCodes = map[probes.Phase][]int{probes.PhaseEHLO: {250, 550}}
		r := Probe(context.Background(), srv.Addr, m, nil)
		requireSuccess(t, r)
		if !r.SMTP.ExpectationMet || !slices.Equal(replyCodes(r.Phase(probes.PhaseSTARTTLS)), []int{220, 550}) {
			t.Errorf("ExpectationMet=%t starttls replies %v, want the 550 to the second EHLO to meet the ehlo expectation",
				r.SMTP.ExpectationMet, replyCodes(r.Phase(probes.PhaseSTARTTLS)))
		}
	})
}

// Every accepted LMTP recipient gets a reply after DATA; all must be read,
// whichever fails, or the next command reads a leftover reply.
func TestRun_LMTPFirstRecipientRefusedStaysInStep(t *testing.T) {
	srv := probestest.NewServer(t, probestest.ServerOptions{LMTP: true, LMTPDataErrors: map[string]*smtp.SMTPError{
		"b@example.test": {Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"},
	}})
	m := probes.Module{Prober: probes.ProberLMTP, Timeout: 5 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.example.test", MailFrom: "a@example.test",
		RcptTo: []string{"b@example.test", "c@example.test"}, Send: true,
	}}
	r := Probe(context.Background(), srv.Addr, m, nil)
	if r.Success || r.FailedPhase != probes.PhaseData || r.Reason != probes.ReasonMailboxFull || r.Code != 552 {
		t.Fatalf("got %s/%s code %d, want data/mailbox_full 552", r.FailedPhase, r.Reason, r.Code)
	}
	if got := replyCodes(r.Phase(probes.PhaseData)); !slices.Equal(got, []int{354, 552, 250}) {
		t.Errorf("data replies = %v, want [354 552 250]", got)
	}
	if q := r.Phase(probes.PhaseQuit); q == nil || q.LastReply() == nil || q.LastReply().Code != 221 {
		t.Errorf("QUIT not answered 221 (stream out of step): %v", replyCodes(q))
	}
}

// A CA file that cannot be read or a malformed target is the exporter's
// own configuration problem, not the server's.
func TestRun_LocalConfigProblems(t *testing.T) {
	t.Run("invalid port", func(t *testing.T) {
		r := Probe(context.Background(), "127.0.0.1:99999", dialogModule(), nil)
		if r.Success || r.FailedPhase != probes.PhaseResolve || r.Reason != probes.ReasonOther {
			t.Errorf("got %s/%s (%v), want resolve/other", r.FailedPhase, r.Reason, r.Err)
		}
	})
	missingCA := config.TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing-ca.pem")}
	for _, tc := range []struct {
		mode  string
		phase probes.Phase
	}{
		{probes.TLSStartTLS, probes.PhaseSTARTTLS},
		{probes.TLSImplicit, probes.PhaseTLS},
	} {
		t.Run("unreadable CA file, "+tc.mode, func(t *testing.T) {
			srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
			m := dialogModule()
			m.SMTP.TLS = tc.mode
			m.SMTP.TLSConfig = missingCA
			r := Probe(context.Background(), srv.Addr, m, nil)
			if r.Success || r.FailedPhase != tc.phase || r.Reason != probes.ReasonOther || r.Temporary {
				t.Errorf("got %s/%s temporary=%t (%v), want %s/other, permanent", r.FailedPhase, r.Reason, r.Temporary, r.Err, tc.phase)
			}
		})
	}
	t.Run("unreadable CA file, tls none", func(t *testing.T) {
		srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
		m := dialogModule()
		m.SMTP.TLSConfig = missingCA
		requireSuccess(t, Probe(context.Background(), srv.Addr, m, nil))
	})
}

func TestPhaseResult_DecidingReply(t *testing.T) {
	ok := &probes.PhaseResult{Phase: probes.PhaseSTARTTLS, Replies: []probes.Reply{{Code: 220}, {Code: 250}}}
	if got := ok.DecidingReply().Code; got != 220 {
		t.Errorf("starttls deciding reply = %d, want 220 (the answer to STARTTLS)", got)
	}
	failed := &probes.PhaseResult{Phase: probes.PhaseSTARTTLS, Replies: []probes.Reply{{Code: 220}, {Code: 554}}}
	if got := failed.DecidingReply().Code; got != 554 {
		t.Errorf("starttls with a refused EHLO: deciding reply = %d, want 554", got)
	}
	data := &probes.PhaseResult{Phase: probes.PhaseData, Replies: []probes.Reply{{Code: 354}, {Code: 250}}}
	if got := data.DecidingReply().Code; got != 250 {
		t.Errorf("data deciding reply = %d, want 250", got)
	}
	if (&probes.PhaseResult{Phase: probes.PhaseConnect}).DecidingReply() != nil {
		t.Error("a phase without replies has a deciding reply")
	}
}

// HelloAnswered tells "no STARTTLS offered" from "never got that far":
// the collector omits probe_smtp_starttls_offered without it.
func TestProbe_HelloAnsweredFact(t *testing.T) {
	refused := Probe(context.Background(), probestest.ClosedAddr(t), dialogModule(), nil)
	ehloRefused := Probe(context.Background(), probestest.NewScriptServer(t, probestest.Dialog{
		Replies: map[string]string{"EHLO": "554 5.7.1 go away"},
	}.Serve).Addr, dialogModule(), nil)
	answered := Probe(context.Background(), probestest.NewScriptServer(t, probestest.Dialog{}.Serve).Addr, dialogModule(), nil)
	for name, tc := range map[string]struct {
		r    *probes.Result
		want bool
	}{"connection refused": {refused, false}, "EHLO refused": {ehloRefused, true}, "EHLO answered": {answered, true}} {
		if tc.r.SMTP == nil || tc.r.SMTP.HelloAnswered != tc.want {
			t.Errorf("%s: SMTP facts %+v, want HelloAnswered=%t", name, tc.r.SMTP, tc.want)
		}
	}
	negative := dialogModule()
	negative.SMTP.ExpectCodes = map[probes.Phase][]int{probes.PhaseEHLO: {554}}
	if r := Probe(context.Background(), probestest.ClosedAddr(t), negative, nil); !r.SMTP.NegativeTest {
		t.Error("a module with expect_codes is not marked as a negative test")
	}
}

// sizeServer advertises ehlo and, as RFC 1870 §6.1 lets a server, refuses
// at MAIL a declared SIZE= over limit; it accepts everything else.
func sizeServer(t *testing.T, limit int, ehlo ...string) *probestest.ScriptServer {
	return probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 size.test ESMTP")
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			_, size, _ := strings.Cut(line, " SIZE=")
			switch n, _ := strconv.Atoi(size); strings.ToUpper(verb(line)) {
			case "EHLO":
				c.Send(ehlo...)
			case "MAIL":
				if n > limit {
					c.Send("552 5.3.4 Message size exceeds fixed limit")
				} else {
					c.Send("250 2.1.0 Ok")
				}
			case "DATA":
				c.Send("354 End data with <CR><LF>.<CR><LF>")
				for line != "." && err == nil {
					line, err = c.ReadLine()
				}
				c.Send("250 2.0.0 Ok: queued as ABC123")
			case "QUIT":
				c.Send("221 2.0.0 Bye")
				return
			default:
				c.Send("250 2.0.0 Ok")
			}
		}
	})
}

// TestRun_SizeRefusedAtMail: a server that advertises SIZE learns the
// message's size from MAIL FROM (RFC 1870) and refuses a message too large
// there, before DATA, as it does for real clients.
func TestRun_SizeRefusedAtMail(t *testing.T) {
	srv := sizeServer(t, 100, "250-size.test", "250 SIZE 100")
	m := dialogModule()
	m.SMTP.Send = true
	r := Probe(context.Background(), srv.Addr, m, nil)
	if r.Success || r.FailedPhase != probes.PhaseMail || r.Reason != probes.ReasonMessageTooLarge || r.Code != 552 {
		t.Fatalf("got success=%t %s/%s code %d, want mail/message_too_large 552", r.Success, r.FailedPhase, r.Reason, r.Code)
	}
	if got := srv.Received(); slices.Contains(got, "DATA") || !strings.HasSuffix(strings.Join(got, "|"), "|RSET|QUIT") {
		t.Errorf("server received %q, want no DATA and RSET, QUIT after the refusal", got)
	}
}

// TestRun_SizeParameter: SIZE= goes with MAIL only to a server that
// advertised SIZE and only when a message follows; its value is the
// message's size as RFC 1870 defines it (CRLFs counted, the dot-stuffing
// and the final dot not), and the message sent is the one measured.
func TestRun_SizeParameter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ehlo     []string
		send     bool
		wantSize bool
	}{
		{"SIZE advertised, sending", []string{"250-size.test", "250 SIZE 0"}, true, true},
		{"SIZE not advertised", []string{"250-size.test", "250 8BITMIME"}, true, false},
		{"not sending", []string{"250-size.test", "250 SIZE 10240000"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sizeServer(t, 1<<30, tc.ehlo...)
			m := dialogModule()
			m.SMTP.Send = tc.send
			r := Probe(context.Background(), srv.Addr, m, nil)
			requireSuccess(t, r)
			got := srv.Received()
			mail := got[slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "MAIL") })]
			_, size, found := strings.Cut(mail, " SIZE=")
			if found != tc.wantSize {
				t.Fatalf("MAIL line %q, want SIZE= %t", mail, tc.wantSize)
			}
			if !tc.send {
				return
			}
			// The message as received, dot-stuffing undone, CRLF counted.
			n, msgID := 0, ""
			for _, l := range got[slices.Index(got, "DATA")+1 : slices.Index(got, ".")] {
				l = strings.TrimPrefix(l, ".")
				n += len(l) + 2
				if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
					msgID = v
				}
			}
			if msgID == "" || msgID != r.SMTP.MessageID {
				t.Errorf("message sent with Message-ID %q, result says %q", msgID, r.SMTP.MessageID)
			}
			if tc.wantSize && size != strconv.Itoa(n) {
				t.Errorf("MAIL declared SIZE=%s, message was %d bytes", size, n)
			}
		})
	}
}
