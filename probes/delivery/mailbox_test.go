package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const (
	testUser  = "probe@example.org"
	testPass  = "Correct-Horse-9!"
	testToken = "ya29.tok-Xy7Qz8WvB3"
)

func probeMessage(token string) string {
	return "From: sender@example.org\r\nTo: probe@example.org\r\nSubject: probe\r\n" +
		ProbeHeader + ": " + token + "\r\nMessage-ID: <" + token + "@example.org>\r\n\r\nbody\r\n"
}

func testConfig(addr string) Config {
	return Config{Address: addr, TLS: probes.TLSNone, Mechanism: MechLOGIN, Username: testUser,
		Secret: testPass, AllowInsecureAuth: true}
}

func dial(t *testing.T, cfg Config) *Mailbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v\n%s", err, transcriptText(m))
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func transcriptText(m *Mailbox) string {
	var b strings.Builder
	_ = probes.WriteTranscript(&b, "  ", m.Transcript())
	return b.String()
}

func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDialMechanismsAndTLS(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t, "127.0.0.1", "localhost")
	for _, tc := range []struct {
		name, tls, mech, secret string
	}{
		{"LOGIN, no TLS", "", MechLOGIN, testPass},
		{"PLAIN, implicit TLS", probes.TLSImplicit, MechPLAIN, testPass},
		{"XOAUTH2, STARTTLS", probes.TLSStartTLS, MechXOAUTH2, testToken},
		{"LOGIN, STARTTLS", probes.TLSStartTLS, MechLOGIN, testPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass,
				Token: testToken, TLS: tc.tls, Cert: &cert})
			cfg := testConfig(srv.Addr)
			cfg.Mechanism, cfg.Secret = tc.mech, tc.secret
			if tc.tls != "" {
				cfg.TLS = tc.tls
				cfg.TLSConfig = &tls.Config{RootCAs: ca.Pool()}
			}
			m := dial(t, cfg)
			if tc.tls != "" && (m.TLS() == nil || !m.TLS().Verified) {
				t.Errorf("TLS facts = %+v, want a verified chain", m.TLS())
			}
			if got := len(m.Phases()); got != 2 {
				t.Errorf("got %d phases, want imap_connect and imap_auth", got)
			}
			srv.Deliver(t, "INBOX", probeMessage("tok-1"), time.Now())
			found, err := m.Find(shortCtx(t, 5*time.Second), "tok-1")
			if err != nil || len(found) != 1 || found[0].Class != ClassInbox {
				t.Fatalf("Find = %+v, %v\n%s", found, err, transcriptText(m))
			}
			assertNoSecret(t, m, tc.secret)
		})
	}
}

func TestDialUntrustedCertificate(t *testing.T) {
	srv := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass, TLS: probes.TLSImplicit})
	cfg := testConfig(srv.Addr)
	cfg.TLS = probes.TLSImplicit
	m, err := Dial(shortCtx(t, 5*time.Second), cfg)
	assertFailure(t, m, err, PhaseIMAPConnect, probes.ReasonCertUntrusted)
	if m.TLS() == nil || len(m.TLS().Certificates) == 0 {
		t.Error("the certificate's facts were not recorded")
	}
}

func TestDialWrongPassword(t *testing.T) {
	for _, mech := range []string{MechLOGIN, MechPLAIN} {
		t.Run(mech, func(t *testing.T) {
			srv := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass})
			cfg := testConfig(srv.Addr)
			cfg.Mechanism, cfg.Secret = mech, "Wrong-Password-77"
			m, err := Dial(shortCtx(t, 5*time.Second), cfg)
			assertFailure(t, m, err, PhaseIMAPAuth, probes.ReasonAuthFailed)
			assertNoSecret(t, m, "Wrong-Password-77")
			if !slices.ContainsFunc(m.Transcript(), func(l probes.TranscriptLine) bool {
				return l.Dir == probes.DirSend && strings.HasSuffix(l.Text, "LOGOUT")
			}) {
				t.Errorf("no LOGOUT after the failed login:\n%s", transcriptText(m))
			}
		})
	}
}

func TestDialWrongToken(t *testing.T) {
	srv := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Token: testToken})
	cfg := testConfig(srv.Addr)
	cfg.Mechanism, cfg.Secret = MechXOAUTH2, "ya29.expired-Token-123"
	m, err := Dial(shortCtx(t, 5*time.Second), cfg)
	assertFailure(t, m, err, PhaseIMAPAuth, probes.ReasonAuthFailed)
	assertNoSecret(t, m, "ya29.expired-Token-123")
}

func TestDialRefusesCleartextLogin(t *testing.T) {
	srv := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass})
	cfg := testConfig(srv.Addr)
	cfg.AllowInsecureAuth = false
	m, err := Dial(shortCtx(t, 5*time.Second), cfg)
	assertFailure(t, m, err, PhaseIMAPAuth, probes.ReasonAuthFailed)
	if slices.ContainsFunc(m.Transcript(), func(l probes.TranscriptLine) bool {
		return strings.Contains(l.Text, "LOGIN") && l.Dir == probes.DirSend
	}) {
		t.Errorf("LOGIN sent over cleartext:\n%s", transcriptText(m))
	}
}

func assertFailure(t *testing.T, m *Mailbox, err error, phase probes.Phase, reason probes.Reason) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error\n%s", err, err, transcriptText(m))
	}
	if e.Phase != phase || e.Reason != reason {
		t.Errorf("failed in %s with %s (%v), want %s with %s\n%s", e.Phase, e.Reason, e, phase, reason, transcriptText(m))
	}
	if m != nil {
		last := m.Phases()[len(m.Phases())-1]
		if last.Phase != phase || last.Reason != reason {
			t.Errorf("last phase %s/%s, want %s/%s", last.Phase, last.Reason, phase, reason)
		}
	}
}

// assertNoSecret checks every output of the mailbox for any form of a
// fragment of secret.
func assertNoSecret(t *testing.T, m *Mailbox, secret string, errs ...error) {
	t.Helper()
	forms := probestest.SecretFragmentForms(secret)
	texts := []string{transcriptText(m)}
	for _, p := range m.Phases() {
		if p.Err != nil {
			texts = append(texts, p.Err.Error(), fmt.Sprintf("%q", p.Err.Error()))
		}
	}
	for _, err := range errs {
		if err != nil {
			texts = append(texts, err.Error())
		}
	}
	for _, text := range texts {
		if what, excerpt := probestest.FindSecretFragment(text, forms); what != "" {
			t.Errorf("secret leaked: %s in %q", what, excerpt)
		}
	}
}

func TestFolders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       probestest.IMAPOptions
		extra      []string
		want       map[string]Class
		noteByName bool
	}{
		{
			name:  "special-use",
			opts:  probestest.IMAPOptions{SpecialUse: true, Folders: map[string][]string{"Pourriel": {`\Junk`}, "Spam": nil, "Archive": nil}},
			extra: []string{"Archive"},
			want:  map[string]Class{"INBOX": ClassInbox, "Pourriel": ClassJunk, "Archive": ClassOther},
		},
		{
			name:       "by name without special-use",
			opts:       probestest.IMAPOptions{Folders: map[string][]string{"spam": nil, "Sent": nil}},
			want:       map[string]Class{"INBOX": ClassInbox, "spam": ClassJunk},
			noteByName: true,
		},
		{
			// Exchange Online's IMAP has no SPECIAL-USE and names its junk
			// folder "Junk Email" (omamail PR #90 shows its CAPABILITY and
			// LIST); older Exchange "Junk E-mail", Yahoo "Bulk Mail".
			name:       "Exchange and Yahoo names without special-use",
			opts:       probestest.IMAPOptions{Folders: map[string][]string{"Junk Email": nil, "Junk E-mail": nil, "Bulk Mail": nil, "Junk Drawer": nil}},
			want:       map[string]Class{"INBOX": ClassInbox, "Junk Email": ClassJunk, "Junk E-mail": ClassJunk, "Bulk Mail": ClassJunk},
			noteByName: true,
		},
		{
			name: "special-use server with no junk folder takes no name",
			opts: probestest.IMAPOptions{SpecialUse: true, Folders: map[string][]string{"Junk": nil}},
			want: map[string]Class{"INBOX": ClassInbox},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Username, tc.opts.Password = testUser, testPass
			srv := probestest.NewIMAPServer(t, tc.opts)
			cfg := testConfig(srv.Addr)
			cfg.Folders = tc.extra
			m := dial(t, cfg)
			folders, err := m.Folders(shortCtx(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Class{}
			for _, f := range folders {
				got[f.Name] = f.Class
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("folders = %v, want %v", got, tc.want)
			}
			if noted := strings.Contains(transcriptText(m), "no SPECIAL-USE"); noted != tc.noteByName {
				t.Errorf("note about junk by name: %t, want %t\n%s", noted, tc.noteByName, transcriptText(m))
			}
		})
	}
}

func junkServer(t *testing.T, opts probestest.IMAPOptions) *probestest.IMAPServer {
	opts.Username, opts.Password, opts.SpecialUse = testUser, testPass, true
	opts.Folders = map[string][]string{"Junk": {`\Junk`}}
	return probestest.NewIMAPServer(t, opts)
}

func TestFindOnlyExactToken(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{})
	srv.Deliver(t, "Junk", probeMessage("run-42"), time.Now())
	srv.Deliver(t, "INBOX", probeMessage("run-4"), time.Now())   // a prefix of it
	srv.Deliver(t, "INBOX", probeMessage("xrun-42"), time.Now()) // holds it
	m := dial(t, testConfig(srv.Addr))
	found, err := m.Find(shortCtx(t, 5*time.Second), "run-42")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Folder != "Junk" || found[0].Class != ClassJunk || found[0].Token != "run-42" {
		t.Fatalf("Find = %+v, want the one message in Junk", found)
	}
	if !strings.Contains(string(found[0].Header), "Message-ID: <run-42@example.org>") || found[0].InternalDate.IsZero() {
		t.Errorf("header or internal date missing: %+v", found[0])
	}
	if strings.Contains(string(found[0].Header), "body") {
		t.Error("the body was fetched, not only the header")
	}
}

func TestFindRefusesTokenThatNeedsLiteral(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{})
	m := dial(t, testConfig(srv.Addr))
	_, err := m.Find(shortCtx(t, 5*time.Second), "tök")
	var e *Error
	if !errors.As(err, &e) || e.Reason != probes.ReasonOther {
		t.Fatalf("err = %v, want reason other", err)
	}
}

// waitForLine waits until the transcript holds a line containing text: the
// only view into a Wait running in another goroutine.
func waitForLine(t *testing.T, m *Mailbox, text string, count int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, l := range m.Transcript() {
			if strings.Contains(l.Text, text) {
				n++
			}
		}
		if n >= count {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q in the transcript:\n%s", text, transcriptText(m))
}

type waitResult struct {
	found []Message
	err   error
	took  time.Duration
}

// startWait runs Wait in a goroutine, which the test's cleanup ends
// before the mailbox's (a Mailbox is not for concurrent use).
func startWait(t *testing.T, m *Mailbox, token string, poll time.Duration) <-chan waitResult {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	ch := make(chan waitResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		found, err := m.Wait(ctx, token, poll)
		ch <- waitResult{found, err, time.Since(start)}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ch
}

func TestWaitIDLEWakesOnArrival(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{Push: true})
	m := dial(t, testConfig(srv.Addr))
	if !m.SupportsIDLE() {
		t.Fatal("server offers IDLE")
	}
	// A poll interval the test would time out on: only IDLE can see it.
	res := startWait(t, m, "idle-1", time.Minute)
	waitForLine(t, m, "+ idling", 1)
	srv.Deliver(t, "INBOX", probeMessage("idle-1"), time.Now())
	r := <-res
	if r.err != nil || len(r.found) != 1 || r.found[0].Class != ClassInbox {
		t.Fatalf("Wait = %+v, %v\n%s", r.found, r.err, transcriptText(m))
	}
	if r.took > 10*time.Second {
		t.Errorf("Wait took %s", r.took)
	}
}

func TestWaitIDLEStillPollsJunk(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{Push: true})
	m := dial(t, testConfig(srv.Addr))
	res := startWait(t, m, "junk-1", 50*time.Millisecond)
	waitForLine(t, m, "+ idling", 1)
	srv.Deliver(t, "Junk", probeMessage("junk-1"), time.Now())
	r := <-res
	if r.err != nil || len(r.found) != 1 || r.found[0].Class != ClassJunk {
		t.Fatalf("Wait = %+v, %v\n%s", r.found, r.err, transcriptText(m))
	}
}

func TestWaitPollsWithoutIDLE(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{NoIDLE: true})
	m := dial(t, testConfig(srv.Addr))
	if m.SupportsIDLE() {
		t.Fatal("server hides IDLE")
	}
	res := startWait(t, m, "poll-1", 20*time.Millisecond)
	// Both folders searched once: the message arrives after the first round.
	waitForLine(t, m, "SEARCH completed", 2)
	srv.Deliver(t, "INBOX", probeMessage("poll-1"), time.Now())
	r := <-res
	if r.err != nil || len(r.found) != 1 {
		t.Fatalf("Wait = %+v, %v\n%s", r.found, r.err, transcriptText(m))
	}
	if slices.ContainsFunc(m.Transcript(), func(l probes.TranscriptLine) bool {
		return l.Dir == probes.DirSend && strings.HasSuffix(l.Text, " IDLE")
	}) {
		t.Errorf("IDLE sent to a server without it:\n%s", transcriptText(m))
	}
}

func TestWaitTimesOutAndStillLogsOut(t *testing.T) {
	for _, push := range []bool{true, false} {
		t.Run(fmt.Sprintf("idle=%t", push), func(t *testing.T) {
			srv := junkServer(t, probestest.IMAPOptions{Push: push, NoIDLE: !push})
			m := dial(t, testConfig(srv.Addr))
			start := time.Now()
			_, err := m.Wait(shortCtx(t, 300*time.Millisecond), "never", 20*time.Millisecond)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the context's deadline", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Wait took %s past a 300ms deadline", took)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			text := transcriptText(m)
			if !loggedOut(m) {
				t.Errorf("no LOGOUT after the wait:\n%s", text)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	for _, tc := range []struct {
		name         string
		uidplus      bool
		otherDeleted bool
		wantExpunged bool
	}{
		{"UID EXPUNGE", true, true, true},
		{"EXPUNGE, nothing else flagged", false, false, true},
		{"no EXPUNGE while another message is flagged", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := junkServer(t, probestest.IMAPOptions{UIDPlus: tc.uidplus})
			other := srv.Messages(t, "INBOX")[0].UID
			if tc.otherDeleted {
				srv.Flag(t, "INBOX", other, `\Deleted`)
			}
			a := srv.Deliver(t, "INBOX", probeMessage("del-1"), time.Now())
			b := srv.Deliver(t, "INBOX", probeMessage("del-2"), time.Now())
			m := dial(t, testConfig(srv.Addr))
			expunged, err := m.Delete(shortCtx(t, 5*time.Second), "INBOX", []uint32{a})
			if err != nil {
				t.Fatalf("Delete: %v\n%s", err, transcriptText(m))
			}
			if expunged != tc.wantExpunged {
				t.Errorf("expunged = %t, want %t\n%s", expunged, tc.wantExpunged, transcriptText(m))
			}
			msgs := srv.Messages(t, "INBOX")
			has := func(uid uint32) bool {
				return slices.ContainsFunc(msgs, func(m probestest.IMAPMessage) bool { return m.UID == uid })
			}
			if !has(other) || !has(b) {
				t.Errorf("another message was removed: %+v", msgs)
			}
			if has(a) == tc.wantExpunged {
				t.Errorf("probe message present=%t, want %t", has(a), !tc.wantExpunged)
			}
			for _, msg := range msgs {
				if msg.UID == b && slices.Contains(msg.Flags, `\Deleted`) {
					t.Error("a message not given was flagged")
				}
			}
		})
	}
}

func TestCleanup(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{UIDPlus: true})
	old := time.Now().Add(-2 * time.Hour)
	oldInbox := srv.Deliver(t, "INBOX", probeMessage("smtpx-aaa"), old)
	oldJunk := srv.Deliver(t, "Junk", probeMessage("smtpx-bbb"), old)
	recent := srv.Deliver(t, "INBOX", probeMessage("smtpx-ccc"), time.Now())
	foreign := srv.Deliver(t, "INBOX", probeMessage("otherx-ddd"), old)
	inside := srv.Deliver(t, "INBOX", probeMessage("a-smtpx-eee"), old)
	plain := srv.Deliver(t, "Junk", "From: a@example.org\r\nSubject: smtpx-fff\r\n\r\nsmtpx-fff\r\n", old)
	m := dial(t, testConfig(srv.Addr))
	c, err := m.Cleanup(shortCtx(t, 5*time.Second), time.Now().Add(-time.Hour), "smtpx-", time.Minute)
	if err != nil {
		t.Fatalf("Cleanup: %v\n%s", err, transcriptText(m))
	}
	if c.Messages != 2 {
		t.Errorf("deleted %d, want 2", c.Messages)
	}
	uids := func(folder string) []uint32 {
		var out []uint32
		for _, msg := range srv.Messages(t, folder) {
			out = append(out, msg.UID)
		}
		return out
	}
	inbox, junk := uids("INBOX"), uids("Junk")
	if slices.Contains(inbox, oldInbox) || slices.Contains(junk, oldJunk) {
		t.Errorf("old probe messages left: INBOX %v, Junk %v", inbox, junk)
	}
	for _, keep := range []uint32{recent, foreign, inside} {
		if !slices.Contains(inbox, keep) {
			t.Errorf("INBOX message %d removed", keep)
		}
	}
	if !slices.Contains(junk, plain) {
		t.Error("a message without the probe header was removed")
	}
}

// probeMessageSent is probeMessage with the Date header a probe writes:
// the time it was sent.
func probeMessageSent(token string, sent time.Time) string {
	return "Date: " + sent.Format(time.RFC1123Z) + "\r\n" + probeMessage(token)
}

// TestCleanupLate: a leftover is late only when it arrived (INTERNALDATE)
// more than lateAfter after it was sent (its Date): one that arrived in
// time was left by a run that was interrupted or could not delete it.
func TestCleanupLate(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{UIDPlus: true})
	arrived := time.Now().Add(-2 * time.Hour)
	srv.Deliver(t, "INBOX", probeMessageSent("smtpx-late", arrived.Add(-10*time.Minute)), arrived)
	srv.Deliver(t, "Junk", probeMessageSent("smtpx-late-junk", arrived.Add(-6*time.Minute)), arrived)
	srv.Deliver(t, "INBOX", probeMessageSent("smtpx-in-time", arrived.Add(-30*time.Second)), arrived)
	srv.Deliver(t, "INBOX", probeMessage("smtpx-undated"), arrived)
	m := dial(t, testConfig(srv.Addr))
	c, err := m.Cleanup(shortCtx(t, 5*time.Second), time.Now().Add(-time.Hour), "smtpx-", 5*time.Minute)
	if err != nil {
		t.Fatalf("Cleanup: %v\n%s", err, transcriptText(m))
	}
	if c.Messages != 4 || c.Late != 2 {
		t.Errorf("Cleanup = %+v, want 4 cleaned of which 2 late", c)
	}
}

// TestCleanupBounces: old bounces about probe messages with the prefix go
// from INBOX; a recent one (its run may still be waiting), one about
// another prefix's probe, a probe message itself and mail that merely
// mentions the prefix stay.
func TestCleanupBounces(t *testing.T) {
	srv := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass, UIDPlus: true})
	sample := string(crlf(readSample(t, "postfix-user-unknown.eml")))
	dsn := func(token string) string { return strings.ReplaceAll(sample, sampleToken, token) }
	old, now := time.Now().Add(-2*time.Hour), time.Now()
	const prefix = "smtpx1234abcd-"
	oldOurs := srv.Deliver(t, "INBOX", dsn(prefix+"0123456789abcdef01234567"), old)
	oldOurs2 := srv.Deliver(t, "INBOX", dsn(prefix+"1123456789abcdef01234567"), old)
	recentOurs := srv.Deliver(t, "INBOX", dsn(prefix+"2123456789abcdef01234567"), now)
	oldTheirs := srv.Deliver(t, "INBOX", dsn("smtpx9999ffff-3123456789abcdef01234567"), old)
	// Theirs, though its text names our prefix: the bounce's own ids decide.
	oldTheirsMentioning := srv.Deliver(t, "INBOX", strings.Replace(dsn("smtpx9999ffff-6123456789abcdef01234567"),
		"Subject: Undelivered Mail Returned to Sender", "Subject: Undelivered Mail Returned to Sender (see "+prefix+")", 1), old)
	probe := srv.Deliver(t, "INBOX", probeMessage(prefix+"4123456789abcdef01234567"), old)
	mention := srv.Deliver(t, "INBOX", "From: a@example.org\r\nSubject: about "+prefix+"\r\n\r\n"+prefix+"5123456789abcdef01234567\r\n", old)
	m := dial(t, testConfig(srv.Addr))
	n, err := m.CleanupBounces(shortCtx(t, 5*time.Second), time.Now().Add(-time.Hour), prefix)
	if err != nil {
		t.Fatalf("CleanupBounces: %v\n%s", err, transcriptText(m))
	}
	if n != 2 {
		t.Errorf("swept %d bounces, want 2", n)
	}
	var left []uint32
	for _, msg := range srv.Messages(t, "INBOX") {
		left = append(left, msg.UID)
	}
	for _, gone := range []uint32{oldOurs, oldOurs2} {
		if slices.Contains(left, gone) {
			t.Errorf("old bounce %d of this prefix left", gone)
		}
	}
	for _, keep := range []uint32{recentOurs, oldTheirs, oldTheirsMentioning, probe, mention} {
		if !slices.Contains(left, keep) {
			t.Errorf("message %d removed, want it kept", keep)
		}
	}
}

func TestCloseLogsOutAfterCancel(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	m, err := Dial(ctx, testConfig(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := m.Find(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Find after cancel: %v", err)
	}
	m.Close()
	if !loggedOut(m) {
		t.Errorf("no LOGOUT:\n%s", transcriptText(m))
	}
}

// loggedOut reports whether LOGOUT was sent and answered: go-imap hangs
// up on the BYE, before the tagged OK.
func loggedOut(m *Mailbox) bool {
	lines := m.Transcript()
	i := slices.IndexFunc(lines, func(l probes.TranscriptLine) bool {
		return l.Dir == probes.DirSend && strings.HasSuffix(l.Text, " LOGOUT")
	})
	return i >= 0 && slices.ContainsFunc(lines[i:], func(l probes.TranscriptLine) bool {
		return l.Dir == probes.DirRecv && strings.HasPrefix(l.Text, "* BYE")
	})
}

// rawServer runs handle for each connection on a loopback listener, until
// the test ends.
func rawServer(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// scripted answers commands by verb: the reply function's text, %[1]s
// standing for the tag; unknown verbs get OK. CAPABILITY and LOGIN have
// defaults a login succeeds with.
func scripted(t *testing.T, greeting string, replies map[string]func(c net.Conn, tag string)) string {
	return rawServer(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, greeting)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
			verb, _, _ := strings.Cut(rest, " ")
			verb = strings.ToUpper(verb)
			if f, ok := replies[verb]; ok {
				f(c, tag)
				continue
			}
			switch verb {
			case "CAPABILITY":
				fmt.Fprintf(c, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n%s OK done\r\n", tag)
			case "LOGOUT":
				fmt.Fprintf(c, "* BYE bye\r\n%s OK done\r\n", tag)
				return
			default:
				fmt.Fprintf(c, "%s OK done\r\n", tag)
			}
		}
	})
}

func reply(format string) func(c net.Conn, tag string) {
	return func(c net.Conn, tag string) { fmt.Fprintf(c, format, tag) }
}

// forever writes chunk until the client hangs up, every pause.
func forever(prefix, chunk string, pause time.Duration) func(c net.Conn, tag string) {
	return func(c net.Conn, tag string) {
		if _, err := fmt.Fprintf(c, prefix, tag); err != nil {
			return
		}
		for {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
	}
}

const greetingOK = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"

func TestHostileServers(t *testing.T) {
	const timeout = time.Second
	big := strings.Repeat("a", 4096)
	for _, tc := range []struct {
		name   string
		addr   func(t *testing.T) string
		phase  probes.Phase
		reason probes.Reason
	}{
		{"no greeting", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) { io.Copy(io.Discard, c) })
		}, PhaseIMAPConnect, probes.ReasonTimeout},
		{"garbage greeting", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) {
				io.WriteString(c, "\x16\x03\x01(garbage\r\n")
				io.Copy(io.Discard, c)
			})
		}, PhaseIMAPConnect, probes.ReasonProtocol},
		{"endless greeting line", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) { forever("* OK ", big, 0)(c, "") })
		}, PhaseIMAPConnect, probes.ReasonProtocol},
		{"trickled greeting", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) { forever("* OK ", "a", 20*time.Millisecond)(c, "") })
		}, PhaseIMAPConnect, probes.ReasonTimeout},
		{"BYE greeting", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) {
				io.WriteString(c, "* BYE too many connections\r\n")
				io.Copy(io.Discard, c)
			})
		}, PhaseIMAPConnect, probes.ReasonServiceUnavailable},
		{"huge literal declared", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": reply("* CAPABILITY IMAP4rev1 {4000000000}\r\n"),
			})
		}, PhaseIMAPAuth, probes.ReasonProtocol},
		{"literal trickled forever", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": forever("* CAPABILITY {1000000}\r\n", "x", 10*time.Millisecond),
			})
		}, PhaseIMAPAuth, probes.ReasonTimeout},
		{"endless literals in one response", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": forever("* CAPABILITY", " {4096}\r\n"+big, 0),
			})
		}, PhaseIMAPAuth, probes.ReasonProtocol},
		{"endless untagged lines", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": forever("%.0s", "* OK still here\r\n", 0),
			})
		}, PhaseIMAPAuth, probes.ReasonTimeout},
		{"unrequested continuation", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": reply("+ surprise\r\n"),
			})
		}, PhaseIMAPAuth, probes.ReasonProtocol},
		{"malformed response", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": reply("* LIST (\\Noselect \"/\" \"x\"\r\n"),
			})
		}, PhaseIMAPAuth, probes.ReasonProtocol},
		{"literal in a response code", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": reply("* OK [X {5}\r\n+ abc] hi\r\n"),
			})
		}, PhaseIMAPAuth, probes.ReasonProtocol},
		{"server closes", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY": func(c net.Conn, _ string) { c.Close() },
			})
		}, PhaseIMAPAuth, probes.ReasonConnectionLost},
		{"endless AUTHENTICATE challenges", func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"AUTHENTICATE": func(c net.Conn, _ string) { fmt.Fprintf(c, "+ \r\n") },
				// The client's answers arrive as lines without a verb.
				"": func(c net.Conn, _ string) { fmt.Fprintf(c, "+ \r\n") },
			})
		}, PhaseIMAPAuth, probes.ReasonProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.addr(t))
			cfg.Mechanism = MechPLAIN
			start := time.Now()
			m, err := Dial(shortCtx(t, timeout), cfg)
			took := time.Since(start)
			assertFailure(t, m, err, tc.phase, tc.reason)
			// The bound proves the deadline ends the dialog (without it a
			// hostile server holds it for ever); the slack is for a loaded
			// machine under the race detector, not a speed goal.
			if took > timeout+logoutGrace+2*time.Second {
				t.Errorf("Dial took %s with a %s deadline", took, timeout)
			}
		})
	}
}

var b64Probe = base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPass))

// TestHostileAfterLogin checks the limits on the commands after login.
func TestHostileAfterLogin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		list   func(c net.Conn, tag string)
		reason probes.Reason
	}{
		{"huge literal", reply("* LIST () \"/\" {100000000}\r\n"), probes.ReasonProtocol},
		{"trickled literal", forever("* LIST () \"/\" {1000}\r\n", "x", 10*time.Millisecond), probes.ReasonTimeout},
		{"long line", forever("* LIST () \"/\" ", strings.Repeat("a", 4096), 0), probes.ReasonProtocol},
		{"continuation", reply("+ go on\r\n"), probes.ReasonProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := scripted(t, greetingOK, map[string]func(net.Conn, string){"LIST": tc.list})
			m := dial(t, testConfig(addr))
			start := time.Now()
			_, err := m.Find(shortCtx(t, time.Second), "tok")
			var e *Error
			if !errors.As(err, &e) || e.Reason != tc.reason {
				t.Fatalf("err = %v, want reason %s\n%s", err, tc.reason, transcriptText(m))
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Find took %s with a 1s deadline", took)
			}
		})
	}
}

// TestRedactsEchoedSecrets runs against servers that send the password
// back, whole, in pieces and as base64, before and after the login.
func TestRedactsEchoedSecrets(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(testPass))
	for _, tc := range []struct {
		name, mech string
		replies    map[string]func(net.Conn, string)
	}{
		{"LOGIN echoed in NO", MechLOGIN, map[string]func(net.Conn, string){
			"LOGIN": reply("%s NO [AUTHENTICATIONFAILED] wrong password " + testPass + " (" + b64 + ")\r\n"),
		}},
		{"LOGIN echoed in untagged lines", MechLOGIN, map[string]func(net.Conn, string){
			"LOGIN": reply("* OK you sent \"" + testPass[:8] + "\r\n* OK and " + testPass[8:] + "\"\r\n%s NO no\r\n"),
		}},
		{"PLAIN response echoed", MechPLAIN, map[string]func(net.Conn, string){
			"CAPABILITY":   reply("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n%s OK done\r\n"),
			"AUTHENTICATE": reply("%s NO bad response " + b64Probe + "\r\n"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			greeting := "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] last password was " + testPass + "\r\n"
			cfg := testConfig(scripted(t, greeting, tc.replies))
			cfg.Mechanism = tc.mech
			m, err := Dial(shortCtx(t, 2*time.Second), cfg)
			assertFailure(t, m, err, PhaseIMAPAuth, probes.ReasonAuthFailed)
			assertNoSecret(t, m, testPass, err)
			text := transcriptText(m)
			if !strings.Contains(text, "LOGIN <redacted>") && !strings.Contains(text, "AUTHENTICATE PLAIN <redacted>") {
				t.Errorf("the login command is not shown redacted:\n%s", text)
			}
		})
	}
}

func TestTranscriptShowsLoginRedacted(t *testing.T) {
	srv := junkServer(t, probestest.IMAPOptions{})
	for _, mech := range []string{MechLOGIN, MechPLAIN} {
		cfg := testConfig(srv.Addr)
		cfg.Mechanism = mech
		m := dial(t, cfg)
		m.Close()
		text := transcriptText(m)
		want := map[string]string{MechLOGIN: "LOGIN <redacted>", MechPLAIN: "AUTHENTICATE PLAIN <redacted>"}[mech]
		if !strings.Contains(text, want) {
			t.Errorf("%s: no %q in\n%s", mech, want, text)
		}
		assertNoSecret(t, m, testPass)
		assertNoSecret(t, m, testUser+"\x00"+testPass)
	}
}
