package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// probeCommand runs one probe from the command line: the quickest way to
// see what a server answers and why a probe fails.
type probeCommand struct {
	name   string
	target *string
	module *string
	output *string

	// Quick settings: applied over the module (or the defaults when no
	// module is named) only when given.
	tls, ehlo, mailFrom, caFile, serverName, prober *string
	rcptTo                                          *[]string
	send, insecure                                  *bool
	timeout                                         *time.Duration
	set                                             map[string]*bool
}

func newProbeCommand(app *kingpin.Application) *probeCommand {
	c := &probeCommand{name: "probe", set: map[string]*bool{}}
	cmd := app.Command(c.name, "Run one probe against host:port, print the transcript and the verdict; exit 0 on success, 1 on failure.")
	c.target = cmd.Arg("target", "host:port to probe (port defaults to 25, 465 with --tls=implicit, 24 for LMTP).").Required().String()
	c.module = cmd.Flag("module", "Module from --config.file to use. Without it the defaults and the flags below make the module.").String()
	c.output = cmd.Flag("output", "Output format.").Default("text").Enum("text", "json")
	flag := func(name, help string) *kingpin.FlagClause {
		b := new(bool)
		c.set[name] = b
		return cmd.Flag(name, help).IsSetByUser(b)
	}
	c.tls = flag("tls", "TLS mode: none, starttls or implicit.").Enum(probes.TLSNone, probes.TLSStartTLS, probes.TLSImplicit)
	c.ehlo = flag("ehlo", "Name to send in EHLO.").String()
	c.mailFrom = flag("mail-from", "Envelope sender.").String()
	c.rcptTo = flag("rcpt-to", "Envelope recipient (repeatable).").Strings()
	c.send = flag("send", "Send a test message after RCPT (otherwise RSET).").Bool()
	c.insecure = flag("insecure-skip-verify", "Do not fail on an unverified certificate (its facts are still shown).").Bool()
	c.caFile = flag("ca-file", "CA certificate file to verify the server against.").String()
	c.serverName = flag("server-name", "Name to verify the server certificate against.").String()
	c.timeout = flag("timeout", "Timeout of the whole probe.").Duration()
	c.prober = flag("prober", "Protocol: smtp or lmtp.").Enum(probes.ProberSMTP, probes.ProberLMTP)
	return c
}

func (c *probeCommand) run(configFile string, logger log.Logger, stdout, stderr io.Writer) int {
	m, name, err := c.buildModule(configFile, logger)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", appName, err)
		return 2
	}
	if err := m.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: invalid module: %v\n", appName, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res := probers.Probe(ctx, *c.target, *m, log.With(logger, "target", *c.target, "module", name))
	res.Module = name
	if *c.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", appName, err)
			return 2
		}
	} else {
		writeText(stdout, res)
	}
	if !res.Success {
		return 1
	}
	return 0
}

// buildModule takes the named module from the config file, or a default
// module when none is named, and lays the flags given over it.
// Other modules' missing files are logged, not refused: the probe does not
// read them, and the file may be a copy from a host that has them.
func (c *probeCommand) buildModule(configFile string, logger log.Logger) (*probes.Module, string, error) {
	m := &probes.Module{}
	name := "cli"
	if *c.module != "" {
		cfg, warnings, err := config.LoadFileForModule(configFile, *c.module)
		if err != nil {
			return nil, "", err
		}
		for _, w := range warnings {
			level.Warn(logger).Log("msg", "Another module's file is missing or unreadable; this probe does not need it, but --config.check and serve refuse the configuration", "err", w)
		}
		mod, ok := cfg.Modules[*c.module]
		if !ok {
			return nil, "", fmt.Errorf("module %q not found in %s (have: %s)", *c.module, configFile, strings.Join(slices.Sorted(maps.Keys(cfg.Modules)), ", "))
		}
		m, name = mod, *c.module
	}
	s := &m.SMTP
	if *c.set["tls"] {
		s.TLS = *c.tls
	}
	if *c.set["ehlo"] {
		s.EHLO = *c.ehlo
	}
	if *c.set["mail-from"] {
		s.MailFrom = *c.mailFrom
	}
	if *c.set["rcpt-to"] {
		s.RcptTo = *c.rcptTo
	}
	if *c.set["send"] {
		s.Send = *c.send
	}
	if *c.set["insecure-skip-verify"] {
		s.TLSConfig.InsecureSkipVerify = *c.insecure
	}
	if *c.set["ca-file"] {
		s.TLSConfig.CAFile = *c.caFile
	}
	if *c.set["server-name"] {
		s.TLSConfig.ServerName = *c.serverName
	}
	if *c.set["timeout"] {
		m.Timeout = *c.timeout
	}
	if *c.set["prober"] {
		m.Prober = *c.prober
	}
	m.SetDefaults()
	return m, name, nil
}

// writeText prints the transcript, the phases, the TLS facts and the
// verdict, in the order one reads them when debugging.
func writeText(w io.Writer, r *probes.Result) {
	fmt.Fprintf(w, "Transcript of %s (module %s):\n", r.Target, r.Module)
	probes.WriteTranscript(w, "  ", r.Transcript)
	fmt.Fprintf(w, "\nPhases:\n")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "  %-9s %9.1fms", p.Phase, p.Duration.Seconds()*1000)
		switch rep := p.DecidingReply(); {
		case rep == nil:
		case p.Phase == r.FailedPhase && r.Code != 0:
			// The verdict below quotes this reply; here only its codes.
			fmt.Fprintf(w, "  %d", rep.Code)
			if rep.EnhancedCode != "" {
				fmt.Fprintf(w, " %s", rep.EnhancedCode)
			}
		default:
			// The text starts with the enhanced code as the server sent it.
			fmt.Fprintf(w, "  %d %s", rep.Code, probes.Truncate(rep.Text(), 80))
		}
		if p.Reason != probes.ReasonOK {
			fmt.Fprintf(w, "  [%s]", p.Reason)
		}
		fmt.Fprintln(w)
	}
	if t := r.TLS; t != nil {
		writeTLS(w, "TLS", t)
	}
	// A result of another prober, or of none, has no SMTP facts.
	smtpFacts := r.SMTP
	if smtpFacts == nil {
		smtpFacts = &probes.SMTPFacts{}
	}
	if smtpFacts.MessageID != "" {
		fmt.Fprintf(w, "\nMessage %s", smtpFacts.MessageID)
		// Not every server names the queue its message went into.
		if smtpFacts.QueueID != "" {
			fmt.Fprintf(w, " queued as %s", smtpFacts.QueueID)
		}
		fmt.Fprintln(w)
	}
	if d := r.Delivery; d != nil {
		writeDelivery(w, d)
	}
	if d := r.Domain; d != nil {
		writeDomain(w, r.Target, d)
	}
	fmt.Fprintln(w)
	probes.WriteVerdict(w, r)
}

// orUnknown shows a verdict the module did not ask for (no trusted
// Authentication-Results) as unknown.
func orUnknown(result string) string {
	if result == "" {
		return "unknown"
	}
	return result
}

// writeTLS prints one connection's TLS facts under title.
func writeTLS(w io.Writer, title string, t *probes.TLSInfo) {
	fmt.Fprintf(w, "\n%s: %s, %s, server name %q, verified: %t", title, t.Version, t.Cipher, t.ServerName, t.Verified)
	if t.VerifyError != nil {
		fmt.Fprintf(w, " (%v)", t.VerifyError)
	}
	fmt.Fprintln(w)
	for i, c := range t.Certificates {
		days := time.Until(c.NotAfter).Hours() / 24
		fmt.Fprintf(w, "  [%d] %s\n      issuer %s\n      valid %s to %s (%.0f days left), SANs %s\n      sha256 %s\n",
			i, c.Subject, c.Issuer, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), days,
			strings.Join(append(append([]string{}, c.DNSNames...), c.IPAddresses...), ","), c.SHA256)
	}
}

// writeDelivery prints what the delivery prober's receive leg found.
func writeDelivery(w io.Writer, d *probes.DeliveryFacts) {
	if !d.Found {
		fmt.Fprintf(w, "\nDelivery: not seen in the mailbox\n")
	} else {
		fmt.Fprintf(w, "\nDelivery: in %s after %.3fs; spf=%s dkim=%s dmarc=%s", d.Folder, d.TimeToInbox.Seconds(), orUnknown(d.SPF), orUnknown(d.DKIM), orUnknown(d.DMARC))
		if d.SPF == "" {
			fmt.Fprintf(w, " (no Authentication-Results trusted: set delivery.authserv_id or delivery.authres_without_id)")
		}
		if d.DKIMDomain != "" {
			fmt.Fprintf(w, " (signed by %s)", d.DKIMDomain)
		}
		fmt.Fprintf(w, "\n  spam flagged: %t", d.SpamFlagged)
		if d.SpamScored {
			fmt.Fprintf(w, " (score %.1f)", d.SpamScore)
		}
		fmt.Fprintf(w, "; %d hops, %.3fs in all, largest %.3fs; deleted: %t\n", d.Hops, d.HopsTotal.Seconds(), d.HopsLargest.Seconds(), d.Deleted)
		flags := "(none)"
		if len(d.Flags) > 0 {
			flags = strings.Join(d.Flags, " ")
		}
		fmt.Fprintf(w, "  flags: %s\n", flags)
	}
	if b := d.Bounce; b != nil {
		fmt.Fprintf(w, "  bounced (%s): %d %s %s\n", b.Action, b.Code, b.EnhancedCode, b.Text)
	}
	fmt.Fprintf(w, "  cleaned up: %d probe messages of earlier runs (%d late), %d old bounces\n", d.Cleaned, d.Late, d.CleanedBounces)
	if d.BounceMailbox != "" {
		status := d.BounceMailbox
		if d.BounceMailboxError != "" {
			status += ": " + d.BounceMailboxError
		}
		fmt.Fprintf(w, "  bounce mailbox: %s\n", status)
	}
	if t := d.IMAPTLS; t != nil {
		writeTLS(w, "IMAP TLS", t)
	}
}

// writeDomain prints a domain's posture: each MX host by preference with
// each address's session, each check's verdict, and the MTA-STS policy.
func writeDomain(w io.Writer, domain string, d *probes.DomainFacts) {
	if d.NullMX {
		fmt.Fprintf(w, "\nDomain %s: null MX (RFC 7505): accepts no mail\n", domain)
	} else {
		accepting := 0
		for _, h := range d.MX {
			if slices.ContainsFunc(h.Addresses, func(a probes.MXAddressFacts) bool { return a.Accepts }) {
				accepting++
			}
		}
		fmt.Fprintf(w, "\nDomain %s: %d MX hosts, %d accepting mail\n", domain, len(d.MX), accepting)
	}
	for _, h := range d.MX {
		fmt.Fprintf(w, "  MX %d %s", h.Preference, h.Host)
		if len(h.Addresses) == 0 {
			fmt.Fprintf(w, ": no address")
			if h.Error != "" {
				fmt.Fprintf(w, " (%s)", h.Error)
			}
		}
		fmt.Fprintln(w)
		for _, a := range h.Addresses {
			writeMXSession(w, &a)
		}
	}
	if len(d.Checks) > 0 {
		fmt.Fprintf(w, "\nChecks:\n")
		for _, c := range d.Checks {
			line := fmt.Sprintf("  %-8s %-6s %-21s %s", c.Name, c.Result, c.Reason, c.Detail)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	if d.MTASTSMode != "" || d.MTASTSPolicyID != "" {
		fmt.Fprintf(w, "\nMTA-STS policy: mode %s, id %s, max_age %.0fs (%.1f days)\n",
			d.MTASTSMode, d.MTASTSPolicyID, d.MTASTSMaxAge.Seconds(), d.MTASTSMaxAge.Hours()/24)
	}
}

// writeMXSession prints one MX address's session: whether it would take
// mail, or where and why not, and its TLS.
func writeMXSession(w io.Writer, a *probes.MXAddressFacts) {
	ms := a.Duration.Milliseconds()
	if !a.Accepts {
		fmt.Fprintf(w, "    %s (%s): no session: %s", a.Address, a.Family, a.Reason)
		if a.Phase != "" {
			fmt.Fprintf(w, " in phase %s", a.Phase)
		}
		fmt.Fprintf(w, ", %dms", ms)
		if a.Error != "" {
			fmt.Fprintf(w, " (%s)", a.Error)
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "    %s (%s): accepts mail, %dms; ", a.Address, a.Family, ms)
	if a.STARTTLSOffered {
		fmt.Fprintf(w, "STARTTLS")
	} else {
		fmt.Fprintf(w, "no STARTTLS offered")
	}
	if t := a.TLS; t != nil {
		fmt.Fprintf(w, ", %s, certificate ", t.Version)
		if t.Verified {
			fmt.Fprintf(w, "verified")
		} else {
			fmt.Fprintf(w, "not verified")
			if t.VerifyError != nil {
				fmt.Fprintf(w, " (%v)", t.VerifyError)
			}
		}
		if !t.EarliestExpiry.IsZero() {
			fmt.Fprintf(w, ", expires %s (%.0f days)", t.EarliestExpiry.UTC().Format("2006-01-02"), time.Until(t.EarliestExpiry).Hours()/24)
		}
	}
	if a.Greeting != "" {
		fmt.Fprintf(w, "; greets as %s", a.Greeting)
	}
	fmt.Fprintln(w)
}
