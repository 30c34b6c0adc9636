package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// authScriptServer greets, advertises AUTH with mechs and hands every AUTH
// command's argument to auth; any other command gets 250, QUIT 221.
func authScriptServer(t *testing.T, mechs string, auth func(c *probestest.Conn, arg string)) *probestest.ScriptServer {
	return probestest.NewAuthScriptServer(t, mechs, auth)
}

// authScriptModule authenticates in plain text (the script servers speak
// no TLS) and stops after AUTH.
func authScriptModule(mech, secret string) probes.Module {
	a := &probes.AuthConfig{Mechanism: mech, Username: "monitor@example.net"}
	if mech == "XOAUTH2" || mech == "OAUTHBEARER" {
		a.Token = config.Secret(secret)
	} else {
		a.Password = config.Secret(secret)
	}
	return probes.Module{Timeout: 2 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.test", Auth: a, AllowInsecureAuth: true,
	}}
}

// After cancelling with "*" the server answers (RFC 4954 §4: 501); that
// reply must be read, or QUIT takes it for its own.
func TestRun_AuthCancelReadsReply(t *testing.T) {
	srv := authScriptServer(t, "PLAIN", func(c *probestest.Conn, _ string) {
		c.Send("334 this is not base64!")
		if line, err := c.ReadLine(); err == nil && line == "*" {
			c.Send("501 5.7.0 Authentication aborted")
		}
	})
	r := Probe(context.Background(), srv.Addr, authScriptModule("PLAIN", "pw"), nil)
	if r.Success || r.FailedPhase != probes.PhaseAuth || r.Reason != probes.ReasonProtocol {
		t.Fatalf("got success=%t %s/%s (%v), want auth/protocol", r.Success, r.FailedPhase, r.Reason, r.Err)
	}
	if got := replyCodes(r.Phase(probes.PhaseAuth)); !slices.Equal(got, []int{334, 501}) {
		t.Errorf("auth replies = %v, want [334 501]", got)
	}
	if q := r.Phase(probes.PhaseQuit); q == nil || q.LastReply() == nil || q.LastReply().Code != 221 {
		t.Errorf("QUIT not answered 221 (stream out of step): %v", replyCodes(q))
	}
}

// A bearer mechanism's error challenge is acknowledged before the server
// gives its final reply: XOAUTH2 (Google, Microsoft) with an empty line,
// OAUTHBEARER with a single %x01 (RFC 7628 §3.2.3). The server here
// refuses any other acknowledgement with 501.
func TestRun_AuthBearerErrorAcknowledgement(t *testing.T) {
	for mech, wantAck := range map[string]string{"XOAUTH2": "", "OAUTHBEARER": "AQ=="} {
		t.Run(mech, func(t *testing.T) {
			srv := authScriptServer(t, mech, func(c *probestest.Conn, _ string) {
				c.Send("334 " + base64.StdEncoding.EncodeToString([]byte(`{"status":"invalid_token","schemes":"bearer"}`)))
				line, err := c.ReadLine()
				if err != nil {
					return
				}
				if line != wantAck {
					c.Send("501 5.5.2 Bad acknowledgement of the error challenge")
					return
				}
				c.Send("535 5.7.8 Authentication failed")
			})
			r := Probe(context.Background(), srv.Addr, authScriptModule(mech, "expired-token"), nil)
			if r.Success || r.FailedPhase != probes.PhaseAuth || r.Reason != probes.ReasonAuthFailed || r.Code != 535 {
				t.Errorf("got success=%t %s/%s code %d (%v), want auth/auth_failed 535", r.Success, r.FailedPhase, r.Reason, r.Code, r.Err)
			}
			got := srv.Received()
			if i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "AUTH ") }); i < 0 || i+1 >= len(got) || got[i+1] != wantAck {
				t.Errorf("server received %q, want %q to acknowledge the error challenge", got, wantAck)
			}
			if q := r.Phase(probes.PhaseQuit); q == nil || q.LastReply() == nil || q.LastReply().Code != 221 {
				t.Errorf("QUIT not answered 221: %v", replyCodes(q))
			}
		})
	}
}
