package probestest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func verifyCert(cert tls.Certificate, roots *x509.CertPool, host string) error {
	intermediates := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		intermediates.AddCert(c)
	}
	_, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: host})
	return err
}

// certCase is shared by the offline verification and the handshake tests so
// both prove the same classification.
type certCase struct {
	name    string
	cert    func(ca *CA) tls.Certificate
	host    string
	wantErr func(error) bool // nil: must verify
}

func isHostnameError(err error) bool {
	var target x509.HostnameError
	return errors.As(err, &target)
}

func isExpiredError(err error) bool {
	var target x509.CertificateInvalidError
	return errors.As(err, &target) && target.Reason == x509.Expired
}

func isUnknownAuthorityError(err error) bool {
	var target x509.UnknownAuthorityError
	return errors.As(err, &target)
}

func certCases(t *testing.T) []certCase {
	return []certCase{
		{name: "DNSName", cert: func(ca *CA) tls.Certificate { return ca.Valid(t, "mx.example.test") }, host: "mx.example.test"},
		{name: "IPAddress", cert: func(ca *CA) tls.Certificate { return ca.Valid(t, "mx.example.test", "127.0.0.1") }, host: "127.0.0.1"},
		{name: "DefaultHosts", cert: func(ca *CA) tls.Certificate { return ca.Valid(t) }, host: "localhost"},
		{name: "WrongHost", cert: func(ca *CA) tls.Certificate { return ca.Valid(t, "mx.example.test") }, host: "other.example.test", wantErr: isHostnameError},
		{name: "Expired", cert: func(ca *CA) tls.Certificate { return ca.Expired(t, "mx.example.test") }, host: "mx.example.test", wantErr: isExpiredError},
		{name: "SelfSigned", cert: func(*CA) tls.Certificate { return SelfSigned(t, "mx.example.test") }, host: "mx.example.test", wantErr: isUnknownAuthorityError},
		{name: "OtherCA", cert: func(*CA) tls.Certificate { return NewCA(t).Valid(t, "mx.example.test") }, host: "mx.example.test", wantErr: isUnknownAuthorityError},
	}
}

func TestCA_Verify(t *testing.T) {
	ca := NewCA(t)
	for _, tc := range certCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyCert(tc.cert(ca), ca.Pool(), tc.host)
			checkCertError(t, err, tc.wantErr)
		})
	}
}

func TestCA_Handshake(t *testing.T) {
	ca := NewCA(t)
	for _, tc := range certCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ServerTLSConfig(tc.cert(ca))
			s := NewScriptServer(t, func(c *Conn) {
				if c.StartTLS(cfg) != nil {
					return
				}
				c.Send("220 tls.test ESMTP")
				c.ReadLine()
			})
			conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: ca.Pool(), ServerName: tc.host})
			if err == nil {
				defer conn.Close()
				c := newRawClient(t, conn)
				c.expectReply(220, "tls.test")
				c.send("QUIT")
			}
			checkCertError(t, err, tc.wantErr)
		})
	}
}

func checkCertError(t *testing.T, err error, wantErr func(error) bool) {
	t.Helper()
	switch {
	case wantErr == nil && err != nil:
		t.Fatalf("verification failed: %v", err)
	case wantErr != nil && err == nil:
		t.Fatal("verification succeeded, want an error")
	case wantErr != nil && !wantErr(err):
		t.Fatalf("got error %T %v, not the expected kind", err, err)
	}
}

func TestCA_IssueChainAndNames(t *testing.T) {
	ca := NewCA(t)
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	cert := ca.Issue(t, CertOptions{Hosts: []string{"mx.example.test", "192.0.2.7", "::1"}, NotAfter: notAfter})

	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Cert.Raw) {
		t.Fatalf("chain has %d certificates, want leaf then CA", len(cert.Certificate))
	}
	leaf := cert.Leaf
	if leaf.Subject.CommonName != "mx.example.test" {
		t.Errorf("CN = %q, want first host", leaf.Subject.CommonName)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "mx.example.test" {
		t.Errorf("DNS SANs = %v", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs = %v", leaf.IPAddresses)
	}
	if !leaf.NotAfter.Equal(notAfter) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, notAfter)
	}
	if leaf.NotBefore.After(time.Now().Add(-59 * time.Minute)) {
		t.Errorf("NotBefore = %v, want about an hour ago", leaf.NotBefore)
	}
	if ca.Cert.NotAfter.Before(time.Now().AddDate(9, 11, 0)) || !ca.Cert.IsCA {
		t.Errorf("CA NotAfter = %v IsCA = %v, want a ten-year CA", ca.Cert.NotAfter, ca.Cert.IsCA)
	}
}

func TestCA_Expired(t *testing.T) {
	leaf := NewCA(t).Expired(t, "mx.example.test").Leaf
	now := time.Now()
	if !leaf.NotAfter.Before(now.Add(-23*time.Hour)) || !leaf.NotBefore.Before(now.AddDate(0, 0, -399)) {
		t.Errorf("validity %v..%v, want now-400d..now-24h", leaf.NotBefore, leaf.NotAfter)
	}
}

func TestCA_WriteCAFile(t *testing.T) {
	ca := NewCA(t)
	pemBytes, err := os.ReadFile(ca.WriteCAFile(t))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CA file holds no PEM certificate")
	}
	if err := verifyCert(ca.Valid(t, "mx.example.test"), pool, "mx.example.test"); err != nil {
		t.Fatalf("leaf does not verify against the CA file: %v", err)
	}
}

func TestServerTLSConfig_RefusesTLS11(t *testing.T) {
	cfg := ServerTLSConfig(NewCA(t).Valid(t))
	s := NewScriptServer(t, func(c *Conn) { c.StartTLS(cfg) })
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		MaxVersion:         tls.VersionTLS11,
	})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 handshake succeeded, want it refused")
	}
}
