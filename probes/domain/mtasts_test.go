package domain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

func TestParseSTSRecord(t *testing.T) {
	tests := []struct {
		record string
		wantID string
		ok     bool
	}{
		{"v=STSv1; id=20160831085700Z;", "20160831085700Z", true},
		{"v=STSv1;id=abc", "abc", true},
		{"v=STSv1 ; id=abc ;", "abc", true},
		{"v=STSv1; id=abc; ext_1.x=some-value", "abc", true},
		{"v=STSv1; id=first; id=second", "first", true},
		{"v=STSv1; id=" + strings.Repeat("a", 32), strings.Repeat("a", 32), true},
		{"v=STSv1; id=" + strings.Repeat("a", 33), "", false},
		{"v=STSv1; id=", "", false},
		{"v=STSv1; id=a-b", "", false},
		{"v=STSv1", "", false},
		{"v=STSv1;", "", false},
		{"v=STSv1; ext=1", "", false},
		{"v=STSv1;; id=abc", "", false},
		{"v=STSv1; id=abc; =x", "", false},
		{"v=STSv1; id=abc; ext=a b", "", false},
		{"v=STSv1; id abc", "", false},
		{"v=STSv2; id=abc", "", false},
	}
	for _, tt := range tests {
		id, err := ParseSTSRecord(tt.record)
		if (err == nil) != tt.ok || id != tt.wantID {
			t.Errorf("ParseSTSRecord(%q) = %q, %v; want %q, ok=%v", tt.record, id, err, tt.wantID, tt.ok)
		}
	}
}

func TestSelectSTSRecord(t *testing.T) {
	tests := []struct {
		name      string
		txts      []string
		wantID    string
		wantFound bool
		wantErr   bool
	}{
		{"none", nil, "", false, false},
		{"others discarded", []string{"v=spf1 -all", "v=STSv10; id=x", "hello"}, "", false, false},
		{"one among others", []string{"v=spf1 -all", "v=STSv1; id=abc"}, "abc", true, false},
		{"two", []string{"v=STSv1; id=abc", "v=STSv1; id=def"}, "", true, true},
		{"one invalid", []string{"v=STSv1; id=!"}, "", true, true},
	}
	for _, tt := range tests {
		id, found, err := SelectSTSRecord(tt.txts)
		if id != tt.wantID || found != tt.wantFound || (err != nil) != tt.wantErr {
			t.Errorf("%s: got %q, %v, %v; want %q, %v, err=%v", tt.name, id, found, err, tt.wantID, tt.wantFound, tt.wantErr)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	valid := "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"
	tests := []struct {
		name string
		body string
		want *Policy // nil: an error is expected
	}{
		{"CRLF", valid, &Policy{"STSv1", "enforce", 604800, []string{"mail.example.com", "*.example.net"}}},
		{"LF", strings.ReplaceAll(valid, "\r\n", "\n"), &Policy{"STSv1", "enforce", 604800, []string{"mail.example.com", "*.example.net"}}},
		{"no final newline, blanks", "version:STSv1\nmode:   testing  \n\nmx: MX.Example.COM\nmax_age: 0", &Policy{"STSv1", "testing", 0, []string{"MX.Example.COM"}}},
		{"mode none without mx", "version: STSv1\nmode: none\nmax_age: 86400\n", &Policy{"STSv1", "none", 86400, nil}},
		{"extension ignored", valid + "ext_field.1: any value ü\n", &Policy{"STSv1", "enforce", 604800, []string{"mail.example.com", "*.example.net"}}},
		{"duplicate: first wins", valid + "mode: testing\nmax_age: 5\n", &Policy{"STSv1", "enforce", 604800, []string{"mail.example.com", "*.example.net"}}},
		{"max_age at the limit", "version: STSv1\nmode: none\nmax_age: 31557600\n", &Policy{"STSv1", "none", 31557600, nil}},
		{"max_age over the limit", "version: STSv1\nmode: none\nmax_age: 31557601\n", nil},
		{"max_age 11 digits", "version: STSv1\nmode: none\nmax_age: 00000000001\n", nil},
		{"max_age signed", "version: STSv1\nmode: none\nmax_age: +5\n", nil},
		{"max_age negative", "version: STSv1\nmode: none\nmax_age: -5\n", nil},
		{"no version", "mode: none\nmax_age: 5\n", nil},
		{"no mode", "version: STSv1\nmax_age: 5\n", nil},
		{"no max_age", "version: STSv1\nmode: none\n", nil},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 5\n", nil},
		{"testing without mx", "version: STSv1\nmode: testing\nmax_age: 5\n", nil},
		{"bad version", "version: STSv2\nmode: none\nmax_age: 5\n", nil},
		{"bad mode", "version: STSv1\nmode: report\nmax_age: 5\n", nil},
		{"mode case", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 5\n", nil},
		{"no colon", valid + "garbage\n", nil},
		{"bad name", valid + "_x: y\n", nil},
		{"empty value", valid + "ext:\n", nil},
		{"control in value", valid + "ext: a\x01b\n", nil},
		{"stray CR", "version: STSv1\rmode: none\nmax_age: 5\n", nil},
		{"HTML", "<html><body>Not found</body></html>", nil},
	}
	for _, bad := range []string{"*", "*.", "mail.*.example.com", "*example.com", "**.example.com", "-mail.example.com",
		"mail-.example.com", "mail..example.com", "mail.example.com.", "mail_1.example.com", "mail example.com",
		"192.0.2.1:25", strings.Repeat("a", 64) + ".example.com"} {
		tests = append(tests, struct {
			name string
			body string
			want *Policy
		}{"bad mx " + bad, "version: STSv1\nmode: enforce\nmx: " + bad + "\nmax_age: 5\n", nil})
	}
	for _, tt := range tests {
		got, err := ParsePolicy([]byte(tt.body))
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: ParsePolicy = %+v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: ParsePolicy: %v", tt.name, err)
			continue
		}
		if got.Version != tt.want.Version || got.Mode != tt.want.Mode || got.MaxAge != tt.want.MaxAge ||
			strings.Join(got.MX, ",") != strings.Join(tt.want.MX, ",") {
			t.Errorf("%s: ParsePolicy = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestMatchMXPattern(t *testing.T) {
	tests := []struct {
		pattern, mx string
		want        bool
	}{
		{"mail.example.com", "mail.example.com", true},
		{"mail.example.com", "MAIL.Example.com.", true},
		{"Mail.Example.COM", "mail.example.com", true},
		{"mail.example.com", "mail2.example.com", false},
		{"mail.example.com", "example.com", false},
		{"*.example.com", "mx1.example.com", true},
		{"*.example.com", "MX1.EXAMPLE.COM.", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "mx1.example.com.evil", false},
		{"*.example.com", "mx1example.com", false},
		{"mail.example.com", "", false},
	}
	for _, tt := range tests {
		if got := MatchMXPattern(tt.pattern, tt.mx); got != tt.want {
			t.Errorf("MatchMXPattern(%q, %q) = %v, want %v", tt.pattern, tt.mx, got, tt.want)
		}
	}
}

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.backup.example.com\r\nmax_age: 604800\r\n"

// policyServer serves handler over TLS with httptest's certificate, which
// is valid for example.com and *.example.com, and returns the options that
// reach it: the certificate as the only root, every dial sent to it. The
// handshakes that tests make fail on purpose are not logged.
func policyServer(t *testing.T, handler http.HandlerFunc) HTTPOptions {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().String()
	return HTTPOptions{
		TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
}

// servePolicy answers the well-known path with body as text/plain and
// records the Host the client asked for.
func servePolicy(body string, gotHost *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if gotHost != nil {
			*gotHost = r.Host
		}
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	}
}

func TestFetchPolicy(t *testing.T) {
	var host string
	opts := policyServer(t, servePolicy(goodPolicy, &host))
	body, ctype, err := FetchPolicy(context.Background(), "Example.COM.", opts)
	if err != nil {
		t.Fatalf("FetchPolicy: %v", err)
	}
	if string(body) != goodPolicy || ctype != "text/plain" || host != "mta-sts.example.com" {
		t.Errorf("FetchPolicy = %q, %q (host %q)", body, ctype, host)
	}
}

func TestFetchPolicyRefuses(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"oversize", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(goodPolicy + strings.Repeat("ext: padding\n", PolicyMaxBytes/13+1)))
		}, "larger than"},
		{"redirect", redirectTo("https://mta-sts.example.com/elsewhere.txt", http.StatusFound), "RFC 8461 §3.3"},
		{"permanent redirect", redirectTo("/elsewhere.txt", http.StatusMovedPermanently), "RFC 8461 §3.3"},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP 404"},
		{"HTML", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<html>" + goodPolicy + "</html>"))
		}, "media type"},
		{"octet stream", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write([]byte(goodPolicy))
		}, "media type"},
		{"bad media type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; ===")
			_, _ = w.Write([]byte(goodPolicy))
		}, "media type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := policyServer(t, tt.handler)
			body, _, err := FetchPolicy(context.Background(), "example.com", opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("FetchPolicy = %d bytes, %v; want an error with %q", len(body), err, tt.wantErr)
			}
		})
	}
}

// redirectTo sends the policy path elsewhere, where a good policy waits
// for a client that follows.
func redirectTo(location string, code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere.txt" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(goodPolicy))
			return
		}
		http.Redirect(w, r, location, code)
	}
}

func TestFetchPolicyMediaTypeLenient(t *testing.T) {
	for _, ctype := range []string{"text/plain; charset=utf-8", "TEXT/Plain", ""} {
		opts := policyServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing: send exactly ctype
			if ctype != "" {
				w.Header().Set("Content-Type", ctype)
			}
			_, _ = w.Write([]byte(goodPolicy))
		})
		body, got, err := FetchPolicy(context.Background(), "example.com", opts)
		if err != nil || string(body) != goodPolicy || got != ctype {
			t.Errorf("Content-Type %q: FetchPolicy = %q, %q, %v", ctype, body, got, err)
		}
	}
}

func TestFetchPolicyVerifiesCertificate(t *testing.T) {
	opts := policyServer(t, servePolicy(goodPolicy, nil))
	// The test certificate is not valid for mta-sts.example.org.
	if _, _, err := FetchPolicy(context.Background(), "example.org", opts); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("wrong name: err = %v, want a certificate error", err)
	}
	// Without the test certificate among the roots it is untrusted, also
	// when the caller's configuration asks to skip verification.
	skip := opts
	skip.TLSConfig = &tls.Config{InsecureSkipVerify: true, RootCAs: x509.NewCertPool()} //nolint:gosec // the point of the test
	if _, _, err := FetchPolicy(context.Background(), "example.com", skip); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted: err = %v, want a certificate error", err)
	}
}

func TestFetchPolicyHonoursDeadline(t *testing.T) {
	release := make(chan struct{})
	// Not ended by the request's context, which can end before the
	// client gives up, and the handler would then answer 200 in time.
	opts := policyServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := FetchPolicy(ctx, "example.com", opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}

// txt answers _mta-sts.example.com with records.
func txt(records ...string) TXTLookup {
	return func(_ context.Context, name string) ([]string, error) {
		if name != "_mta-sts.example.com" {
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		}
		return records, nil
	}
}

type reasonErr struct{ r probes.Reason }

func (e reasonErr) Error() string         { return "lookup failed: " + string(e.r) }
func (e reasonErr) Reason() probes.Reason { return e.r }

func chainOf(c tls.Certificate) []*x509.Certificate {
	var chain []*x509.Certificate
	for _, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		chain = append(chain, cert)
	}
	return chain
}

func TestCheckMTASTS(t *testing.T) {
	ca := probestest.NewCA(t)
	now := time.Now()
	mx1 := PresentedChain{Host: "mx1.example.com", Label: "ipv4", Chain: chainOf(ca.Valid(t, "mx1.example.com"))}
	mx2 := PresentedChain{Host: "mx2.backup.example.com", Label: "ipv6", Chain: chainOf(ca.Valid(t, "*.backup.example.com"))}
	wrongName := PresentedChain{Host: "mx1.example.com", Label: "ipv6", Chain: chainOf(ca.Valid(t, "mail.example.net"))}
	expired := PresentedChain{Host: "mx1.example.com", Label: "ipv6", Chain: chainOf(ca.Expired(t, "mx1.example.com"))}
	selfSigned := PresentedChain{Host: "mx1.example.com", Chain: chainOf(probestest.SelfSigned(t, "mx1.example.com"))}
	noTLS := PresentedChain{Host: "mx1.example.com"}
	record := "v=STSv1; id=20240101T000000"
	testingPolicy := strings.Replace(goodPolicy, "enforce", "testing", 1)
	none := "version: STSv1\nmode: none\nmax_age: 86400\n"

	tests := []struct {
		name       string
		lookup     TXTLookup
		policy     string
		mx         []string
		sessions   []PresentedChain
		wantReason probes.Reason
		wantCerts  []probes.Reason
	}{
		{"no record", txt("v=spf1 -all"), goodPolicy, []string{"mx1.example.com"}, nil, probes.ReasonOK, nil},
		{"NXDOMAIN", txt(), goodPolicy, nil, nil, probes.ReasonOK, nil},
		{"enforce, all good", txt(record), goodPolicy, []string{"mx1.example.com", "MX2.backup.example.com."},
			[]PresentedChain{mx1, mx2}, probes.ReasonOK, []probes.Reason{probes.ReasonOK, probes.ReasonOK}},
		{"MX not covered", txt(record), goodPolicy, []string{"mx1.example.com", "mx3.example.com"},
			[]PresentedChain{mx1}, ReasonMTASTSMXMismatch, []probes.Reason{probes.ReasonOK}},
		{"wildcard is one label", txt(record), goodPolicy, []string{"a.mx.backup.example.com"}, nil, ReasonMTASTSMXMismatch, nil},
		{"cert for another name", txt(record), goodPolicy, []string{"mx1.example.com"},
			[]PresentedChain{mx1, wrongName}, ReasonMTASTSCert, []probes.Reason{probes.ReasonOK, probes.ReasonCertHostname}},
		{"expired cert", txt(record), goodPolicy, []string{"mx1.example.com"},
			[]PresentedChain{expired}, ReasonMTASTSCert, []probes.Reason{probes.ReasonCertExpired}},
		{"untrusted cert", txt(record), goodPolicy, []string{"mx1.example.com"},
			[]PresentedChain{selfSigned}, ReasonMTASTSCert, []probes.Reason{probes.ReasonCertUntrusted}},
		{"no STARTTLS", txt(record), goodPolicy, []string{"mx1.example.com"},
			[]PresentedChain{noTLS}, ReasonMTASTSCert, []probes.Reason{probes.ReasonSTARTTLSUnavailable}},
		{"mismatch wins over cert", txt(record), goodPolicy, []string{"mx3.example.com"},
			[]PresentedChain{wrongName}, ReasonMTASTSMXMismatch, []probes.Reason{probes.ReasonCertHostname}},
		{"testing: coverage checked", txt(record), testingPolicy, []string{"mx3.example.com"}, nil, ReasonMTASTSMXMismatch, nil},
		{"testing: certs not checked", txt(record), testingPolicy, []string{"mx1.example.com"},
			[]PresentedChain{wrongName}, probes.ReasonOK, nil},
		{"mode none", txt(record), none, []string{"mx3.example.com"}, []PresentedChain{wrongName}, probes.ReasonOK, nil},
		{"two records", txt(record, "v=STSv1; id=other"), goodPolicy, nil, nil, ReasonMTASTSInvalid, nil},
		{"bad record", txt("v=STSv1; id=not valid"), goodPolicy, nil, nil, ReasonMTASTSInvalid, nil},
		{"bad policy", txt(record), "version: STSv1\nmode: enforce\nmx: mail.*.example.com\nmax_age: 1\n", nil, nil, ReasonMTASTSInvalid, nil},
		{"SERVFAIL", func(context.Context, string) ([]string, error) { return nil, reasonErr{probes.ReasonDNS} }, goodPolicy, nil, nil, probes.ReasonDNS, nil},
		{"resolver reason kept", func(context.Context, string) ([]string, error) { return nil, reasonErr{"dnssec_bogus"} }, goodPolicy, nil, nil, "dnssec_bogus", nil},
		{"DNS timeout", func(context.Context, string) ([]string, error) {
			return nil, &net.DNSError{Err: "i/o timeout", IsTimeout: true}
		}, goodPolicy, nil, nil, probes.ReasonTimeout, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := policyServer(t, servePolicy(tt.policy, nil))
			f := CheckMTASTS(context.Background(), MTASTSCheck{
				Domain: "example.com", LookupTXT: tt.lookup, HTTP: opts,
				MX: tt.mx, Sessions: tt.sessions, Roots: ca.Pool(), Now: now,
			})
			if f.Reason != tt.wantReason {
				t.Fatalf("Reason = %q (%s), want %q", f.Reason, f.Error, tt.wantReason)
			}
			if (f.Reason == probes.ReasonOK) != (f.Error == "") {
				t.Errorf("Reason %q with Error %q", f.Reason, f.Error)
			}
			var certs []probes.Reason
			for _, c := range f.Certs {
				certs = append(certs, c.Reason)
			}
			if len(certs) != len(tt.wantCerts) || strings.Join(reasons(certs), ",") != strings.Join(reasons(tt.wantCerts), ",") {
				t.Errorf("cert reasons = %v, want %v", certs, tt.wantCerts)
			}
		})
	}
}

func reasons(rs []probes.Reason) []string {
	var s []string
	for _, r := range rs {
		s = append(s, string(r))
	}
	return s
}

func TestCheckMTASTSFacts(t *testing.T) {
	opts := policyServer(t, servePolicy(goodPolicy, nil))
	f := CheckMTASTS(context.Background(), MTASTSCheck{
		Domain: "example.com", LookupTXT: txt("v=STSv1; id=abc123"), HTTP: opts,
		MX: []string{"mx1.example.com", "mx9.example.com"}, Now: time.Now(),
	})
	if !f.RecordFound || f.ID != "abc123" || f.ContentType != "text/plain" {
		t.Errorf("record facts: %+v", f)
	}
	if f.Policy == nil || f.Policy.Mode != ModeEnforce || f.Policy.MaxAge != 604800 {
		t.Fatalf("policy facts: %+v", f.Policy)
	}
	want := []MTASTSMX{{"mx1.example.com", true}, {"mx9.example.com", false}}
	if len(f.MX) != 2 || f.MX[0] != want[0] || f.MX[1] != want[1] {
		t.Errorf("MX = %+v, want %+v", f.MX, want)
	}
	if !strings.Contains(f.Error, "mx9.example.com") {
		t.Errorf("Error = %q, want the uncovered MX named", f.Error)
	}
}

func TestCheckMTASTSFetchFailure(t *testing.T) {
	opts := policyServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/x", http.StatusFound) })
	f := CheckMTASTS(context.Background(), MTASTSCheck{Domain: "example.com", LookupTXT: txt("v=STSv1; id=1"), HTTP: opts})
	if f.Reason != ReasonMTASTSInvalid || !f.RecordFound || f.Policy != nil {
		t.Errorf("facts = %+v, want mta_sts_invalid with the record found and no policy", f)
	}
}
