package collector

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// resultDescs describes the per-run gauges of ARCHITECTURE.md §6. The
// scheduled /metrics path labels them with target and module; /probe
// serves one result and leaves those labels off, as blackbox_exporter does.
type resultDescs struct {
	labels                                  []string
	success, duration, phaseDuration        *prometheus.Desc
	replyCode, failureInfo, starttlsOffered *prometheus.Desc
	certExpiry, chainExpiry, tlsVerified    *prometheus.Desc
	tlsVersion, tlsCipher, expectationMet   *prometheus.Desc
	timeToInbox, placement, authResult      *prometheus.Desc
	hops, spamFlagged                       *prometheus.Desc
	// The delivery prober's bounce mailbox and the IMAP leg's TLS.
	bounceMailboxUp *prometheus.Desc
	imapTLS         tlsDescs
	// The domain prober's posture of a mail domain.
	domain domainDescs
}

// domainDescs are the gauges of a domain run (probe_domain_*).
type domainDescs struct {
	check, nullMX, mxCount, mxAccepting, mxUp, mxAddressUp *prometheus.Desc
	mtaSTSMode, mtaSTSPolicyID, mtaSTSMaxAge, mxCertExpiry *prometheus.Desc
}

func (d *domainDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.check, d.nullMX, d.mxCount, d.mxAccepting, d.mxUp, d.mxAddressUp,
		d.mtaSTSMode, d.mtaSTSPolicyID, d.mtaSTSMaxAge, d.mxCertExpiry}
}

// tlsDescs are the gauges of one connection's TLS facts: the SMTP leg's
// (probe_ssl_*, probe_tls_*, probe_smtp_tls_verified) or the delivery
// prober's IMAP leg's, the same under probe_delivery_imap_.
type tlsDescs struct {
	certExpiry, chainExpiry, verified, version, cipher *prometheus.Desc
}

func (t *tlsDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{t.certExpiry, t.chainExpiry, t.verified, t.version, t.cipher}
}

// collect maps one connection's TLS facts.
func (t *tlsDescs) collect(g func(*prometheus.Desc, float64, ...string), info *probes.TLSInfo) {
	if !info.EarliestExpiry.IsZero() {
		g(t.certExpiry, float64(info.EarliestExpiry.Unix()))
	}
	if !info.ChainExpiry.IsZero() {
		g(t.chainExpiry, float64(info.ChainExpiry.Unix()))
	}
	g(t.verified, boolValue(info.Verified))
	g(t.version, 1, info.Version)
	g(t.cipher, 1, info.Cipher)
}

func newResultDescs(labels ...string) *resultDescs {
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(append([]string{}, labels...), extra...), nil)
	}
	return &resultDescs{
		labels:          labels,
		success:         d("probe_success", "Whether the last SMTP probe succeeded (1) or failed (0)."),
		duration:        d("probe_duration_seconds", "How long the last probe took, QUIT included."),
		phaseDuration:   d("probe_smtp_phase_duration_seconds", "Duration of each dialog phase the last probe ran, failed ones included; absent for phases it never reached.", "phase"),
		replyCode:       d("probe_smtp_reply_code", "Code of the reply that decided each phase of the last probe (for starttls, the answer to STARTTLS).", "phase"),
		failureInfo:     d("probe_smtp_failure_info", "Set to 1 with the phase and reason of the last probe's failure; absent on success.", "phase", "reason"),
		starttlsOffered: d("probe_smtp_starttls_offered", "Whether the server offered STARTTLS in its first EHLO (or LHLO) reply; absent when the probe got no such reply."),
		certExpiry:      d("probe_ssl_earliest_cert_expiry", "Earliest NotAfter (Unix time) over the certificates the server presented."),
		chainExpiry:     d("probe_ssl_last_chain_expiry_timestamp_seconds", "Expiry (Unix time) of the verified chain that lasts longest, each chain counted by its earliest NotAfter."),
		tlsVerified:     d("probe_smtp_tls_verified", "Whether the server certificate verified against the module's roots and server name."),
		tlsVersion:      d("probe_tls_version_info", "TLS version of the last probe's connection.", "version"),
		tlsCipher:       d("probe_tls_cipher_info", "TLS cipher suite of the last probe's connection.", "cipher"),
		expectationMet:  d("probe_smtp_expectation_met", "Whether a negative test (expect_codes) received the reply it expects."),
		timeToInbox:     d("probe_delivery_time_to_inbox_seconds", "Time from the reply that accepted the last probe message to the moment the mailbox showed it; absent when it was not seen."),
		placement:       d("probe_delivery_placement_info", "Set to 1 with the class of the folder the last probe message landed in (inbox, junk or other).", "folder"),
		authResult:      d("probe_delivery_auth_result_info", "Set to 1 with the receiver's verdict for each authentication method of the last probe message, from its trusted Authentication-Results.", "method", "result"),
		hops:            d("probe_delivery_hops", "Number of Received: fields of the last probe message."),
		spamFlagged:     d("probe_delivery_spam_flagged", "Whether the receiver's spam filter flagged the last probe message as spam."),
		bounceMailboxUp: d("probe_delivery_bounce_mailbox_up", "Whether the last run could log in to delivery.bounce_imap and search it for bounces; absent without bounce_imap."),
		imapTLS: tlsDescs{
			certExpiry:  d("probe_delivery_imap_ssl_earliest_cert_expiry", "Earliest NotAfter (Unix time) over the certificates the delivery prober's IMAP server (delivery.imap) presented."),
			chainExpiry: d("probe_delivery_imap_ssl_last_chain_expiry_timestamp_seconds", "Expiry (Unix time) of the IMAP server's verified chain that lasts longest, each chain counted by its earliest NotAfter."),
			verified:    d("probe_delivery_imap_tls_verified", "Whether the IMAP server's certificate verified against delivery.imap's roots and server name."),
			version:     d("probe_delivery_imap_tls_version_info", "TLS version of the last probe's IMAP connection.", "version"),
			cipher:      d("probe_delivery_imap_tls_cipher_info", "TLS cipher suite of the last probe's IMAP connection.", "cipher"),
		},
		domain: domainDescs{
			check:          d("probe_domain_check_info", "Set to 1 with the verdict (pass, warn, fail or error) and reason of each check the last domain run ran.", "check", "result", "reason"),
			nullMX:         d("probe_domain_null_mx", "Whether the domain publishes a null MX (RFC 7505): it accepts no mail."),
			mxCount:        d("probe_domain_mx_hosts", "MX hosts of the domain that the last run walked (up to domain.max_mx)."),
			mxAccepting:    d("probe_domain_mx_hosts_accepting", "MX hosts of which at least one address accepted an SMTP session in the last run."),
			mxUp:           d("probe_domain_mx_up", "Whether any probed address of the MX host in the address family accepted an SMTP session (greeting, EHLO and, when offered, STARTTLS).", "mx", "family"),
			mxAddressUp:    d("probe_domain_mx_address_up", "Whether the MX address accepted an SMTP session; only for modules with domain.address_labels.", "mx", "family", "address"),
			mtaSTSMode:     d("probe_domain_mta_sts_mode_info", "Set to 1 with the mode (enforce, testing or none) of the MTA-STS policy fetched; absent without one.", "mode"),
			mtaSTSPolicyID: d("probe_domain_mta_sts_policy_id_info", "Set to 1 with the id of the domain's _mta-sts record, which changes with its policy.", "id"),
			mtaSTSMaxAge:   d("probe_domain_mta_sts_max_age_seconds", "max_age of the MTA-STS policy fetched: how long senders cache it."),
			mxCertExpiry:   d("probe_domain_mx_ssl_earliest_cert_expiry", "Earliest NotAfter (Unix time) over the certificates every MX session of the last run was presented."),
		},
	}
}

func (d *resultDescs) describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{d.success, d.duration, d.phaseDuration, d.replyCode, d.failureInfo,
		d.starttlsOffered, d.certExpiry, d.chainExpiry, d.tlsVerified, d.tlsVersion, d.tlsCipher, d.expectationMet,
		d.timeToInbox, d.placement, d.authResult, d.hops, d.spamFlagged, d.bounceMailboxUp} {
		ch <- desc
	}
	for _, desc := range d.imapTLS.all() {
		ch <- desc
	}
	for _, desc := range d.domain.all() {
		ch <- desc
	}
}

// collect maps one result onto the per-run gauges; labelValues fills the
// descs' leading labels (target, module on /metrics; none on /probe). It is
// the one Result→gauges mapping both endpoints use.
func (d *resultDescs) collect(ch chan<- prometheus.Metric, r *probes.Result, labelValues ...string) {
	g := func(desc *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append(labelValues, extra...)...)
	}
	g(d.success, boolValue(r.Success))
	g(d.duration, r.Duration.Seconds())
	for _, pr := range r.Phases {
		g(d.phaseDuration, pr.Duration.Seconds(), string(pr.Phase))
		if rep := pr.DecidingReply(); rep != nil {
			g(d.replyCode, float64(rep.Code), string(pr.Phase))
		}
	}
	if !r.Success {
		g(d.failureInfo, 1, string(r.FailedPhase), string(r.Reason))
	}
	if t := r.TLS; t != nil {
		smtpTLS := tlsDescs{d.certExpiry, d.chainExpiry, d.tlsVerified, d.tlsVersion, d.tlsCipher}
		smtpTLS.collect(g, t)
	}
	if f := r.SMTP; f != nil {
		d.collectSMTP(g, f)
	}
	if f := r.Delivery; f != nil {
		d.collectDelivery(g, f)
	}
	if f := r.Domain; f != nil {
		d.domain.collect(g, f)
	}
}

// mtaSTSModes and mtaSTSIDRe are what RFC 8461 allows for a policy's mode
// and a record's id; anything else a domain publishes is left out rather
// than minted into a label value.
var (
	mtaSTSModes = []string{"enforce", "testing", "none"}
	mtaSTSIDRe  = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)
)

// collect maps a domain run's facts. Labels stay in fixed sets or in
// sets the module bounds: checks, verdicts and reasons are the probes
// package's; MX hosts are capped by domain.max_mx, families are ip4 and
// ip6, addresses (only with address_labels) are capped by max_addresses.
// Each MX host and family is one series, whatever its DNS repeats.
func (d *domainDescs) collect(g func(*prometheus.Desc, float64, ...string), f *probes.DomainFacts) {
	seenCheck := map[probes.Phase]bool{}
	for _, c := range f.Checks {
		if seenCheck[c.Name] || !slices.Contains(probes.AllPhases, c.Name) ||
			!slices.Contains(probes.AllCheckResults, c.Result) || !slices.Contains(probes.AllReasons, c.Reason) {
			continue
		}
		seenCheck[c.Name] = true
		g(d.check, 1, string(c.Name), c.Result, string(c.Reason))
	}
	g(d.nullMX, boolValue(f.NullMX))

	type hostFamily struct{ host, family string }
	var (
		order     []hostFamily
		up        = map[hostFamily]bool{}
		addrUp    = map[[3]string]bool{}
		addrOrder [][3]string
		hosts     = map[string]bool{} // host → any address accepts
		earliest  time.Time
	)
	for _, h := range f.MX {
		host := strings.TrimSuffix(strings.ToLower(h.Host), ".")
		if _, ok := hosts[host]; !ok {
			hosts[host] = false
		}
		for _, a := range h.Addresses {
			if a.TLS != nil && !a.TLS.EarliestExpiry.IsZero() && (earliest.IsZero() || a.TLS.EarliestExpiry.Before(earliest)) {
				earliest = a.TLS.EarliestExpiry
			}
			if a.Family != "ip4" && a.Family != "ip6" {
				continue
			}
			hf := hostFamily{host, a.Family}
			if _, ok := up[hf]; !ok {
				order = append(order, hf)
			}
			up[hf] = up[hf] || a.Accepts
			hosts[host] = hosts[host] || a.Accepts
			if ip, err := netip.ParseAddr(a.Address); err == nil && f.AddressLabels {
				k := [3]string{host, a.Family, ip.String()}
				if _, ok := addrUp[k]; !ok {
					addrOrder = append(addrOrder, k)
				}
				addrUp[k] = addrUp[k] || a.Accepts
			}
		}
	}
	accepting := 0
	for _, ok := range hosts {
		if ok {
			accepting++
		}
	}
	g(d.mxCount, float64(len(hosts)))
	g(d.mxAccepting, float64(accepting))
	for _, hf := range order {
		g(d.mxUp, boolValue(up[hf]), hf.host, hf.family)
	}
	for _, k := range addrOrder {
		g(d.mxAddressUp, boolValue(addrUp[k]), k[0], k[1], k[2])
	}
	if !earliest.IsZero() {
		g(d.mxCertExpiry, float64(earliest.Unix()))
	}
	if slices.Contains(mtaSTSModes, f.MTASTSMode) {
		g(d.mtaSTSMode, 1, f.MTASTSMode)
	}
	if mtaSTSIDRe.MatchString(f.MTASTSPolicyID) {
		g(d.mtaSTSPolicyID, 1, f.MTASTSPolicyID)
	}
	if f.MTASTSMaxAge > 0 {
		g(d.mtaSTSMaxAge, f.MTASTSMaxAge.Seconds())
	}
}

// collectDelivery maps the facts of the delivery prober's receive leg.
// The bounce mailbox's state is there whether the message was seen or not
// (it matters most when not); the message's facts only when it was: a
// lost one is told by probe_success and the failure's reason.
func (d *resultDescs) collectDelivery(g func(*prometheus.Desc, float64, ...string), f *probes.DeliveryFacts) {
	if f.BounceMailbox != "" {
		g(d.bounceMailboxUp, boolValue(f.BounceMailbox == "ok"))
	}
	if f.IMAPTLS != nil {
		d.imapTLS.collect(g, f.IMAPTLS)
	}
	if !f.Found {
		return
	}
	g(d.timeToInbox, f.TimeToInbox.Seconds())
	g(d.placement, 1, f.Folder)
	// A result is empty when the module trusts no Authentication-Results
	// (neither authserv_id nor authres_without_id): unknown, so absent.
	for _, m := range []struct{ method, result string }{{"spf", f.SPF}, {"dkim", f.DKIM}, {"dmarc", f.DMARC}} {
		if m.result != "" {
			g(d.authResult, 1, m.method, m.result)
		}
	}
	g(d.hops, float64(f.Hops))
	g(d.spamFlagged, boolValue(f.SpamFlagged))
}

// collectSMTP maps the facts of an SMTP or LMTP dialog.
func (d *resultDescs) collectSMTP(g func(*prometheus.Desc, float64, ...string), f *probes.SMTPFacts) {
	if f.HelloAnswered {
		g(d.starttlsOffered, boolValue(f.STARTTLSOffered))
	}
	if f.NegativeTest {
		g(d.expectationMet, boolValue(f.ExpectationMet))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// codeLabel and enhancedLabel keep label values inside fixed sets whatever
// a server sends: the parser already guarantees a [2-5][0-5][0-9] code; an
// enhanced code that is not class 2, 4 or 5, subject 0-7 (RFC 3463's) and a
// detail of one to three digits is dropped rather than minted into a new
// series.
func codeLabel(code int) string { return strconv.Itoa(code) }

func enhancedLabel(enh string) string {
	if !probes.ValidEnhancedCode(enh) {
		return ""
	}
	return enh
}

// maxReplyLabelSets bounds the distinct {phase, code, enhanced_code, class,
// reason} sets of probe_smtp_replies_total per target. A healthy dialog
// uses about ten (one per reply of STARTTLS, AUTH and a send), and a
// failing server adds a few per way it fails (greylisting, throttling,
// refusals at MAIL or RCPT); 50 leaves room for months of real trouble,
// while code and enhanced code alone allow some 400 × 8,000 sets that a
// hostile server could rotate through.
const maxReplyLabelSets = 50

// overflowLabel replaces phase, code, enhanced_code and reason of a reply
// whose label set would pass maxReplyLabelSets. Its class stays, so rates
// of 4xx and 5xx replies still count it, in at most one series per class.
const overflowLabel = "other"

// phaseLatencyBuckets suit SMTP: loopback answers in a millisecond, a
// distant server's TLS handshake or a content-filtered DATA in seconds,
// and a slow greeting (postscreen's pregreet delay) takes up to tens of
// seconds.
var phaseLatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// inboxLatencyBuckets suit mail delivery: a local path takes a second, a
// provider's filters tens of seconds, greylisting or a queue minutes, and
// delivery_timeout can be set up to an hour. 120 s is a bound of its own
// because the SMTPDeliverySlow example alert compares the p95 with it: at a
// bucket bound histogram_quantile is exact, not interpolated.
var inboxLatencyBuckets = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 600, 900, 1800, 3600}

// runMetrics are the across-runs series of the scheduled path and the
// exporter's own series.
type runMetrics struct {
	replies      *prometheus.CounterVec
	overflow     *prometheus.CounterVec
	failures     *prometheus.CounterVec
	runs         *prometheus.CounterVec
	phaseLatency *prometheus.HistogramVec
	inboxLatency *prometheus.HistogramVec
	lastRun      *prometheus.GaugeVec
	lag          *prometheus.GaugeVec
	backoff      *prometheus.GaugeVec
	sendSkipped  *prometheus.CounterVec
	late         *prometheus.CounterVec
	pending      *prometheus.GaugeVec
	lost         *prometheus.CounterVec
	bounces      *prometheus.CounterVec
	inFlight     prometheus.Gauge
	targets      prometheus.Gauge

	// labelSets holds, per target, the reply label sets that have a
	// series of their own, up to maxReplyLabelSets.
	mu        sync.Mutex
	labelSets map[string]map[replyLabels]struct{}
}

// replyLabels are the labels of probe_smtp_replies_total after target and
// module.
type replyLabels struct{ phase, code, enhancedCode, class, reason string }

func newRunMetrics() *runMetrics {
	tm := []string{"target", "module"}
	with := func(extra ...string) []string { return append(append([]string{}, tm...), extra...) }
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	return &runMetrics{
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "probe_smtp_replies_total",
			Help: "SMTP replies received, by phase, code, class, enhanced status code and diagnosed reason.",
		}, with("phase", "code", "enhanced_code", "class", "reason")),
		overflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smtp_exporter_reply_labels_overflow_total",
			Help: "Replies counted in probe_smtp_replies_total under phase, code, enhanced_code and reason \"other\" because their target already had " +
				strconv.Itoa(maxReplyLabelSets) + " label sets.",
		}, tm),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "probe_smtp_failures_total",
			Help: "Failed probe runs, by the phase and reason of the failure.",
		}, with("phase", "reason")),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "probe_smtp_runs_total",
			Help: "Scheduled probe runs completed.",
		}, tm),
		phaseLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "probe_smtp_phase_latency_seconds",
			Help:                            "Duration of each dialog phase across scheduled runs.",
			Buckets:                         phaseLatencyBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, with("phase")),
		// Not probe_delivery_time_to_inbox_seconds: that is the per-run
		// gauge's name. The pair mirrors the phases' gauge
		// (probe_smtp_phase_duration_seconds) and histogram.
		inboxLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "probe_delivery_inbox_latency_seconds",
			Help:                            "Time to inbox of the delivery runs whose message was seen, across scheduled runs: from the reply that accepted it to the moment the mailbox showed it.",
			Buckets:                         inboxLatencyBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, tm),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_smtp_last_run_timestamp_seconds",
			Help: "Unix time the last scheduled run of a target finished.",
		}, tm),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smtp_exporter_scheduler_lag_seconds",
			Help: "How late the last run of a target started against its schedule, e.g. waiting for --probe.concurrency.",
		}, tm),
		backoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smtp_exporter_scheduler_backoff_factor",
			Help: "Multiple of its interval a target now waits between runs: 1 normally, up to 8 while the server throttles, greylists or is unavailable.",
		}, tm),
		sendSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smtp_exporter_sends_skipped_total",
			Help: "Runs that stopped after RCPT instead of sending because the target's min_send_interval had not passed.",
		}, tm),
		late: counter("probe_delivery_late_total",
			"Probe messages of the delivery prober that arrived more than delivery_timeout after they were sent (their run had given up) and a later run cleaned up.", tm),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_delivery_pending",
			Help: "Probe messages of the delivery prober accepted and still awaited: 1 while a run waits for its message, 0 once it was found, bounced or given up on.",
		}, tm),
		lost: counter("probe_delivery_lost_total",
			"Delivery runs whose message was not seen within delivery_timeout (reason not_delivered).", tm),
		bounces: counter("probe_delivery_bounces_total",
			"Delivery runs that failed on a bounce, by its diagnosed reason and class (4xx delayed, 5xx failed).", with("reason", "class")),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_probes_in_flight",
			Help: "Probes running now.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_targets",
			Help: "Targets in the running configuration.",
		}),
		labelSets: map[string]map[replyLabels]struct{}{},
	}
}

func (m *runMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.replies, m.overflow, m.failures, m.runs, m.phaseLatency, m.inboxLatency, m.lastRun, m.lag, m.backoff, m.sendSkipped,
		m.late, m.pending, m.lost, m.bounces, m.inFlight, m.targets}
}

// observe counts one scheduled run's replies, failure and phase latencies.
func (m *runMetrics) observe(t *config.Target, r *probes.Result) {
	for _, pr := range r.Phases {
		m.phaseLatency.WithLabelValues(t.Name, t.Module, string(pr.Phase)).Observe(pr.Duration.Seconds())
		for _, rep := range pr.Replies {
			l := m.admit(t, replyLabels{string(pr.Phase), codeLabel(rep.Code), enhancedLabel(rep.EnhancedCode), rep.Class(), string(rep.Reason)})
			m.replies.WithLabelValues(t.Name, t.Module, l.phase, l.code, l.enhancedCode, l.class, l.reason).Inc()
		}
	}
	if !r.Success {
		m.failures.WithLabelValues(t.Name, t.Module, string(r.FailedPhase), string(r.Reason)).Inc()
	}
	if f := r.Delivery; f != nil {
		m.observeDelivery(t, r, f)
	}
	m.runs.WithLabelValues(t.Name, t.Module).Inc()
	m.lastRun.WithLabelValues(t.Name, t.Module).Set(float64(r.Start.Add(r.Duration).UnixNano()) / 1e9)
}

// observeDelivery counts a delivery run's late, lost and bounced messages
// and the time to inbox of one that was seen.
func (m *runMetrics) observeDelivery(t *config.Target, r *probes.Result, f *probes.DeliveryFacts) {
	if f.Found {
		m.inboxLatency.WithLabelValues(t.Name, t.Module).Observe(f.TimeToInbox.Seconds())
	}
	m.late.WithLabelValues(t.Name, t.Module).Add(float64(f.Late))
	lost := m.lost.WithLabelValues(t.Name, t.Module)
	if !r.Success && r.Reason == probes.ReasonNotDelivered {
		lost.Inc()
	}
	if b := f.Bounce; b != nil {
		m.bounces.WithLabelValues(t.Name, t.Module, string(b.Reason), bounceClass(b)).Inc()
	}
}

// bounceClass is the class of a bounce's code; a DSN without one is
// classed by its Action: delayed is temporary.
func bounceClass(b *probes.BounceFacts) string {
	switch {
	case b.Code >= 400 && b.Code < 500:
		return "4xx"
	case b.Code >= 500 && b.Code < 600:
		return "5xx"
	case b.Temporary:
		return "4xx"
	}
	return "5xx"
}

// admit returns the labels to count a reply of t under: its own while t
// has a series for them or fewer than maxReplyLabelSets, else its class's
// overflow series, which smtp_exporter_reply_labels_overflow_total counts.
func (m *runMetrics) admit(t *config.Target, l replyLabels) replyLabels {
	m.mu.Lock()
	defer m.mu.Unlock()
	sets := m.labelSets[t.Name]
	if sets == nil {
		sets = map[replyLabels]struct{}{}
		m.labelSets[t.Name] = sets
	}
	if _, ok := sets[l]; ok || len(sets) < maxReplyLabelSets {
		sets[l] = struct{}{}
		return l
	}
	m.overflow.WithLabelValues(t.Name, t.Module).Inc()
	return replyLabels{overflowLabel, overflowLabel, overflowLabel, l.class, overflowLabel}
}

// forget drops every series of a target, so removed targets disappear.
func (m *runMetrics) forget(name string) {
	m.mu.Lock()
	delete(m.labelSets, name)
	m.mu.Unlock()
	l := prometheus.Labels{"target": name}
	m.replies.DeletePartialMatch(l)
	m.overflow.DeletePartialMatch(l)
	m.failures.DeletePartialMatch(l)
	m.runs.DeletePartialMatch(l)
	m.phaseLatency.DeletePartialMatch(l)
	m.inboxLatency.DeletePartialMatch(l)
	m.pending.DeletePartialMatch(l)
	m.lastRun.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.backoff.DeletePartialMatch(l)
	m.sendSkipped.DeletePartialMatch(l)
	m.late.DeletePartialMatch(l)
	m.lost.DeletePartialMatch(l)
	m.bounces.DeletePartialMatch(l)
}
