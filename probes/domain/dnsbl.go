package domain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

const (
	// dnsblWorkers bounds the blocklist queries in flight, so that one
	// silent zone does not use up the deadline of the others.
	dnsblWorkers = 4
	// maxDNSBLText bounds the explanation kept from a zone's TXT record.
	maxDNSBLText = 512
)

var (
	// listedNet holds the answers that mean "listed" (RFC 5782 §2.1).
	listedNet = netip.MustParsePrefix("127.0.0.0/8")
	// refusedNet holds the answers by which Spamhaus (and lists copying
	// it) refuse a query instead of answering it: 127.255.255.252 a
	// typing error in the zone name, .254 a query through a public or
	// open resolver, .255 too many queries.
	refusedNet = netip.MustParsePrefix("127.255.255.0/24")
	// errDNSBLRefused: the list refused to answer (refusedNet).
	errDNSBLRefused = errors.New("the list refused the query")
	// errDNSBLBogusAnswer: an answer outside 127.0.0.0/8, which no list
	// uses for a listing; a zone that answers for every name (an expired
	// list's domain parked with a wildcard) would otherwise list the
	// whole Internet.
	errDNSBLBogusAnswer = errors.New("answer outside 127.0.0.0/8")
)

// DNSBLFacts is what the blocklist check learned.
type DNSBLFacts struct {
	Check Check `json:"check"`
	// Answers, one per address and zone, in the order asked (addresses
	// outer).
	Answers []DNSBLAnswer `json:"answers"`
}

// DNSBLAnswer is one zone's answer about one address.
type DNSBLAnswer struct {
	Address netip.Addr `json:"address"`
	Zone    string     `json:"zone"`
	Listed  bool       `json:"listed"`
	// Codes are the 127.0.0.x answers (a list's return codes say why).
	Codes []netip.Addr `json:"codes,omitempty"`
	// Text is the zone's TXT explanation of a listing, when it has one.
	Text string `json:"text,omitempty"`
	// Error says why the zone could not tell; the address is then not
	// taken as listed.
	Error string `json:"error,omitempty"`
	err   error
}

// CheckDNSBL looks each address up in each blocklist zone (RFC 5782):
// listed when the zone answers 127.0.0.0/8 addresses, not listed on
// NXDOMAIN or an empty answer, and an error, never a listing, when the
// zone refuses (127.255.255.0/24) or answers outside 127.0.0.0/8.
func CheckDNSBL(ctx context.Context, r *Resolver, addrs []netip.Addr, zones []string) *DNSBLFacts {
	facts := &DNSBLFacts{}
	for _, a := range addrs {
		for _, z := range zones {
			facts.Answers = append(facts.Answers, DNSBLAnswer{Address: a.Unmap(), Zone: strings.TrimSuffix(z, ".")})
		}
	}
	jobs := make(chan *DNSBLAnswer)
	var wg sync.WaitGroup
	for range min(dnsblWorkers, len(facts.Answers)) {
		wg.Go(func() {
			for ans := range jobs {
				lookupDNSBL(ctx, r, ans)
			}
		})
	}
	for i := range facts.Answers {
		jobs <- &facts.Answers[i]
	}
	close(jobs)
	wg.Wait()
	facts.Check = dnsblVerdict(facts.Answers)
	return facts
}

func dnsblVerdict(answers []DNSBLAnswer) Check {
	var listed, failed []string
	var firstErr error
	for _, a := range answers {
		switch {
		case a.Listed:
			l := fmt.Sprintf("%s on %s", a.Address, a.Zone)
			if a.Text != "" {
				l += " (" + a.Text + ")"
			}
			listed = append(listed, l)
		case a.err != nil:
			failed = append(failed, a.Error)
			if firstErr == nil {
				firstErr = a.err
			}
		}
	}
	switch {
	case len(listed) > 0:
		return fail(NameDNSBL, ReasonBlocklisted, "listed: "+strings.Join(listed, "; "))
	case firstErr != nil:
		// A refusing or wildcarding zone is a DNS failure too: dns.
		c := dnsError(NameDNSBL, firstErr)
		c.Detail = strings.Join(failed, "; ")
		return c
	}
	return pass(NameDNSBL)
}

// lookupDNSBL asks ans.Zone about ans.Address and fills in the answer.
func lookupDNSBL(ctx context.Context, r *Resolver, ans *DNSBLAnswer) {
	name, err := dnsblName(ans.Address, ans.Zone)
	if err == nil {
		var codes []netip.Addr
		codes, _, err = r.A(ctx, name)
		ans.Codes = codes
		if err == nil {
			err = judgeDNSBLCodes(codes)
		}
	}
	switch {
	case IsNotFound(err):
		ans.Codes = nil
		return
	case err != nil:
		ans.err = err
		ans.Error = fmt.Sprintf("%s on %s: %v", ans.Address, ans.Zone, err)
		return
	}
	ans.Listed = len(ans.Codes) > 0
	if !ans.Listed {
		return
	}
	// The explanation is a courtesy of the list; failing to get it
	// changes nothing.
	if txt, _, err := r.TXT(ctx, name); err == nil {
		text := strings.Join(txt, "; ")
		if len(text) > maxDNSBLText {
			text = text[:maxDNSBLText]
		}
		ans.Text = strings.ToValidUTF8(text, "?")
	}
}

// judgeDNSBLCodes refuses answers that are not listings.
func judgeDNSBLCodes(codes []netip.Addr) error {
	for _, c := range codes {
		switch {
		case refusedNet.Contains(c):
			return fmt.Errorf("%w (%s: e.g. Spamhaus refusing a public resolver)", errDNSBLRefused, c)
		case !listedNet.Contains(c):
			return fmt.Errorf("%w (%s)", errDNSBLBogusAnswer, c)
		}
	}
	return nil
}

// dnsblName is the name that holds addr's listing in zone: the IPv4
// octets or IPv6 nibbles in reverse order, then the zone (RFC 5782 §2.1,
// §2.4).
func dnsblName(addr netip.Addr, zone string) (string, error) {
	rev, err := dns.ReverseAddr(addr.Unmap().String())
	if err != nil {
		return "", err
	}
	rev = strings.TrimSuffix(strings.TrimSuffix(rev, "in-addr.arpa."), "ip6.arpa.")
	return rev + dns.Fqdn(zone), nil
}
