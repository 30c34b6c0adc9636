package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// replaceFile writes content to path as a rotation does, in place or by
// renaming a new file over it, and backdates it by age so that the file
// counts as settled and what a probe read from it may be reused.
func replaceFile(t *testing.T, path string, content []byte, rename bool, age time.Duration) {
	t.Helper()
	target := path
	if rename {
		target = path + ".new"
	}
	if err := os.WriteFile(target, content, 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(target, at, at); err != nil {
		t.Fatal(err)
	}
	if rename {
		if err := os.Rename(target, path); err != nil {
			t.Fatal(err)
		}
	}
}

// The CA file and the password file are read when they change, not at
// every probe (the probe stats them): a rotation, in place or by a rename,
// still reaches the next probe.
func TestRun_RotatedCAAndPasswordFilesPickedUp(t *testing.T) {
	for _, rename := range []bool{false, true} {
		name := "in place"
		if rename {
			name = "renamed over"
		}
		t.Run(name, func(t *testing.T) {
			trusted, other := probestest.NewCA(t), probestest.NewCA(t)
			cert := trusted.Valid(t, "localhost", "127.0.0.1")
			srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: map[string]string{"monitor": "new-password"}})
			dir := t.TempDir()
			caFile, passwordFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "password")
			m := probes.Module{Timeout: 5 * time.Second, SMTP: probes.SMTPModule{
				TLS: probes.TLSStartTLS, EHLO: "probe.test",
				TLSConfig: config.TLSConfig{CAFile: caFile, ServerName: "localhost"},
				Auth:      &probes.AuthConfig{Mechanism: "PLAIN", Username: "monitor", PasswordFile: passwordFile},
			}}
			probe := func() *probes.Result {
				t.Helper()
				return Probe(context.Background(), srv.Addr, m, nil)
			}

			replaceFile(t, caFile, other.CertPEM, false, 2*time.Hour)
			replaceFile(t, passwordFile, []byte("old-password\n"), false, 2*time.Hour)
			for range 2 {
				if r := probe(); r.Success || r.Reason != probes.ReasonCertUntrusted {
					t.Fatalf("with the other CA: success=%t reason %s (%v), want cert_untrusted", r.Success, r.Reason, r.Err)
				}
			}
			replaceFile(t, caFile, trusted.CertPEM, rename, time.Hour)
			for range 2 {
				if r := probe(); r.Success || r.FailedPhase != probes.PhaseAuth || r.Reason != probes.ReasonAuthFailed {
					t.Fatalf("with the old password: success=%t %s/%s (%v), want auth/auth_failed", r.Success, r.FailedPhase, r.Reason, r.Err)
				}
			}
			replaceFile(t, passwordFile, []byte("new-password\n"), rename, time.Hour)
			for range 2 {
				if r := probe(); !r.Success {
					t.Fatalf("after rotating both files: %s/%s (%v)", r.FailedPhase, r.Reason, r.Err)
				}
			}
		})
	}
}
