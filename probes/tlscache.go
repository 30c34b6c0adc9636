package probes

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"sync/atomic"
	"time"
)

// At fleet scale a target presents the same chain probe after probe. Two
// things derived from it cost CPU at every probe although they depend on
// nothing but the certificates' bytes and the trust settings: the
// verification of the chain (a signature check per link, about a sixth of
// a STARTTLS probe's CPU) and the certificates' descriptions (names
// rendered as text, serials, fingerprints). Both are remembered here. The
// handshake itself is not: crypto/tls still checks at every probe the
// server's signature over the handshake, its proof that it holds the
// certificate's key, and every probe still reads the chain the server
// actually presented.

// maxTLSCacheEntries bounds each cache: a few times the certificates of a
// 10,000-target fleet, a few MiB at most. A full cache drops entries at
// random; a dropped entry costs one verification.
const maxTLSCacheEntries = 1 << 15

// verifiedTTL is how long a verification is reused. Within it an entry is
// also used only while every certificate of the verified chains is within
// its validity, so expiry is seen at the first probe after it.
const verifiedTTL = time.Hour

// boundedCache is a map safe for concurrent use that holds at most
// maxTLSCacheEntries entries.
type boundedCache[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (c *boundedCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	return v, ok
}

// put stores v, first dropping entries the keep function refuses (stale
// ones) and, if the map is still full, arbitrary ones: Go's map iteration
// starts at a random place.
func (c *boundedCache[K, V]) put(k K, v V, keep func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[K]V)
	}
	if len(c.m) >= maxTLSCacheEntries {
		for k, v := range c.m {
			if keep != nil && !keep(v) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < maxTLSCacheEntries*7/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[k] = v
}

// clear drops every entry and returns how many there were.
func (c *boundedCache[K, V]) clear() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.m)
	clear(c.m)
	return n
}

func (c *boundedCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// verifyKey names one verification: the presented certificates (a digest
// over their SHA-256 fingerprints, in order), the trust roots (a pool is
// built again when the CA file changes, so a rotated CA file is a new key;
// nil is the system's roots) and the name verified.
type verifyKey struct {
	chain [sha256.Size]byte
	roots *x509.CertPool
	name  string
}

// verified is what a successful verification yields that TLSFacts keeps,
// and the window in which it stays true.
type verified struct {
	chainExpiry         time.Time
	notBefore, notAfter time.Time // the latest NotBefore and earliest NotAfter of the chains' certificates
	until               time.Time // verifiedTTL after the verification
}

func (v verified) holdsAt(now time.Time) bool {
	return now.Before(v.until) && !now.Before(v.notBefore) && !now.After(v.notAfter)
}

var (
	verifiedChains boundedCache[verifyKey, verified]
	certInfos      boundedCache[[sha256.Size]byte, CertInfo]
	verifications  atomic.Int64 // chains verified, not reused; for tests
)

// ForgetVerifications drops every reused verification, so that the next
// probe of each chain verifies it again: the exporter calls it on a reload,
// the operator's way of saying "start afresh" (after a change to the
// system's trust store, say), and benchmarks to measure a probe that
// verifies. It returns how many it dropped.
func ForgetVerifications() int { return verifiedChains.clear() }

// chainDigest is the key part of a presented chain, made from the
// certificates' fingerprints.
func chainDigest(sums [][sha256.Size]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range sums {
		h.Write(s[:])
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// verifyChain verifies peer against roots for name, or reuses an earlier
// success with the same key that still holds at now. Failures are never
// kept: what a hostile server presents cannot fill the cache.
func verifyChain(peer []*x509.Certificate, sums [][sha256.Size]byte, roots *x509.CertPool, name string, now time.Time) (chainExpiry time.Time, err error) {
	key := verifyKey{chain: chainDigest(sums), roots: roots, name: name}
	if v, ok := verifiedChains.get(key); ok && v.holdsAt(now) {
		return v.chainExpiry, nil
	}
	var inter *x509.CertPool // none for a lone leaf, as most servers send
	if len(peer) > 1 {
		inter = x509.NewCertPool()
		for _, c := range peer[1:] {
			inter.AddCert(c)
		}
	}
	verifications.Add(1)
	chains, err := peer[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name,
		CurrentTime:   now,
	})
	if err != nil {
		return time.Time{}, err
	}
	v := verified{until: now.Add(verifiedTTL)}
	for _, c := range peer {
		// A presented certificate not yet valid may open another chain
		// once it is, with another expiry: verify again then.
		if c.NotBefore.After(now) && c.NotBefore.Before(v.until) {
			v.until = c.NotBefore
		}
	}
	for _, chain := range chains {
		var earliest time.Time
		for _, c := range chain {
			if earliest.IsZero() || c.NotAfter.Before(earliest) {
				earliest = c.NotAfter
			}
			if v.notAfter.IsZero() || c.NotAfter.Before(v.notAfter) {
				v.notAfter = c.NotAfter
			}
			if c.NotBefore.After(v.notBefore) {
				v.notBefore = c.NotBefore
			}
		}
		if earliest.After(v.chainExpiry) {
			v.chainExpiry = earliest
		}
	}
	verifiedChains.put(key, v, func(e verified) bool { return e.holdsAt(now) })
	return v.chainExpiry, nil
}

// cachedCertInfo is certInfo(c) for the certificate whose fingerprint is
// sum, built once per certificate. The slices of a cached CertInfo are
// shared by every result that holds it, and so never changed (Redacted
// makes new ones).
func cachedCertInfo(c *x509.Certificate, sum [sha256.Size]byte) CertInfo {
	if ci, ok := certInfos.get(sum); ok {
		return ci
	}
	ci := certInfo(c, sum)
	certInfos.put(sum, ci, nil)
	return ci
}

// cipherSuiteNames is every suite crypto/tls names. tls.CipherSuiteName
// builds both lists of suites afresh at every call, the largest allocation
// of a probe outside the handshake.
var cipherSuiteNames = sync.OnceValue(func() map[uint16]string {
	names := make(map[uint16]string)
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range list {
			names[c.ID] = c.Name
		}
	}
	return names
})

// cipherSuiteName is tls.CipherSuiteName without the allocations.
func cipherSuiteName(id uint16) string {
	if name, ok := cipherSuiteNames()[id]; ok {
		return name
	}
	return tls.CipherSuiteName(id)
}
