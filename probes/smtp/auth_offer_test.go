package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"strings"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// noAuthServer answers EHLO with ehlo (which lists no AUTH), any other
// command with 250 and QUIT with 221.
func noAuthServer(t *testing.T, ehlo ...string) *probestest.ScriptServer {
	return probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 noauth.test ESMTP")
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(line, " ")
			switch strings.ToUpper(verb) {
			case "EHLO":
				c.Send(ehlo...)
			case "QUIT":
				c.Send("221 2.0.0 Bye")
				return
			default:
				c.Send("250 2.0.0 Ok")
			}
		}
	})
}

// A server that offers no AUTH at all must not read like a bad password:
// no AUTH command goes out, the reason is not a credential rejection in
// disguise, and the message says what the server offered.
func TestRun_AuthNotOfferedAtAll(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ehlo     []string
		want     probes.Reason
		wantText string
	}{
		{
			// No STARTTLS either: authentication is simply not available on
			// this port (an MX, say). Still the auth family, as for a
			// mechanism the server does not offer, but worded as what it is.
			name:     "no AUTH, no STARTTLS",
			ehlo:     []string{"250-noauth.test", "250-PIPELINING", "250 8BITMIME"},
			want:     probes.ReasonAuthFailed,
			wantText: "server offers no AUTH at all",
		},
		{
			// Postfix with smtpd_tls_auth_only, Exim's default
			// auth_advertise_hosts, Dovecot submission: AUTH appears only
			// after STARTTLS, so what is missing is TLS, not a login.
			name:     "no AUTH before STARTTLS",
			ehlo:     []string{"250-noauth.test", "250-PIPELINING", "250 STARTTLS"},
			want:     probes.ReasonTLSRequired,
			wantText: "offers STARTTLS",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := noAuthServer(t, tc.ehlo...)
			r := Probe(context.Background(), srv.Addr, authScriptModule("PLAIN", "pw"), nil)
			if r.Success || r.FailedPhase != probes.PhaseAuth {
				t.Fatalf("got success=%t phase=%s (%v), want a failure in auth", r.Success, r.FailedPhase, r.Err)
			}
			if r.Reason != tc.want {
				t.Errorf("reason = %s, want %s (%v)", r.Reason, tc.want, r.Err)
			}
			if r.Code != 0 {
				t.Errorf("code = %d, want 0: no server reply decided this", r.Code)
			}
			if msg := r.Err.Error(); !strings.Contains(msg, tc.wantText) || strings.Contains(msg, "does not offer AUTH PLAIN") {
				t.Errorf("err = %q, want it to say %q rather than blame the mechanism", msg, tc.wantText)
			}
			for _, l := range srv.Received() {
				if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
					t.Errorf("client sent %q to a server that offers no AUTH", l)
				}
			}
		})
	}
}
