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
// probe.go is the prober (Probe) that ties them together, one phase per
// check in the order of Module.Phases (mx, ptr, spf, dmarc, dkim, mta_sts,
// tls_rpt, dane, dnsbl), each recorded with its duration and reason and
// as one DomainCheck verdict (pass, warn, fail, error) with its typed
// facts in DomainFacts.Details:
//
//   - mx: the MX set by preference (at most max_mx hosts), each host's
//     addresses of every family in ip_protocols (at most max_addresses
//     per host and family), one SMTP session per address (greeting, EHLO,
//     STARTTLS when offered, QUIT; at most 4 in flight), pinned to the
//     address and named for the MX host, with the MX module's tls_config
//     but insecure_skip_verify, so that a bad certificate is recorded
//     (TLS.Verified) and judged by MTA-STS and DANE instead of ending the
//     session. An address accepts when the server greeted 220 and
//     answered EHLO, and STARTTLS when it offered it. Every address
//     accepting passes; none fails (mx_unreachable); some is a warn
//     (mx_unreachable) that leaves the run successful, as senders try the
//     other MX (RFC 5321 §5.1). A null MX (RFC 7505) fails with null_mx;
//     no MX records at all take the domain itself as the MX (RFC 5321
//     §5.1, DomainFacts.ImplicitMX). Every address passes probes.CheckDial
//     first (the ad hoc allow-list); a refused one is recorded, not
//     dialled, and an MX set whose every address is refused is an error
//     (reason other).
//   - ptr: every MX address against the name its server greeted with
//     (banner, else EHLO; the MX host's name when neither gave one); the
//     worst verdict (fail, error, warn, pass) over the addresses decides,
//     each address keeping its own (MXAddressFacts.PTR).
//   - mta_sts: the policy host mta-sts.<domain> is resolved through the
//     module's resolver and passes CheckDial too; it and the MX
//     certificates are verified against the system's roots, or the MX
//     module's tls_config ca_file when set. A testing policy that misses
//     an MX is a warn, as senders then still deliver.
//   - dane: TLSA at _25._tcp.<mx>, the name senders ask, whatever port
//     mx_port points the sessions at; records not DNSSEC-validated, or
//     none usable for SMTP, are a warn (senders ignore them).
//   - dnsbl: the MX addresses and the sending IPs.
//
// A fail or error verdict fails the run, the first deciding Reason,
// FailedPhase and Temporary; an error carries the DNS failure's reason
// (timeout, dns_nxdomain, dns_servfail, dnssec_bogus, else dns). A null
// MX skips ptr, mta_sts, tls_rpt and dane (the domain takes no mail; its
// SPF, DMARC and DKIM still guard its name); a failed MX lookup skips
// ptr, mta_sts and dane; NXDOMAIN for the domain skips everything else.
// Skipped checks leave no phase and no verdict.
//
// Lookups come in as small function types (TXTLookup, TLSALookup) so that
// the checks run against any resolver, and in tests against an in-process
// DNS server or a plain function.
package domain
