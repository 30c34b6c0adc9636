package probes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
)

// settled backdates path as a file that has not changed for an hour (plus
// offset), so that the cache may reuse what it read from it.
func settled(t *testing.T, path string, offset time.Duration) {
	t.Helper()
	old := time.Now().Add(-time.Hour + offset)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testCAPEM is a fresh self-signed CA certificate, as PEM.
func testCAPEM(t *testing.T, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// poolIs reports whether tc's config trusts exactly the CA caPEM.
func poolIs(t *testing.T, tc *config.TLSConfig, caPEM string) bool {
	t.Helper()
	cfg, err := ClientTLSConfig(tc)
	if err != nil {
		t.Fatal(err)
	}
	want := x509.NewCertPool()
	want.AppendCertsFromPEM([]byte(caPEM))
	return cfg.RootCAs.Equal(want)
}

func TestClientTLSConfig_CAFileReadOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	tc := &config.TLSConfig{CAFile: caFile, ServerName: "mx.example.test"}

	first := testCAPEM(t, "first CA")
	writeFile(t, caFile, first)
	settled(t, caFile, 0)
	before := tlsConfigs.loadCount()
	a, err := ClientTLSConfig(tc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ClientTLSConfig(tc)
	if err != nil {
		t.Fatal(err)
	}
	if got := tlsConfigs.loadCount() - before; got != 1 {
		t.Errorf("two probes of an unchanged CA file built the config %d times, want 1", got)
	}
	if a == b {
		t.Error("both callers got the same *tls.Config: each must get its own to change")
	}
	if a.RootCAs != b.RootCAs || a.ServerName != "mx.example.test" {
		t.Errorf("configs differ: pools %p, %p, server name %q", a.RootCAs, b.RootCAs, a.ServerName)
	}
	a.ServerName = "changed.example.test"
	if !poolIs(t, tc, first) {
		t.Fatal("the pool does not hold the CA file's CA")
	}
	if c, _ := ClientTLSConfig(tc); c.ServerName != "mx.example.test" {
		t.Errorf("a caller's change reached the next caller: server name %q", c.ServerName)
	}

	// Rewritten in place: the modification time changes.
	second := testCAPEM(t, "second CA")
	writeFile(t, caFile, second)
	settled(t, caFile, time.Minute)
	if !poolIs(t, tc, second) {
		t.Error("after rewriting the CA file the pool does not hold the new CA")
	}
	// Replaced by renaming another file over it, with the same time.
	next := filepath.Join(dir, "ca.pem.new")
	third := testCAPEM(t, "third CA")
	writeFile(t, next, third)
	settled(t, next, time.Minute)
	if err := os.Rename(next, caFile); err != nil {
		t.Fatal(err)
	}
	if !poolIs(t, tc, third) {
		t.Error("after renaming a new CA file over the old one the pool does not hold the new CA")
	}
	// Gone: the probe fails as it did without a cache.
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if _, err := ClientTLSConfig(tc); err == nil {
		t.Error("a removed CA file still gave a config")
	}
}

func TestSecret_RotatedFilePickedUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "password")
	a := &AuthConfig{PasswordFile: path}
	check := func(want string) {
		t.Helper()
		got, err := a.Secret()
		if err != nil || got != want {
			t.Fatalf("Secret() = %q, %v; want %q", got, err, want)
		}
	}
	// Just written, and again within the same clock tick, at the same
	// size: not trusted to the timestamps, read each time.
	writeFile(t, path, "old-secret\n")
	check("old-secret")
	writeFile(t, path, "new-secret\n")
	check("new-secret")

	settled(t, path, 0)
	check("new-secret")
	loads := secretFiles.loadCount()
	check("new-secret")
	if secretFiles.loadCount() != loads {
		t.Error("an unchanged, settled password file was read again")
	}
	writeFile(t, path, "newer-secret")
	settled(t, path, time.Second)
	check("newer-secret")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Secret(); err == nil {
		t.Error("a removed password file still gave a secret")
	}
}

// TestFileCache_Concurrent runs gets while the file changes, for -race.
func TestFileCache_Concurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, "token-0")
	settled(t, path, 0)
	a := &AuthConfig{TokenFile: path}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := a.Secret(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 5 {
		writeFile(t, path, "token-"+string(rune('1'+i)))
		settled(t, path, time.Duration(i+1)*time.Second)
	}
	wg.Wait()
	if got, _ := a.Secret(); got != "token-5" {
		t.Errorf("Secret() = %q after the last rotation, want token-5", got)
	}
}
