package probes

// Phase names a step of the SMTP dialog. The values are metric label values
// (ARCHITECTURE.md §4), so they are a fixed set and never change casually.
type Phase string

// Phases in dialog order.
const (
	PhaseResolve  Phase = "resolve"
	PhaseConnect  Phase = "connect"
	PhaseTLS      Phase = "tls" // implicit TLS handshake (port 465)
	PhaseBanner   Phase = "banner"
	PhaseEHLO     Phase = "ehlo"
	PhaseLHLO     Phase = "lhlo" // LMTP's EHLO
	PhaseSTARTTLS Phase = "starttls"
	PhaseAuth     Phase = "auth"
	PhaseMail     Phase = "mail"
	PhaseRcpt     Phase = "rcpt"
	PhaseData     Phase = "data"
	PhaseQuit     Phase = "quit"

	// The delivery prober's receive leg (ARCHITECTURE.md §4).
	PhaseIMAPConnect Phase = "imap_connect"
	PhaseIMAPAuth    Phase = "imap_auth"
	PhaseWait        Phase = "wait"
	PhaseBounce      Phase = "bounce"

	// The domain prober's checks, one phase each (ARCHITECTURE.md §4).
	PhaseMX     Phase = "mx"
	PhasePTR    Phase = "ptr"
	PhaseSPF    Phase = "spf"
	PhaseDMARC  Phase = "dmarc"
	PhaseDKIM   Phase = "dkim"
	PhaseMTASTS Phase = "mta_sts"
	PhaseTLSRPT Phase = "tls_rpt"
	PhaseDANE   Phase = "dane"
	PhaseDNSBL  Phase = "dnsbl"
)

// AllPhases lists every phase in dialog order, so that consumers can report
// zero for the phases a probe never reached.
var AllPhases = []Phase{
	PhaseResolve, PhaseConnect, PhaseTLS, PhaseBanner, PhaseEHLO, PhaseLHLO,
	PhaseSTARTTLS, PhaseAuth, PhaseMail, PhaseRcpt, PhaseData, PhaseQuit,
	PhaseIMAPConnect, PhaseIMAPAuth, PhaseWait, PhaseBounce,
	PhaseMX, PhasePTR, PhaseSPF, PhaseDMARC, PhaseDKIM, PhaseMTASTS,
	PhaseTLSRPT, PhaseDANE, PhaseDNSBL,
}
