package probes

// Reason says why a reply or a probe failed. The values are metric label
// values (ARCHITECTURE.md §5): a fixed set, never free text.
type Reason string

// Reasons, in the order of the taxonomy.
const (
	ReasonOK                  Reason = "ok"
	ReasonDNS                 Reason = "dns"
	ReasonConnect             Reason = "connect"
	ReasonTimeout             Reason = "timeout"
	ReasonConnectionLost      Reason = "connection_lost"
	ReasonProtocol            Reason = "protocol"
	ReasonSTARTTLSUnavailable Reason = "starttls_unavailable"
	ReasonTLSHandshake        Reason = "tls_handshake"
	ReasonCertExpired         Reason = "cert_expired"
	ReasonCertUntrusted       Reason = "cert_untrusted"
	ReasonCertHostname        Reason = "cert_hostname"
	ReasonTLSRequired         Reason = "tls_required"
	ReasonAuthRequired        Reason = "auth_required"
	ReasonAuthFailed          Reason = "auth_failed"
	ReasonServiceUnavailable  Reason = "service_unavailable"
	ReasonThrottled           Reason = "throttled"
	ReasonGreylisted          Reason = "greylisted"
	ReasonMailboxBusy         Reason = "mailbox_busy"
	ReasonLocalError          Reason = "local_error"
	ReasonInsufficientStorage Reason = "insufficient_storage"
	ReasonMailboxUnavailable  Reason = "mailbox_unavailable"
	ReasonMailboxFull         Reason = "mailbox_full"
	ReasonMessageTooLarge     Reason = "message_too_large"
	ReasonRelayDenied         Reason = "relay_denied"
	ReasonSPF                 Reason = "spf"
	ReasonDKIM                Reason = "dkim"
	ReasonDMARC               Reason = "dmarc"
	ReasonReputation          Reason = "reputation"
	ReasonPolicy              Reason = "policy"
	// ReasonUnexpectedReply: the server answered with a code the module did
	// not expect (expect_codes), e.g. 250 where an open-relay check wants 550.
	// It extends the taxonomy of ARCHITECTURE.md §5 for negative tests.
	ReasonUnexpectedReply Reason = "unexpected_reply"
	// ReasonNotDelivered: the delivery prober's message was accepted but
	// not seen in the mailbox within delivery_timeout.
	ReasonNotDelivered Reason = "not_delivered"
	// ReasonSpamFolder: the message landed in a junk folder of a module
	// with require_inbox.
	ReasonSpamFolder Reason = "spam_folder"

	// The domain prober's findings (ARCHITECTURE.md §5). Each names what
	// an operator fixes; a missing record and an unusable one are the
	// same finding where receivers treat them alike (an invalid DMARC or
	// TLS-RPT record is ignored, as if absent).
	ReasonDNSNXDomain       Reason = "dns_nxdomain"
	ReasonDNSServFail       Reason = "dns_servfail"
	ReasonDNSSECBogus       Reason = "dnssec_bogus"
	ReasonNullMX            Reason = "null_mx"
	ReasonMXUnreachable     Reason = "mx_unreachable"
	ReasonPTRMissing        Reason = "ptr_missing"
	ReasonPTRMismatch       Reason = "ptr_mismatch"
	ReasonSPFInvalid        Reason = "spf_invalid"
	ReasonSPFTooManyLookups Reason = "spf_too_many_lookups"
	ReasonDMARCMissing      Reason = "dmarc_missing"
	ReasonDKIMKeyInvalid    Reason = "dkim_key_invalid"
	ReasonMTASTSInvalid     Reason = "mta_sts_invalid"
	ReasonMTASTSMXMismatch  Reason = "mta_sts_mx_mismatch"
	ReasonMTASTSCert        Reason = "mta_sts_cert"
	ReasonTLSRPTMissing     Reason = "tls_rpt_missing"
	ReasonDANEMismatch      Reason = "dane_mismatch"
	ReasonBlocklisted       Reason = "blocklisted"

	ReasonOther Reason = "other"
)

// AllReasons lists every reason, so that consumers can pre-declare series and
// tests can check that label values stay within this set.
var AllReasons = []Reason{
	ReasonOK, ReasonDNS, ReasonConnect, ReasonTimeout, ReasonConnectionLost,
	ReasonProtocol, ReasonSTARTTLSUnavailable, ReasonTLSHandshake,
	ReasonCertExpired, ReasonCertUntrusted, ReasonCertHostname,
	ReasonTLSRequired, ReasonAuthRequired, ReasonAuthFailed,
	ReasonServiceUnavailable, ReasonThrottled, ReasonGreylisted,
	ReasonMailboxBusy, ReasonLocalError, ReasonInsufficientStorage,
	ReasonMailboxUnavailable, ReasonMailboxFull, ReasonMessageTooLarge,
	ReasonRelayDenied, ReasonSPF, ReasonDKIM, ReasonDMARC, ReasonReputation,
	ReasonPolicy, ReasonUnexpectedReply, ReasonNotDelivered, ReasonSpamFolder,
	ReasonDNSNXDomain, ReasonDNSServFail, ReasonDNSSECBogus, ReasonNullMX,
	ReasonMXUnreachable, ReasonPTRMissing, ReasonPTRMismatch,
	ReasonSPFInvalid, ReasonSPFTooManyLookups, ReasonDMARCMissing,
	ReasonDKIMKeyInvalid, ReasonMTASTSInvalid, ReasonMTASTSMXMismatch,
	ReasonMTASTSCert, ReasonTLSRPTMissing, ReasonDANEMismatch,
	ReasonBlocklisted,
	ReasonOther,
}

// transientReasons are failures not tied to a reply code that are worth
// retrying: the network or the server's load, not its configuration.
var transientReasons = map[Reason]bool{
	ReasonDNS: true, ReasonConnect: true, ReasonTimeout: true,
	ReasonConnectionLost: true, ReasonServiceUnavailable: true,
	ReasonThrottled: true, ReasonGreylisted: true, ReasonMailboxBusy: true,
	ReasonLocalError: true, ReasonInsufficientStorage: true,
	ReasonNotDelivered: true, ReasonDNSServFail: true, ReasonMXUnreachable: true,
}

// Temporary reports whether a failure with this reason and no reply code is
// worth retrying. When a reply exists its class decides instead (4xx
// temporary, 5xx permanent); see Reply.Temporary.
func (r Reason) Temporary() bool { return transientReasons[r] }
