package probes

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/config"
)

// TLSInfo holds the facts of one TLS connection, recorded whether or not the
// certificate verified, so that an expired certificate still shows its dates.
type TLSInfo struct {
	Version    string
	Cipher     string
	ServerName string
	// Verified is the outcome of verifying the chain against the module's
	// trust roots and server name, also when insecure_skip_verify is set.
	Verified    bool
	VerifyError error
	// EarliestExpiry is the first NotAfter over the presented chain;
	// ChainExpiry the latest, over all verified chains, of each chain's
	// earliest NotAfter (as blackbox_exporter reports them).
	EarliestExpiry time.Time
	ChainExpiry    time.Time
	Certificates   []CertInfo
	// Peer is the chain as presented, for checks that match certificates
	// or keys byte for byte (DANE, MTA-STS); never in the output, and not
	// kept in stored results.
	Peer []*x509.Certificate
}

// CertInfo describes one presented certificate.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names"`
	IPAddresses []string  `json:"ip_addresses"`
	Serial      string    `json:"serial"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	SHA256      string    `json:"sha256"`
}

// MarshalJSON writes times as RFC 3339 and the verification error as text.
func (t *TLSInfo) MarshalJSON() ([]byte, error) {
	var verr, chain string
	if t.VerifyError != nil {
		verr = t.VerifyError.Error()
	}
	if !t.ChainExpiry.IsZero() {
		chain = t.ChainExpiry.UTC().Format(time.RFC3339)
	}
	return json.Marshal(struct {
		Version        string     `json:"version"`
		Cipher         string     `json:"cipher"`
		ServerName     string     `json:"server_name"`
		Verified       bool       `json:"verified"`
		VerifyError    string     `json:"verify_error,omitempty"`
		EarliestExpiry string     `json:"earliest_expiry"`
		ChainExpiry    string     `json:"chain_expiry,omitempty"`
		Certificates   []CertInfo `json:"certificates"`
	}{t.Version, t.Cipher, t.ServerName, t.Verified, verr,
		t.EarliestExpiry.UTC().Format(time.RFC3339), chain, t.Certificates})
}

// TLSFacts records the connection state and verifies the presented chain
// itself: the handshake runs with verification off so that a bad
// certificate is still examined rather than just refused.
func TLSFacts(cs tls.ConnectionState, roots *x509.CertPool, serverName string) *TLSInfo {
	info := &TLSInfo{
		Version:    tls.VersionName(cs.Version),
		Cipher:     cipherSuiteName(cs.CipherSuite),
		ServerName: serverName,
		Peer:       cs.PeerCertificates,
	}
	sums := make([][sha256.Size]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		sums[i] = sha256.Sum256(c.Raw)
		info.Certificates = append(info.Certificates, cachedCertInfo(c, sums[i]))
		if info.EarliestExpiry.IsZero() || c.NotAfter.Before(info.EarliestExpiry) {
			info.EarliestExpiry = c.NotAfter
		}
	}
	if len(cs.PeerCertificates) == 0 {
		info.VerifyError = errors.New("server presented no certificate")
		return info
	}
	chainExpiry, err := verifyChain(cs.PeerCertificates, sums, roots, serverName, time.Now())
	if err != nil {
		info.VerifyError = err
		return info
	}
	info.Verified = true
	info.ChainExpiry = chainExpiry
	return info
}

func certInfo(c *x509.Certificate, sum [sha256.Size]byte) CertInfo {
	ci := CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		DNSNames:  c.DNSNames,
		Serial:    c.SerialNumber.Text(16),
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
		SHA256:    hex.EncodeToString(sum[:]),
	}
	if ci.DNSNames == nil {
		ci.DNSNames = []string{}
	}
	ci.IPAddresses = []string{}
	for _, ip := range c.IPAddresses {
		ci.IPAddresses = append(ci.IPAddresses, ip.String())
	}
	return ci
}

// Redacted is a copy of t with every name a certificate carries passed
// through red: certificate names are server data, and a server that saw a
// password in an earlier session could mint a certificate with it. The
// verification error keeps its type (VerifyReason reads it) unless red
// changed its text.
func (t *TLSInfo) Redacted(red func(string) string) *TLSInfo {
	if t == nil {
		return nil
	}
	c := *t
	c.ServerName = red(c.ServerName)
	if c.VerifyError != nil {
		if msg := red(c.VerifyError.Error()); msg != c.VerifyError.Error() {
			c.VerifyError = errors.New(msg)
		}
	}
	c.Certificates = make([]CertInfo, len(t.Certificates))
	for i, ci := range t.Certificates {
		ci.Subject, ci.Issuer = red(ci.Subject), red(ci.Issuer)
		ci.DNSNames, ci.IPAddresses = redactAll(ci.DNSNames, red), redactAll(ci.IPAddresses, red)
		c.Certificates[i] = ci
	}
	return &c
}

func redactAll(ss []string, red func(string) string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = red(s)
	}
	return out
}

// VerifyReason maps a failed verification onto the taxonomy. The error
// says what the verifier found first, in an order of its own (a platform
// verifier has another); an expired leaf is reported as expired whatever
// else is wrong, as expiry is the fact an operator can act on first. Other
// certificates the server sent are not looked at: one the chain does not
// need can be expired without anything being wrong.
func VerifyReason(info *TLSInfo, now time.Time) Reason {
	var inv x509.CertificateInvalidError
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(info.VerifyError, &inv) && inv.Reason == x509.Expired:
		return ReasonCertExpired
	case len(info.Certificates) > 0 && outsideValidity(info.Certificates[0], now):
		return ReasonCertExpired
	case errors.As(info.VerifyError, &host):
		return ReasonCertHostname
	case errors.As(info.VerifyError, &unknown):
		return ReasonCertUntrusted
	}
	return ReasonCertUntrusted
}

func outsideValidity(c CertInfo, now time.Time) bool {
	return now.After(c.NotAfter) || now.Before(c.NotBefore)
}

// TLSVerifyError wraps a verification failure with its reason.
type TLSVerifyError struct {
	Reason Reason
	Err    error
}

func (e *TLSVerifyError) Error() string {
	return fmt.Sprintf("certificate verification failed (%s): %v", e.Reason, e.Err)
}

func (e *TLSVerifyError) Unwrap() error { return e.Err }

// tlsConfigs and clientCerts keep what ClientTLSConfig builds, per
// tls_config: parsing the CA file at every probe cost more than the rest
// of the dialog around the handshake.
var (
	tlsConfigs  fileCache[config.TLSConfig, *tls.Config]
	clientCerts fileCache[config.TLSConfig, *tls.Certificate]
)

// ClientTLSConfig is config.NewTLSConfig(tc), a config of the caller's own
// to change, but built again only when the CA, client certificate or key
// file changed (see fileCache): a rotated file is still picked up by the
// next probe. The client key pair a server asks for is likewise read when
// its files changed, not at every handshake.
func ClientTLSConfig(tc *config.TLSConfig) (*tls.Config, error) {
	key := *tc
	files := []string{key.CAFile, key.CertFile, key.KeyFile}
	base, err := tlsConfigs.get(key, files, func() (*tls.Config, error) {
		cfg, err := config.NewTLSConfig(&key)
		if err != nil {
			return nil, err
		}
		if load := cfg.GetClientCertificate; load != nil {
			cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return clientCerts.get(key, files[1:], func() (*tls.Certificate, error) { return load(cri) })
			}
		}
		return cfg, nil
	})
	if err != nil {
		return nil, err
	}
	return base.Clone(), nil
}
