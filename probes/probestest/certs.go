// Package probestest provides test servers and certificates for exercising
// SMTP probes against real sockets, in the spirit of net/http/httptest.
//
// Everything listens on 127.0.0.1:0 and is torn down through t.Cleanup, which
// waits for every goroutine the helper started so that goleak stays clean in
// the caller.
package probestest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority made at test time.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA creates a self-signed ECDSA P-256 CA valid from an hour ago for ten
// years; the hour of back-dating absorbs clock skew between test processes.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "probestest CA", Organization: []string{"probestest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("probestest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("probestest: parse CA certificate: %v", err)
	}
	return &CA{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

// CertOptions describes a leaf certificate. Hosts that parse as IP addresses
// become IP SANs, the rest DNS SANs; the first host is also the CN. Empty
// Hosts means localhost, 127.0.0.1 and ::1, so that the common case (a probe
// dialling a loopback test server) verifies. Zero times mean now-1h and
// now+90d.
type CertOptions struct {
	Hosts     []string
	NotBefore time.Time
	NotAfter  time.Time
}

// Issue signs a server leaf certificate with the CA. The chain carries the CA
// certificate after the leaf so that clients see a complete chain, as they
// would from a real server, and chain-expiry facts can be computed.
func (ca *CA) Issue(t testing.TB, opts CertOptions) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := leafTemplate(t, opts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("probestest: issue certificate: %v", err)
	}
	return tlsCertificate(t, key, der, ca.Cert.Raw)
}

// Valid issues a certificate for hosts with the default validity.
func (ca *CA) Valid(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	return ca.Issue(t, CertOptions{Hosts: hosts})
}

// Expired issues a certificate that expired a day ago; it was issued long
// enough before that to look like a certificate someone forgot to renew.
func (ca *CA) Expired(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	now := time.Now()
	return ca.Issue(t, CertOptions{
		Hosts:     hosts,
		NotBefore: now.Add(-400 * 24 * time.Hour),
		NotAfter:  now.Add(-24 * time.Hour),
	})
}

// Pool returns a fresh pool holding only this CA, for a client's RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// WriteCAFile writes the CA certificate as PEM into a test temp dir, for
// configuration that takes a ca_file path.
func (ca *CA) WriteCAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, ca.CertPEM, 0o600); err != nil {
		t.Fatalf("probestest: write CA file: %v", err)
	}
	return path
}

// SelfSigned returns a leaf certificate signed by its own key. No CA made by
// NewCA trusts it, so clients fail with x509.UnknownAuthorityError.
func SelfSigned(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	return selfSigned(t, CertOptions{Hosts: hosts})
}

// ExpiredSelfSigned is a self-signed leaf that expired a day ago: both
// untrusted and expired, as on a forgotten appliance.
func ExpiredSelfSigned(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	now := time.Now()
	return selfSigned(t, CertOptions{
		Hosts:     hosts,
		NotBefore: now.Add(-400 * 24 * time.Hour),
		NotAfter:  now.Add(-24 * time.Hour),
	})
}

func selfSigned(t testing.TB, opts CertOptions) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := leafTemplate(t, opts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("probestest: create self-signed certificate: %v", err)
	}
	return tlsCertificate(t, key, der)
}

// ServerTLSConfig serves cert with a floor of TLS 1.2, the oldest version a
// mail server is expected to offer today.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
}

func leafTemplate(t testing.TB, opts CertOptions) *x509.Certificate {
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	now := time.Now()
	notBefore, notAfter := opts.NotBefore, opts.NotAfter
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = now.Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"probestest"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl
}

func tlsCertificate(t testing.TB, key crypto.Signer, chain ...[]byte) tls.Certificate {
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatalf("probestest: parse leaf certificate: %v", err)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("probestest: generate key: %v", err)
	}
	return key
}

func newSerial(t testing.TB) *big.Int {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("probestest: generate serial: %v", err)
	}
	return serial
}
