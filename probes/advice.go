package probes

// reasonAdvice is what to do first about a failure of each reason: one
// line, shown at the end of the probe command's text output and on
// /history, and in the reason's section of examples/RUNBOOK.md, which a
// test keeps equal to this table (go test ./probes -run
// TestAdvice_Runbook -update rewrites that part of the RUNBOOK).
var reasonAdvice = map[Reason]string{
	ReasonOK:                  "nothing, the probe succeeded",
	ReasonDNS:                 "check that the target's name resolves from the exporter's host, with the resolver the exporter uses",
	ReasonConnect:             "check that the server listens on the port and that no firewall between the exporter and the server refuses or drops the connection",
	ReasonTimeout:             "check the server's load and the network path; raise the module's timeout only when the server is slow by design",
	ReasonConnectionLost:      "check the server's log for why it closed the connection: a crash, a per-client connection limit, a firewall resetting it",
	ReasonProtocol:            "read the transcript: the server, or a middlebox rewriting SMTP, answered outside the protocol",
	ReasonSTARTTLSUnavailable: "enable STARTTLS on the server, or set the module's tls to none where the server must not offer it",
	ReasonTLSHandshake:        "check the TLS versions and ciphers the server accepts against the module's tls_config",
	ReasonCertExpired:         "renew the certificate",
	ReasonCertUntrusted:       "serve the full chain from a CA the exporter trusts, or give the module's tls_config a ca_file",
	ReasonCertHostname:        "get a certificate that names the host the probe connects to, or set the module's tls_config server_name",
	ReasonTLSRequired:         "set the module's tls to starttls or implicit: the server refuses this step without TLS",
	ReasonAuthRequired:        "configure the module's auth: the server requires authentication for this step",
	ReasonAuthFailed:          "check the module's username and password or token, and that the account is neither locked nor expired",
	ReasonServiceUnavailable:  "check the server's health and log: it refuses service now (overload, maintenance, shutdown)",
	ReasonThrottled:           "reduce rate and retry with backoff",
	ReasonGreylisted:          "retry later: a greylister accepts the retry after its delay; allow-list the probe's address if it keeps greylisting",
	ReasonMailboxBusy:         "reduce rate and retry with backoff",
	ReasonLocalError:          "check the server's log: processing failed on its side",
	ReasonInsufficientStorage: "free disk or queue space on the server",
	ReasonMailboxUnavailable:  "verify the recipient: the module's rcpt_to must exist and accept mail",
	ReasonMailboxFull:         "empty the probe mailbox, or have a filter delete the probe messages",
	ReasonMessageTooLarge:     "compare the server's size limit with the probe message's size",
	ReasonRelayDenied:         "check that the server accepts mail for the recipient's domain, or authenticate to relay",
	ReasonSPF:                 "check SPF/DKIM/DMARC at the DNS level: the sender domain's SPF record must allow the sending address",
	ReasonDKIM:                "check SPF/DKIM/DMARC at the DNS level: the sender domain's DKIM key must be published and match the signature",
	ReasonDMARC:               "check SPF/DKIM/DMARC at the DNS level: SPF or DKIM must pass and align with the From domain",
	ReasonReputation:          "check blocklists for the sending address and domain, and ask for delisting once the cause is fixed",
	ReasonPolicy:              "read the server's reply: a content or sender policy refused the message; ask its postmaster which",
	ReasonUnexpectedReply:     "compare the server's reply with the module's expect_codes: the server's behaviour changed",
	ReasonNotDelivered:        "look for the probe's Message-ID in the receiving server's queue and log, and for a bounce",
	ReasonSpamFolder:          "read the message's spam verdict headers, and check SPF/DKIM/DMARC at the DNS level",
	ReasonDNSNXDomain:         "check that the domain exists and is delegated: registration and NS records",
	ReasonDNSServFail:         "check that the domain's name servers answer and that its DNSSEC validates",
	ReasonDNSSECBogus:         "fix the DNSSEC chain: the parent's DS must match the zone's keys and the signatures must be current",
	ReasonNullMX:              "publish real MX records if the domain should receive mail: a null MX refuses all of it",
	ReasonMXUnreachable:       "check that the MX hosts are up and reachable on port 25",
	ReasonPTRMissing:          "publish a PTR record for the sending address (ask whoever owns the address block)",
	ReasonPTRMismatch:         "make the PTR name resolve back to the same address (forward-confirmed reverse DNS)",
	ReasonSPFInvalid:          "fix the SPF record: exactly one v=spf1 TXT record, valid syntax",
	ReasonSPFTooManyLookups:   "flatten the SPF record to at most 10 DNS lookups",
	ReasonDMARCMissing:        "publish a DMARC record at _dmarc.DOMAIN",
	ReasonDKIMKeyInvalid:      "publish a valid DKIM key at SELECTOR._domainkey.DOMAIN",
	ReasonMTASTSInvalid:       "fix the MTA-STS policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt and its _mta-sts TXT record",
	ReasonMTASTSMXMismatch:    "list every MX host in the MTA-STS policy's mx lines",
	ReasonMTASTSCert:          "renew or fix the certificate of mta-sts.DOMAIN or of the MX hosts",
	ReasonTLSRPTMissing:       "publish a TLS-RPT record at _smtp._tls.DOMAIN",
	ReasonDANEMismatch:        "make the TLSA records match the MX's certificate; publish the next key's record before rolling it",
	ReasonBlocklisted:         "check blocklists, fix the cause and ask for delisting",
	ReasonOther:               "read the transcript and the error: the exporter could not classify this failure",
}

// Advice is what to do first about a failure with reason r, one line;
// "" for a reason outside AllReasons.
func (r Reason) Advice() string { return reasonAdvice[r] }
