package probes

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

func peerOf(t *testing.T, ca *probestest.CA, opts probestest.CertOptions) ([]*x509.Certificate, [][sha256.Size]byte) {
	t.Helper()
	cert := ca.Issue(t, opts)
	var peer []*x509.Certificate
	var sums [][sha256.Size]byte
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		peer = append(peer, c)
		sums = append(sums, sha256.Sum256(der))
	}
	return peer, sums
}

func TestVerifyChain_ReusedOnlyForTheSameChainRootsAndName(t *testing.T) {
	ca, other := probestest.NewCA(t), probestest.NewCA(t)
	now := time.Now()
	peer, sums := peerOf(t, ca, probestest.CertOptions{Hosts: []string{"mx.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)})
	roots := ca.Pool()

	n := verifications.Load()
	exp1, err := verifyChain(peer, sums, roots, "mx.example.test", now)
	if err != nil {
		t.Fatal(err)
	}
	exp2, err := verifyChain(peer, sums, roots, "mx.example.test", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := verifications.Load() - n; got != 1 {
		t.Errorf("the same chain, roots and name verified %d times, want 1 (the second reused)", got)
	}
	if !exp1.Equal(exp2) || exp1.IsZero() {
		t.Errorf("chain expiry %v then %v, want the same, set", exp1, exp2)
	}

	var host x509.HostnameError
	if _, err := verifyChain(peer, sums, roots, "other.example.test", now); !errors.As(err, &host) {
		t.Errorf("another name after a success: %v, want a hostname error", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := verifyChain(peer, sums, other.Pool(), "mx.example.test", now); !errors.As(err, &unknown) {
		t.Errorf("other roots after a success: %v, want unknown authority", err)
	}
	// Another certificate for the same name is another key.
	peer2, sums2 := peerOf(t, other, probestest.CertOptions{Hosts: []string{"mx.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)})
	if _, err := verifyChain(peer2, sums2, roots, "mx.example.test", now); !errors.As(err, &unknown) {
		t.Errorf("another chain under a cached name and roots: %v, want unknown authority", err)
	}
}

func TestVerifyChain_ExpiryAndTTLEndReuse(t *testing.T) {
	ca := probestest.NewCA(t)
	now := time.Now()
	peer, sums := peerOf(t, ca, probestest.CertOptions{Hosts: []string{"mx.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * time.Minute)})
	roots := ca.Pool()
	if _, err := verifyChain(peer, sums, roots, "mx.example.test", now); err != nil {
		t.Fatal(err)
	}
	var inv x509.CertificateInvalidError
	if _, err := verifyChain(peer, sums, roots, "mx.example.test", now.Add(31*time.Minute)); !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("a cached chain after its leaf expired: %v, want expired", err)
	}

	long, longSums := peerOf(t, ca, probestest.CertOptions{Hosts: []string{"mx.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour)})
	if _, err := verifyChain(long, longSums, roots, "mx.example.test", now); err != nil {
		t.Fatal(err)
	}
	n := verifications.Load()
	if _, err := verifyChain(long, longSums, roots, "mx.example.test", now.Add(verifiedTTL+time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := verifications.Load() - n; got != 1 {
		t.Errorf("after verifiedTTL the chain was verified %d times, want 1 (verified again)", got)
	}
}

func TestVerifyChain_FailuresNotKept(t *testing.T) {
	ca := probestest.NewCA(t)
	now := time.Now()
	peer, sums := peerOf(t, ca, probestest.CertOptions{Hosts: []string{"mx.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	before := verifiedChains.len()
	for range 3 {
		if _, err := verifyChain(peer, sums, ca.Pool(), "wrong.example.test", now); err == nil {
			t.Fatal("a wrong name verified")
		}
	}
	if got := verifiedChains.len(); got != before {
		t.Errorf("failed verifications left %d entries, want %d", got, before)
	}
}

func TestBoundedCache_StaysBounded(t *testing.T) {
	var c boundedCache[int, int]
	for i := range maxTLSCacheEntries + 100 {
		c.put(i, i, func(v int) bool { return v%2 == 0 })
	}
	if got := c.len(); got > maxTLSCacheEntries {
		t.Errorf("%d entries, want at most %d", got, maxTLSCacheEntries)
	}
	if v, ok := c.get(maxTLSCacheEntries + 99); !ok || v != maxTLSCacheEntries+99 {
		t.Errorf("the last entry put is %d, %v", v, ok)
	}

	// Without a staleness test a full cache drops an eighth, not all.
	var d boundedCache[int, int]
	for i := range maxTLSCacheEntries + 1 {
		d.put(i, i, nil)
	}
	if got := d.len(); got > maxTLSCacheEntries || got < maxTLSCacheEntries*7/8 {
		t.Errorf("%d entries after one put too many, want between %d and %d", got, maxTLSCacheEntries*7/8, maxTLSCacheEntries)
	}
}

func TestCachedCertInfo_SameAsBuilt(t *testing.T) {
	ca := probestest.NewCA(t)
	now := time.Now()
	peer, sums := peerOf(t, ca, probestest.CertOptions{Hosts: []string{"mx.example.test", "127.0.0.1"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	want := certInfo(peer[0], sums[0])
	for range 2 {
		got := cachedCertInfo(peer[0], sums[0])
		if got.Subject != want.Subject || got.Serial != want.Serial || got.SHA256 != want.SHA256 ||
			len(got.DNSNames) != len(want.DNSNames) || len(got.IPAddresses) != len(want.IPAddresses) || !got.NotAfter.Equal(want.NotAfter) {
			t.Errorf("cached %+v, built %+v", got, want)
		}
	}
}

func TestCipherSuiteName_AsCryptoTLS(t *testing.T) {
	ids := []uint16{0x0000, 0xffff, tls.TLS_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_RC4_128_SHA}
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range list {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		if got, want := cipherSuiteName(id), tls.CipherSuiteName(id); got != want {
			t.Errorf("suite %#04x: %q, crypto/tls says %q", id, got, want)
		}
	}
}

func TestForgetVerifications(t *testing.T) {
	ca := probestest.NewCA(t)
	now := time.Now()
	peer, sums := peerOf(t, ca, probestest.CertOptions{Hosts: []string{"mx.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	for range 2 {
		if _, err := verifyChain(peer, sums, ca.Pool(), "mx.example.test", now); err != nil {
			t.Fatal(err)
		}
	}
	if n := ForgetVerifications(); n < 1 {
		t.Errorf("ForgetVerifications dropped %d, want at least the one kept", n)
	}
	if got := verifiedChains.len(); got != 0 {
		t.Fatalf("%d verifications kept after ForgetVerifications", got)
	}
	n := verifications.Load()
	if _, err := verifyChain(peer, sums, ca.Pool(), "mx.example.test", now); err != nil {
		t.Fatal(err)
	}
	if verifications.Load() != n+1 {
		t.Error("the chain was not verified again after ForgetVerifications")
	}
}
