// Package domain is the domain posture prober (issue 10): for a target that
// is a mail domain rather than a host, it checks what senders look up about
// the domain against what its MX servers actually present in the same SMTP
// session. It imports no Prometheus package; its facts are plain data that
// one domain Result carries (ARCHITECTURE.md §3).
//
// What it checks, and where:
//
//   - resolver.go: the DNS resolver (miekg/dns), the system's or the
//     module's dns_server, telling NXDOMAIN, SERVFAIL, timeouts and DNSSEC
//     bogus answers apart, and reporting whether an answer was
//     DNSSEC-validated (the AD bit); MX (null MX, RFC 7505) and addresses.
//   - ptr.go: PTR and forward-confirmed reverse DNS of each MX address.
//   - spf.go: SPF (RFC 7208), dmarc.go: DMARC (RFC 7489), dkim.go: the DKIM
//     keys of the configured selectors (RFC 6376), tlsrpt.go: TLS-RPT
//     (RFC 8460), dnsbl.go: DNS blocklists (RFC 5782).
//   - mtasts.go: MTA-STS (RFC 8461). The _mta-sts TXT record (exactly one
//     starting v=STSv1, with an id of 1 to 32 letters and digits); the
//     policy fetched from https://mta-sts.<domain>/.well-known/mta-sts.txt
//     with a verified certificate, no redirect followed, at most 64 KiB,
//     media type text/plain when given; the policy's version, mode, max_age
//     (at most 31557600 s) and mx patterns ("*." standing for one label);
//     every MX covered by a pattern (enforce and testing modes); and in
//     enforce mode every MX certificate from the SMTP session valid for its
//     MX name under the module's roots (RFC 8461 §4.2).
//   - dane.go: DANE for SMTP (RFC 7672, RFC 6698). TLSA records at
//     _25._tcp.<mx>, trusted only when the answer was DNSSEC-validated:
//     unauthenticated records are recorded but are not DANE. The chain the
//     MX presented must match a usable record: DANE-EE(3) against the leaf
//     with no name or expiry check, DANE-TA(2) against a certificate of the
//     chain that the leaf chains to, with the MX name checked; selectors
//     full certificate and SPKI, matching types exact, SHA-256 and SHA-512.
//     PKIX usages 0 and 1 are unusable for SMTP (RFC 7672 §3.1.3), counted
//     as such and never as a mismatch.
//
// Lookups come in as small function types (TXTLookup, TLSALookup) so that
// the checks run against any resolver, and in tests against an in-process
// DNS server or a plain function.
package domain
