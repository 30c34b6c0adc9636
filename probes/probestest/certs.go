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
	"fmt"
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
	ca, err := GenerateCA()
	if err != nil {
		t.Fatalf("probestest: %v", err)
	}
	return ca
}

// GenerateCA is NewCA for programs that are not tests (the load server).
func GenerateCA() (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "probestest CA", Organization: []string{"probestest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
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
	cert, err := ca.Generate(opts)
	if err != nil {
		t.Fatalf("probestest: %v", err)
	}
	return cert
}

// Generate is Issue for programs that are not tests (the load server).
func (ca *CA) Generate(opts CertOptions) (tls.Certificate, error) {
	return sign(opts, ca.Cert, ca.Key, ca.Cert.Raw)
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
	cert, err := sign(opts, nil, nil)
	if err != nil {
		t.Fatalf("probestest: %v", err)
	}
	return cert
}

// sign makes a leaf for opts signed by parent with parentKey, or by itself
// when parent is nil, and returns it with the rest of the chain after it.
func sign(opts CertOptions, parent *x509.Certificate, parentKey crypto.Signer, rest ...[]byte) (tls.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl, err := leafTemplate(opts)
	if err != nil {
		return tls.Certificate{}, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse leaf certificate: %w", err)
	}
	return tls.Certificate{Certificate: append([][]byte{der}, rest...), PrivateKey: key, Leaf: leaf}, nil
}

// ServerTLSConfig serves cert with a floor of TLS 1.2, the oldest version a
// mail server is expected to offer today.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
}

func leafTemplate(opts CertOptions) (*x509.Certificate, error) {
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
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
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
	return tmpl, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	return serial, nil
}
