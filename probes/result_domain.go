package probes

import (
	"encoding/json"
	"time"
)

// Verdicts of a domain check (label values of probe_domain_check_info).
const (
	CheckPass  = "pass"  // sound
	CheckWarn  = "warn"  // works, but an operator should look (SPF +all, a dead secondary MX)
	CheckFail  = "fail"  // missing, invalid, or says something wrong
	CheckError = "error" // undecided: DNS or the network failed
)

// AllCheckResults lists every check verdict.
var AllCheckResults = []string{CheckPass, CheckWarn, CheckFail, CheckError}

// DomainFacts is what the domain prober learned of a mail domain. The
// collector reads the typed fields; Details carries each check's own
// facts for the output (JSON, the probe command) only.
type DomainFacts struct {
	// NullMX: the domain publishes "MX 0 ." (RFC 7505), accepting no mail.
	NullMX bool `json:"null_mx"`
	// ImplicitMX: the domain has no MX records, so its own A/AAAA
	// addresses are its MX (RFC 5321 §5.1); MX holds the domain itself.
	ImplicitMX bool `json:"implicit_mx"`
	// MX are the hosts walked, by preference, capped by domain.max_mx.
	MX []MXHostFacts `json:"mx"`
	// Checks holds one verdict per check that ran, in phase order; the
	// check's name is its phase.
	Checks []DomainCheck `json:"checks"`
	// MTA-STS policy facts, when a policy was fetched.
	MTASTSMode     string        `json:"mta_sts_mode,omitempty"`
	MTASTSPolicyID string        `json:"mta_sts_policy_id,omitempty"`
	MTASTSMaxAge   time.Duration `json:"-"`
	// Details are the checks' typed facts by check name, for people.
	Details map[Phase]any `json:"details,omitempty"`
	// AddressLabels is the module's domain.address_labels, which the
	// prober copies here: the collector never reads a prober's settings
	// (ARCHITECTURE.md §3), and only with it do MX addresses become label
	// values.
	AddressLabels bool `json:"-"`
}

// MXHostFacts is one MX host and the addresses probed.
type MXHostFacts struct {
	Host       string           `json:"host"`
	Preference uint16           `json:"preference"`
	Addresses  []MXAddressFacts `json:"addresses"`
	// Error is why the host's addresses could not be looked up.
	Error string `json:"error,omitempty"`
	// DANE is the host's DANE state (absent, unauthenticated, unusable,
	// not_checked, matched, mismatch), empty when the check did not run.
	DANE string `json:"dane,omitempty"`
}

// MXAddressFacts is one SMTP session to one address of an MX host.
type MXAddressFacts struct {
	Address string `json:"address"`
	Family  string `json:"family"` // ip4 or ip6
	// Accepts: the server greeted with 220 and answered EHLO (and, when
	// offered, STARTTLS): it would take mail.
	Accepts bool   `json:"accepts"`
	Reason  Reason `json:"reason"`
	Error   string `json:"error,omitempty"`
	// Phase is where the session failed, empty when it did not.
	Phase           Phase         `json:"phase,omitempty"`
	Duration        time.Duration `json:"-"`
	STARTTLSOffered bool          `json:"starttls_offered"`
	// Greeting is the host name the banner or EHLO reply gave, for the
	// PTR check.
	Greeting string   `json:"greeting,omitempty"`
	TLS      *TLSInfo `json:"tls,omitempty"`
	// PTR is the verdict of the address's PTR check (pass, warn, fail,
	// error) and PTRReason its reason; empty when the check did not run.
	PTR       string `json:"ptr,omitempty"`
	PTRReason Reason `json:"ptr_reason,omitempty"`
}

// DomainCheck is one check's verdict.
type DomainCheck struct {
	Name   Phase  `json:"name"`
	Result string `json:"result"`
	Reason Reason `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Check is the verdict of the check named, nil when it did not run.
func (d *DomainFacts) Check(name Phase) *DomainCheck {
	for i := range d.Checks {
		if d.Checks[i].Name == name {
			return &d.Checks[i]
		}
	}
	return nil
}

// MarshalJSON writes durations in seconds, as everywhere in the result.
func (d *DomainFacts) MarshalJSON() ([]byte, error) {
	type plain DomainFacts
	return json.Marshal(struct {
		*plain
		MTASTSMaxAge float64 `json:"mta_sts_max_age_seconds,omitempty"`
	}{(*plain)(d), d.MTASTSMaxAge.Seconds()})
}

// MarshalJSON writes the session's duration in seconds.
func (a *MXAddressFacts) MarshalJSON() ([]byte, error) {
	type plain MXAddressFacts
	return json.Marshal(struct {
		*plain
		Duration float64 `json:"duration_seconds"`
	}{(*plain)(a), a.Duration.Seconds()})
}
