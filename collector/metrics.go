package collector

import (
	"cmp"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
	// fams are the gauges' families, for the kept exposition (cache.go).
	fams *familySet
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
	fams := newFamilySet()
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return fams.add(name, help, dto.MetricType_GAUGE, append(append([]string{}, labels...), extra...))
	}
	r := &resultDescs{
		fams:            fams,
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
	return r
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

// collect sends one result's per-run gauges (metrics).
func (d *resultDescs) collect(ch chan<- prometheus.Metric, r *probes.Result, labelValues ...string) {
	for _, m := range d.metrics(r, labelValues...) {
		ch <- m
	}
}

// metrics returns one result's per-run gauges (samples) as metrics.
func (d *resultDescs) metrics(r *probes.Result, labelValues ...string) []prometheus.Metric {
	return d.fams.constMetrics(nil, d.samples(r, labelValues...))
}

// samples maps one result onto the per-run gauges; labelValues fills the
// descs' leading labels (target, module on /metrics; none on /probe). It is
// the one Result→gauges mapping both endpoints use: /probe and registries
// get them as metrics, MetricsHandler encodes them (familySet.encode).
func (d *resultDescs) samples(r *probes.Result, labelValues ...string) []sample {
	var out []sample
	g := func(desc *prometheus.Desc, v float64, extra ...string) {
		out = append(out, sample{desc: desc, value: v, labels: append(labelValues[:len(labelValues):len(labelValues)], extra...)})
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
	return out
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

// replyExpiry is how long a target keeps a reply label set it no longer
// produces: a combination of phase, code and enhanced code not seen for a
// day is dropped at the target's next run, and frees its place under
// maxReplyLabelSets. A day covers the cycles that matter to an alert
// (a nightly greylisting, a throttle at the daily peak) while a server
// that rotates its enhanced codes keeps only the last day's sets. A set
// that comes back starts a new counter, which rate() and increase() take
// as such.
const replyExpiry = 24 * time.Hour

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

// newPhaseLatency returns the phase latency histogram: by module and
// phase, or with perTarget by target too. Per target it is 19 classic
// series per phase a target runs (six for a STARTTLS check: 114 series,
// four times the budget of ARCHITECTURE.md §6), so it is opt-in
// (--metrics.phase-histograms=target); by module its series are bounded
// by the configuration's modules, not its targets. A target's own p95
// comes from its per-run gauge, probe_smtp_phase_duration_seconds, with
// quantile_over_time, as the example alert SMTPPhaseSlow does.
func newPhaseLatency(perTarget bool) *prometheus.HistogramVec {
	labels := []string{"module", "phase"}
	help := "Duration of each dialog phase across the scheduled runs of a module's targets."
	if perTarget {
		labels = []string{"target", "module", "phase"}
		help = "Duration of each dialog phase across scheduled runs."
	}
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            "probe_smtp_phase_latency_seconds",
		Help:                            help,
		Buckets:                         phaseLatencyBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: 0,
	}, labels)
}

// SetPhaseHistograms chooses the labels of probe_smtp_phase_latency_seconds:
// per target with perTarget, else per module. Call it before Apply and
// before registering Collectors: the histogram it replaces is dropped.
func (s *Scheduler) SetPhaseHistograms(perTarget bool) {
	s.metrics.phaseByTarget = perTarget
	s.metrics.phaseLatency = newPhaseLatency(perTarget)
}

// runMetrics are the across-runs series of the scheduled path and the
// exporter's own series. The per-target ones (targetState) are kept by
// runMetrics itself rather than in client_golang vectors, so that
// MetricsHandler can keep each target's encoding until the target's next
// change, and a vector's partial-match deletion (a scan of every series)
// does not run per removed target.
type runMetrics struct {
	// lag, backoff, pending and sendSkipped are set by the scheduler.
	lag, backoff, pending, sendSkipped targetVec

	phaseLatency *prometheus.HistogramVec
	// phaseByTarget labels phaseLatency with the target (newPhaseLatency).
	phaseByTarget bool
	inboxLatency  *prometheus.HistogramVec
	inFlight      prometheus.Gauge
	targets       prometheus.Gauge

	fams        *familySet
	scalarDescs [numScalars]*prometheus.Desc
	replies     *prometheus.Desc
	failures    *prometheus.Desc
	bounces     *prometheus.Desc

	// now is the clock of reply expiry (replyExpiry); tests set it.
	now func() time.Time

	mu    sync.Mutex
	state map[string][]*targetState // by target name, then module
	// sorted is every state in target name order, nil after a state was
	// made or dropped.
	sorted []*targetState
}

// The per-target series with labels target and module only.
type scalarKind int

const (
	scalarOverflow scalarKind = iota
	scalarRuns
	scalarLastRun
	scalarLag
	scalarBackoff
	scalarSendSkipped
	scalarLate
	scalarPending
	scalarLost
	numScalars
)

// targetState is one target's across-runs series. version counts its
// changes: an encoding made at a version stays right until the next.
type targetState struct {
	name, module string
	version      uint64
	scalars      [numScalars]series
	replies      map[replyLabels]*replySeries
	ownSets      int // reply label sets other than the overflow ones
	// nextExpiry is when a reply set may be due to expire, zero without
	// sets: before it, a run need not look at them.
	nextExpiry time.Time
	failures   map[[2]string]*series
	bounces    map[[2]string]*series
	encoded    [numFastFormats]encodedAt
}

// series is one counter or gauge; a counter keeps when it was made, as a
// client_golang counter does.
type series struct {
	set     bool
	value   float64
	created time.Time
}

// replySeries is a reply counter and when its target last produced it.
type replySeries struct {
	series
	seen time.Time
}

type encodedAt struct {
	version uint64
	enc     encodedTarget
}

// replyLabels are the labels of probe_smtp_replies_total after target and
// module.
type replyLabels struct{ phase, code, enhancedCode, class, reason string }

func newRunMetrics() *runMetrics {
	m := &runMetrics{
		phaseLatency: newPhaseLatency(false),
		// Not probe_delivery_time_to_inbox_seconds: that is the per-run
		// gauge's name. The pair mirrors the phases' gauge
		// (probe_smtp_phase_duration_seconds) and histogram. A delivery
		// target sends real mail, so there are few: it stays per target.
		inboxLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "probe_delivery_inbox_latency_seconds",
			Help:                            "Time to inbox of the delivery runs whose message was seen, across scheduled runs: from the reply that accepted it to the moment the mailbox showed it.",
			Buckets:                         inboxLatencyBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, []string{"target", "module"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_probes_in_flight",
			Help: "Probes running now.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_targets",
			Help: "Targets in the running configuration.",
		}),
		fams:  newFamilySet(),
		now:   time.Now,
		state: map[string][]*targetState{},
	}
	tm := []string{"target", "module"}
	with := func(extra ...string) []string { return append(append([]string{}, tm...), extra...) }
	counter := func(name, help string, labels []string) *prometheus.Desc {
		return m.fams.add(name, help, dto.MetricType_COUNTER, labels)
	}
	gauge := func(name, help string) *prometheus.Desc {
		return m.fams.add(name, help, dto.MetricType_GAUGE, tm)
	}
	m.replies = counter("probe_smtp_replies_total",
		"SMTP replies received, by phase, code, class, enhanced status code and diagnosed reason.",
		with("phase", "code", "enhanced_code", "class", "reason"))
	m.scalarDescs = [numScalars]*prometheus.Desc{
		scalarOverflow: counter("smtp_exporter_reply_labels_overflow_total",
			"Replies counted in probe_smtp_replies_total under phase, code, enhanced_code and reason \"other\" because their target already had "+
				strconv.Itoa(maxReplyLabelSets)+" label sets.", tm),
		scalarRuns:    counter("probe_smtp_runs_total", "Scheduled probe runs completed.", tm),
		scalarLastRun: gauge("probe_smtp_last_run_timestamp_seconds", "Unix time the last scheduled run of a target finished."),
		scalarLag: gauge("smtp_exporter_scheduler_lag_seconds",
			"How late the last run of a target started against its schedule, e.g. waiting for --probe.concurrency."),
		scalarBackoff: gauge("smtp_exporter_scheduler_backoff_factor",
			"Multiple of its interval a target now waits between runs: 1 normally, up to 8 while the server throttles, greylists or is unavailable."),
		scalarSendSkipped: counter("smtp_exporter_sends_skipped_total",
			"Runs that stopped after RCPT instead of sending because the target's min_send_interval had not passed.", tm),
		scalarLate: counter("probe_delivery_late_total",
			"Probe messages of the delivery prober that arrived more than delivery_timeout after they were sent (their run had given up) and a later run cleaned up.", tm),
		scalarPending: gauge("probe_delivery_pending",
			"Probe messages of the delivery prober accepted and still awaited: 1 while a run waits for its message, 0 once it was found, bounced or given up on."),
		scalarLost: counter("probe_delivery_lost_total",
			"Delivery runs whose message was not seen within delivery_timeout (reason not_delivered).", tm),
	}
	m.failures = counter("probe_smtp_failures_total", "Failed probe runs, by the phase and reason of the failure.", with("phase", "reason"))
	m.bounces = counter("probe_delivery_bounces_total",
		"Delivery runs that failed on a bounce, by its diagnosed reason and class (4xx delayed, 5xx failed).", with("reason", "class"))
	m.lag, m.backoff, m.pending, m.sendSkipped = targetVec{m, scalarLag}, targetVec{m, scalarBackoff}, targetVec{m, scalarPending}, targetVec{m, scalarSendSkipped}
	return m
}

// shared are the collectors a registry gathers at every scrape: the
// exporter's own gauges and the histograms, bounded by modules or by the
// few delivery targets (or opted into per target).
func (m *runMetrics) shared() []prometheus.Collector {
	return []prometheus.Collector{m.phaseLatency, m.inboxLatency, m.inFlight, m.targets}
}

// collectors are all of them, m's per-target series included, for a
// registry that serves everything.
func (m *runMetrics) collectors() []prometheus.Collector {
	return append(m.shared(), m)
}

// MetricSources splits the scheduler's series for MetricsHandler: the
// collectors to register with the registry it gathers at every scrape, and
// the per-target series whose encoding it keeps.
func (s *Scheduler) MetricSources() ([]prometheus.Collector, TargetSource) {
	return s.metrics.shared(), s.metrics
}

// Describe implements prometheus.Collector for the per-target series.
func (m *runMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.fams.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector for the per-target series.
func (m *runMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	var samples []sample
	for _, states := range m.state {
		for _, st := range states {
			samples = m.appendSamples(samples, st)
		}
	}
	m.mu.Unlock()
	for _, x := range m.fams.constMetrics(nil, samples) {
		ch <- x
	}
}

// appendSamples appends st's series. m.mu must be held.
func (m *runMetrics) appendSamples(out []sample, st *targetState) []sample {
	add := func(desc *prometheus.Desc, s *series, extra ...string) {
		out = append(out, sample{desc: desc, value: s.value, created: s.created, labels: append([]string{st.name, st.module}, extra...)})
	}
	for k := range st.scalars {
		if s := &st.scalars[k]; s.set {
			add(m.scalarDescs[k], s)
		}
	}
	for l, s := range st.replies {
		add(m.replies, &s.series, l.phase, l.code, l.enhancedCode, l.class, l.reason)
	}
	for l, s := range st.failures {
		add(m.failures, s, l[0], l[1])
	}
	for l, s := range st.bounces {
		add(m.bounces, s, l[0], l[1])
	}
	return out
}

// encodedTargets implements TargetSource: the encoding of each target
// whose series changed since the last scrape in format f is made anew,
// outside the lock, and kept unless the target changed meanwhile.
func (m *runMetrics) encodedTargets(f int) ([][]byte, []encodedTarget) {
	type todo struct {
		st      *targetState
		version uint64
		samples []sample
		at      int
	}
	m.mu.Lock()
	if m.sorted == nil {
		for _, sts := range m.state {
			m.sorted = append(m.sorted, sts...)
		}
		slices.SortFunc(m.sorted, func(a, b *targetState) int {
			return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.module, b.module))
		})
	}
	states := m.sorted
	out := make([]encodedTarget, len(states))
	var dirty []todo
	for i, st := range states {
		if e := st.encoded[f]; e.enc.kept() && e.version == st.version {
			out[i] = e.enc
			continue
		}
		dirty = append(dirty, todo{st, st.version, m.appendSamples(nil, st), i})
	}
	m.mu.Unlock()
	for i := range dirty {
		out[dirty[i].at] = m.fams.encode(dirty[i].samples, f)
	}
	m.mu.Lock()
	for _, d := range dirty {
		if d.st.version == d.version {
			d.st.encoded[f] = encodedAt{d.version, out[d.at]}
		}
	}
	m.mu.Unlock()
	return m.fams.headers(f), out
}

// update runs fn on the state of target and module, made if need be, and
// counts the change. m.mu must not be held.
func (m *runMetrics) update(target, module string, fn func(*targetState)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m.stateOf(target, module))
}

// stateOf returns the state of target and module, made if need be, its
// version already counting the change the caller makes. m.mu must be held.
func (m *runMetrics) stateOf(target, module string) *targetState {
	for _, st := range m.state[target] {
		if st.module == module {
			st.version++
			st.encoded = [numFastFormats]encodedAt{} // stale now: no need to keep it until the next scrape
			return st
		}
	}
	st := &targetState{name: target, module: module, version: 1}
	m.state[target] = append(m.state[target], st)
	m.sorted = nil
	return st
}

// add adds v to s, making it; a counter made now is created now.
func (s *series) add(v float64) {
	if !s.set {
		s.set, s.created = true, time.Now()
	}
	s.value += v
}

func seriesIn[K comparable, V any](mp *map[K]*V, k K) *V {
	if *mp == nil {
		*mp = map[K]*V{}
	}
	s := (*mp)[k]
	if s == nil {
		s = new(V)
		(*mp)[k] = s
	}
	return s
}

// targetVec is a per-target series with labels target and module, with
// the part of a client_golang vector's API the scheduler uses.
type targetVec struct {
	m *runMetrics
	k scalarKind
}

// WithLabelValues returns the series of target and module, made (at 0) if
// need be, as a vector's WithLabelValues does.
func (v targetVec) WithLabelValues(target, module string) targetSeries {
	v.m.update(target, module, func(st *targetState) { st.scalars[v.k].add(0) })
	return targetSeries{v, target, module}
}

// targetSeries is one target's series of a targetVec: a gauge or counter,
// and a collector of its one metric.
type targetSeries struct {
	v              targetVec
	target, module string
}

func (s targetSeries) Set(x float64) {
	s.v.m.update(s.target, s.module, func(st *targetState) { st.scalars[s.v.k].value = x })
}
func (s targetSeries) Add(x float64) {
	s.v.m.update(s.target, s.module, func(st *targetState) { st.scalars[s.v.k].add(x) })
}
func (s targetSeries) Inc() { s.Add(1) }

// Describe and Collect serve the series alone, as a gauge (testutil.ToFloat64).
func (s targetSeries) Describe(ch chan<- *prometheus.Desc) { ch <- s.v.m.scalarDescs[s.v.k] }
func (s targetSeries) Collect(ch chan<- prometheus.Metric) {
	m := s.v.m
	m.mu.Lock()
	var v float64
	for _, st := range m.state[s.target] {
		if st.module == s.module {
			v = st.scalars[s.v.k].value
		}
	}
	m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.scalarDescs[s.v.k], prometheus.GaugeValue, v, s.target, s.module)
}

// observe counts one scheduled run's replies, failure and phase latencies.
func (m *runMetrics) observe(t *config.Target, r *probes.Result) {
	for _, pr := range r.Phases {
		m.phaseHistogram(t, pr.Phase).Observe(pr.Duration.Seconds())
	}
	if f := r.Delivery; f != nil && f.Found {
		m.inboxLatency.WithLabelValues(t.Name, t.Module).Observe(f.TimeToInbox.Seconds())
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	// stateOf counts the change: an expiry below is re-encoded too.
	st := m.stateOf(t.Name, t.Module)
	for _, pr := range r.Phases {
		for _, rep := range pr.Replies {
			rs := seriesIn(&st.replies, st.admit(replyLabels{string(pr.Phase), codeLabel(rep.Code), enhancedLabel(rep.EnhancedCode), rep.Class(), string(rep.Reason)}, now))
			rs.add(1)
			rs.seen = now
			if st.nextExpiry.IsZero() {
				st.nextExpiry = now.Add(replyExpiry)
			}
		}
	}
	st.expireReplies(now)
	if !r.Success {
		seriesIn(&st.failures, [2]string{string(r.FailedPhase), string(r.Reason)}).add(1)
	}
	if f := r.Delivery; f != nil {
		st.observeDelivery(r, f)
	}
	st.scalars[scalarRuns].add(1)
	st.scalars[scalarLastRun] = series{set: true, value: float64(r.Start.Add(r.Duration).UnixNano()) / 1e9}
}

func (m *runMetrics) phaseHistogram(t *config.Target, p probes.Phase) prometheus.Observer {
	if m.phaseByTarget {
		return m.phaseLatency.WithLabelValues(t.Name, t.Module, string(p))
	}
	return m.phaseLatency.WithLabelValues(t.Module, string(p))
}

// observeDelivery counts a delivery run's late, lost and bounced messages.
func (st *targetState) observeDelivery(r *probes.Result, f *probes.DeliveryFacts) {
	st.scalars[scalarLate].add(float64(f.Late))
	lost := &st.scalars[scalarLost]
	lost.add(0)
	if !r.Success && r.Reason == probes.ReasonNotDelivered {
		lost.add(1)
	}
	if b := f.Bounce; b != nil {
		seriesIn(&st.bounces, [2]string{string(b.Reason), bounceClass(b)}).add(1)
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

// admit returns the labels to count a reply of st under: its own while st
// has a series for them or fewer than maxReplyLabelSets (once the sets
// not seen for replyExpiry are dropped), else its class's overflow series,
// which smtp_exporter_reply_labels_overflow_total counts.
func (st *targetState) admit(l replyLabels, now time.Time) replyLabels {
	if _, ok := st.replies[l]; ok {
		return l
	}
	if st.ownSets >= maxReplyLabelSets {
		st.expireReplies(now)
	}
	if st.ownSets < maxReplyLabelSets {
		st.ownSets++
		return l
	}
	st.scalars[scalarOverflow].add(1)
	return replyLabels{overflowLabel, overflowLabel, overflowLabel, l.class, overflowLabel}
}

// expireReplies drops the reply sets st has not produced for replyExpiry,
// when one may be due.
func (st *targetState) expireReplies(now time.Time) {
	if st.nextExpiry.IsZero() || now.Before(st.nextExpiry) {
		return
	}
	st.nextExpiry = time.Time{}
	for l, s := range st.replies {
		due := s.seen.Add(replyExpiry)
		if !now.Before(due) {
			delete(st.replies, l)
			if l.phase != overflowLabel {
				st.ownSets--
			}
			continue
		}
		if st.nextExpiry.IsZero() || due.Before(st.nextExpiry) {
			st.nextExpiry = due
		}
	}
}

// forget drops every series of a target, so removed targets disappear.
func (m *runMetrics) forget(name string) {
	m.mu.Lock()
	delete(m.state, name)
	m.sorted = nil
	m.mu.Unlock()
	l := prometheus.Labels{"target": name}
	if m.phaseByTarget {
		m.phaseLatency.DeletePartialMatch(l)
	}
	m.inboxLatency.DeletePartialMatch(l)
}
