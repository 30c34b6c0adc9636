package domain

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const silentTimeout = 300 * time.Millisecond

// A DNS timeout says which question got no answer from which server, and
// the deadline that applied, not Go's "i/o timeout"; the kind stays
// ErrTimeout and the reason timeout.
func TestResolver_TimeoutSaysWhatWasAwaited(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attempts int
		attempt  time.Duration // the try's timeout
		deadline time.Duration // the context's; 0 for none
		want     string
	}{
		{"one try", 1, silentTimeout, 0, "within 300ms"},
		{"two tries", 2, silentTimeout, 0, "within 600ms (2 tries)"},
		{"the context's deadline", 2, time.Minute, silentTimeout, "within 300ms (2 tries)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := probestest.NewDNSServer(t, resolverZone)
			srv.Behave("", probestest.DNSBehaviour{Silent: true})
			r, err := NewResolver(ResolverConfig{Server: srv.Addr, Attempts: tc.attempts, AttemptTimeout: tc.attempt})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			_, _, err = r.TXT(ctx, "_mta-sts.example.test")
			if !errors.Is(err, ErrTimeout) || ReasonFor(err) != probes.ReasonTimeout {
				t.Fatalf("err = %v, want a timeout", err)
			}
			if got, want := err.Error(), "no DNS answer for _mta-sts.example.test TXT from "+srv.Addr+" "+tc.want; !probestest.SameWait(got, want) {
				t.Errorf("err = %q, want %q", got, want)
			}
		})
	}
}

// A cancelled lookup says what it was waiting for.
func TestResolver_CancelledSaysWhatWasAwaited(t *testing.T) {
	srv := probestest.NewDNSServer(t, resolverZone)
	srv.Behave("", probestest.DNSBehaviour{Silent: true})
	r, err := NewResolver(ResolverConfig{Server: srv.Addr, Attempts: 1, AttemptTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = r.TXT(ctx, "txt.example.test")
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a timeout caused by the cancellation", err)
	}
	if got, want := err.Error(), "probe cancelled: no DNS answer for txt.example.test TXT yet"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

// A server that refuses the query's packets is named as the refuser.
func TestResolver_RefusedSaysBy(t *testing.T) {
	addr := probestest.ClosedAddr(t)
	r, err := NewResolver(ResolverConfig{Server: addr, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.TXT(testContext(t), "example.test")
	if !errors.Is(err, ErrNetwork) {
		t.Fatalf("err = %v, want a network error", err)
	}
	if got, want := err.Error(), "no DNS answer for example.test TXT: connection refused by "+addr; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

const policyURL = "https://mta-sts.example.com/.well-known/mta-sts.txt"

// A policy fetch cut by the deadline names the URL and the deadline; it
// still unwraps to the context's deadline.
func TestFetchPolicy_TimeoutSaysWhatWasAwaited(t *testing.T) {
	release := make(chan struct{})
	// Not ended by the request's context, which can end before the
	// client gives up, and the handler would then answer 200 in time.
	opts := policyServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), silentTimeout)
	defer cancel()
	_, _, err := FetchPolicy(ctx, "example.com", opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if got, want := err.Error(), "MTA-STS policy fetch from "+policyURL+" did not finish within 300ms"; !probestest.SameWait(got, want) {
		t.Errorf("err = %q, want %q", got, want)
	}
}

// A refused policy fetch names who refused it.
func TestFetchPolicy_RefusedSaysBy(t *testing.T) {
	addr := probestest.ClosedAddr(t)
	opts := HTTPOptions{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	_, _, err := FetchPolicy(testContext(t), "example.com", opts)
	if got, want := err.Error(), "MTA-STS policy fetch from "+policyURL+": connection refused by "+addr; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

// The run's verdict says which question got no answer from which server
// and the deadline that applied.
func TestProbe_DNSTimeoutSaysWhatWasAwaited(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("", probestest.DNSBehaviour{Silent: true})
	m := f.module(srv)
	m.Timeout, m.Domain.DNSTimeout = 2*time.Second, silentTimeout
	res := f.probe(context.Background(), m)
	wantFailed(t, res, probes.PhaseMX, probes.ReasonTimeout)
	want := "no DNS answer for good.test MX from " + srv.Addr + " within 600ms (2 tries)"
	if got := res.Err.Error(); !strings.Contains(got, want) || strings.Contains(got, "i/o timeout") {
		t.Errorf("err = %q, want it to say %q", got, want)
	}
}
