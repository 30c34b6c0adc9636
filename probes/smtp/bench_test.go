package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// BenchmarkRun_STARTTLS is one full probe: banner, EHLO, STARTTLS with
// certificate verification, EHLO again, MAIL, RCPT, RSET and QUIT. Compare
// it with BenchmarkTLSHandshakeOnly: the dialog around the handshake should
// add little.
func BenchmarkRun_STARTTLS(b *testing.B) {
	ca := probestest.NewCA(b)
	cert := ca.Valid(b, "localhost", "127.0.0.1")
	srv := probestest.NewServer(b, probestest.ServerOptions{TLS: &cert})
	m := probes.Module{
		Prober:  probes.ProberSMTP,
		Timeout: 10 * time.Second,
		SMTP: probes.SMTPModule{
			TLS:       probes.TLSStartTLS,
			EHLO:      "probe.test",
			TLSConfig: config.TLSConfig{CAFile: ca.WriteCAFile(b), ServerName: "localhost"},
			MailFrom:  "probe@example.net",
			RcptTo:    []string{"sink@example.net"},
		},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res := Probe(ctx, srv.Addr, m, nil)
		if !res.Success {
			b.Fatalf("probe failed in phase %q: %s (%v)", res.FailedPhase, res.Reason, res.Err)
		}
	}
}

// BenchmarkTLSHandshakeOnly is a bare crypto/tls client handshake, with
// verification, against the same server on implicit TLS: TCP connect,
// handshake, close.
func BenchmarkTLSHandshakeOnly(b *testing.B) {
	ca := probestest.NewCA(b)
	cert := ca.Valid(b, "localhost", "127.0.0.1")
	srv := probestest.NewServer(b, probestest.ServerOptions{TLS: &cert, ImplicitTLS: true})
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	b.ReportAllocs()
	for b.Loop() {
		conn, err := tls.Dial("tcp", srv.Addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}
