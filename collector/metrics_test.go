package collector

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/metrics")

// Fixed instants, so that golden output does not depend on the clock.
var (
	testStart     = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	certNotAfter  = time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC)
	chainNotAfter = time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
)

// perRunMetricNames are the per-run gauges of ARCHITECTURE.md §6; golden
// comparisons name them all, so a series that should be absent is checked
// to be absent.
var perRunMetricNames = []string{
	"probe_success",
	"probe_duration_seconds",
	"probe_smtp_phase_duration_seconds",
	"probe_smtp_reply_code",
	"probe_smtp_failure_info",
	"probe_smtp_starttls_offered",
	"probe_ssl_earliest_cert_expiry",
	"probe_ssl_last_chain_expiry_timestamp_seconds",
	"probe_smtp_tls_verified",
	"probe_tls_version_info",
	"probe_tls_cipher_info",
	"probe_smtp_expectation_met",
	"probe_delivery_time_to_inbox_seconds",
	"probe_delivery_placement_info",
	"probe_delivery_auth_result_info",
	"probe_delivery_hops",
	"probe_delivery_spam_flagged",
	"probe_delivery_bounce_mailbox_up",
	"probe_delivery_imap_ssl_earliest_cert_expiry",
	"probe_delivery_imap_ssl_last_chain_expiry_timestamp_seconds",
	"probe_delivery_imap_tls_verified",
	"probe_delivery_imap_tls_version_info",
	"probe_delivery_imap_tls_cipher_info",
	"probe_domain_check_info",
	"probe_domain_null_mx",
	"probe_domain_mx_hosts",
	"probe_domain_mx_hosts_accepting",
	"probe_domain_mx_up",
	"probe_domain_mx_address_up",
	"probe_domain_mta_sts_mode_info",
	"probe_domain_mta_sts_policy_id_info",
	"probe_domain_mta_sts_max_age_seconds",
	"probe_domain_mx_ssl_earliest_cert_expiry",
}

// runMetricNames are the across-runs series whose values are deterministic
// for fixed results (lag and probes in flight depend on the clock).
var runMetricNames = []string{
	"probe_smtp_replies_total",
	"probe_smtp_failures_total",
	"probe_smtp_runs_total",
	"probe_smtp_phase_latency_seconds",
	"probe_smtp_last_run_timestamp_seconds",
	"smtp_exporter_scheduler_backoff_factor",
	"smtp_exporter_sends_skipped_total",
	"smtp_exporter_targets",
}

func reply(code int, enh string, reason probes.Reason, lines ...string) probes.Reply {
	return probes.Reply{Code: code, EnhancedCode: enh, Lines: lines, Reason: reason}
}

func okReply(code int, enh string, lines ...string) probes.Reply {
	return reply(code, enh, probes.ReasonOK, lines...)
}

// phaseResult builds a phase of ms milliseconds whose reason is its last
// reply's.
func phaseResult(p probes.Phase, ms float64, replies ...probes.Reply) *probes.PhaseResult {
	pr := &probes.PhaseResult{Phase: p, Duration: time.Duration(ms * float64(time.Millisecond)), Replies: replies, Reason: probes.ReasonOK}
	if last := pr.LastReply(); last != nil {
		pr.Reason = last.Reason
	}
	return pr
}

var ehloLines = []string{"mail.example.net", "PIPELINING", "SIZE 10240000", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME"}
var ehloTLSLines = []string{"mail.example.net", "PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME"}

// submissionModule: STARTTLS, AUTH, and a message sent.
func submissionModule() *probes.Module {
	m := &probes.Module{SMTP: probes.SMTPModule{
		TLS:      probes.TLSStartTLS,
		EHLO:     "probe.example.net",
		Auth:     &probes.AuthConfig{Mechanism: "PLAIN", Username: "monitor@example.net", Password: "hunter2"},
		MailFrom: "monitor@example.net",
		RcptTo:   []string{"sink@example.net"},
		Send:     true,
	}}
	m.SetDefaults()
	return m
}

// mxModule: STARTTLS, then MAIL and RCPT without sending.
func mxModule() *probes.Module {
	m := &probes.Module{SMTP: probes.SMTPModule{
		TLS:      probes.TLSStartTLS,
		EHLO:     "probe.example.net",
		MailFrom: "monitor@example.net",
		RcptTo:   []string{"postmaster@example.org"},
	}}
	m.SetDefaults()
	return m
}

// successResult is a STARTTLS+AUTH+send dialog that worked.
func successResult() *probes.Result {
	return &probes.Result{
		Start:    testStart,
		Duration: 325 * time.Millisecond,
		Success:  true,
		Reason:   probes.ReasonOK,
		Phases: []*probes.PhaseResult{
			phaseResult(probes.PhaseResolve, 1.5),
			phaseResult(probes.PhaseConnect, 12.25),
			phaseResult(probes.PhaseBanner, 30, okReply(220, "", "mail.example.net ESMTP Postfix")),
			phaseResult(probes.PhaseEHLO, 15, okReply(250, "", ehloLines...)),
			phaseResult(probes.PhaseSTARTTLS, 80, okReply(220, "2.0.0", "2.0.0 Ready to start TLS"), okReply(250, "", ehloTLSLines...)),
			phaseResult(probes.PhaseAuth, 40, okReply(235, "2.7.0", "2.7.0 Authentication successful")),
			phaseResult(probes.PhaseMail, 10, okReply(250, "2.1.0", "2.1.0 Ok")),
			phaseResult(probes.PhaseRcpt, 11, okReply(250, "2.1.5", "2.1.5 Ok")),
			phaseResult(probes.PhaseData, 120, okReply(354, "", "End data with <CR><LF>.<CR><LF>"), okReply(250, "2.0.0", "2.0.0 Ok: queued as 4Z1x2Y3w")),
			phaseResult(probes.PhaseQuit, 5, okReply(221, "2.0.0", "2.0.0 Bye")),
		},
		SMTP: &probes.SMTPFacts{
			HelloAnswered: true, STARTTLSOffered: true,
			MessageID: "<probe.1@probe.example.net>", QueueID: "4Z1x2Y3w",
		},
		TLS: &probes.TLSInfo{
			Version:        "TLS 1.3",
			Cipher:         "TLS_AES_128_GCM_SHA256",
			ServerName:     "mail.example.net",
			Verified:       true,
			EarliestExpiry: certNotAfter,
			ChainExpiry:    chainNotAfter,
		},
	}
}

// deliveryResult is a delivery run whose message landed in junk with DKIM
// and DMARC failing, and which require_inbox failed.
func deliveryResult() *probes.Result {
	r := successResult()
	r.Success, r.Reason, r.FailedPhase = false, probes.ReasonSpamFolder, probes.PhaseWait
	r.Phases = append(r.Phases,
		phaseResult(probes.PhaseIMAPConnect, 20),
		phaseResult(probes.PhaseIMAPAuth, 8),
		&probes.PhaseResult{Phase: probes.PhaseWait, Duration: 2500 * time.Millisecond, Reason: probes.ReasonSpamFolder})
	r.Delivery = &probes.DeliveryFacts{
		Found: true, TimeToInbox: 2250 * time.Millisecond, Folder: "junk",
		AuthFound: true, SPF: "pass", DKIM: "fail", DMARC: "fail", DKIMDomain: "example.net",
		SpamFlagged: true, SpamScored: true, SpamScore: 7.5, Hops: 3,
	}
	return r
}

const dmarcText = "5.7.26 Unauthenticated email from example.net is not accepted due to domain's DMARC policy"

// dmarcResult is an MX dialog whose RCPT was refused with 550 5.7.26, over
// a TLS connection whose certificate did not verify.
func dmarcResult() *probes.Result {
	rcpt := reply(550, "5.7.26", probes.ReasonDMARC, dmarcText)
	return &probes.Result{
		Start:        testStart,
		Duration:     210 * time.Millisecond,
		Success:      false,
		FailedPhase:  probes.PhaseRcpt,
		Reason:       probes.ReasonDMARC,
		Code:         550,
		EnhancedCode: "5.7.26",
		ReplyText:    dmarcText,
		Err:          errors.New("RCPT TO: 550 " + dmarcText),
		Phases: []*probes.PhaseResult{
			phaseResult(probes.PhaseResolve, 2),
			phaseResult(probes.PhaseConnect, 20),
			phaseResult(probes.PhaseBanner, 40, okReply(220, "", "mx.example.org ESMTP")),
			phaseResult(probes.PhaseEHLO, 15, okReply(250, "", ehloLines...)),
			phaseResult(probes.PhaseSTARTTLS, 90, okReply(220, "2.0.0", "2.0.0 Ready to start TLS"), okReply(250, "", ehloTLSLines...)),
			phaseResult(probes.PhaseMail, 12, okReply(250, "2.1.0", "2.1.0 Sender OK")),
			phaseResult(probes.PhaseRcpt, 25, rcpt),
			phaseResult(probes.PhaseQuit, 6, okReply(221, "2.0.0", "2.0.0 Bye")),
		},
		SMTP: &probes.SMTPFacts{HelloAnswered: true, STARTTLSOffered: true},
		TLS: &probes.TLSInfo{
			Version:        "TLS 1.2",
			Cipher:         "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			ServerName:     "mx.example.org",
			Verified:       false,
			VerifyError:    errors.New("x509: certificate signed by unknown authority"),
			EarliestExpiry: certNotAfter,
		},
	}
}

// refusedResult failed early: the TCP connection was refused.
func refusedResult() *probes.Result {
	err := errors.New("dial tcp 192.0.2.1:587: connect: connection refused")
	connect := phaseResult(probes.PhaseConnect, 1)
	connect.Reason, connect.Err = probes.ReasonConnect, err
	return &probes.Result{
		Start:       testStart,
		Duration:    2 * time.Millisecond,
		Success:     false,
		FailedPhase: probes.PhaseConnect,
		Reason:      probes.ReasonConnect,
		Temporary:   true,
		Err:         err,
		Phases:      []*probes.PhaseResult{phaseResult(probes.PhaseResolve, 0.75), connect},
		SMTP:        &probes.SMTPFacts{},
	}
}

// goldenCompare compares the named metrics of g with a file in
// testdata/metrics; -update rewrites the file instead.
func goldenCompare(t *testing.T, g prometheus.Gatherer, file string, names ...string) {
	t.Helper()
	path := filepath.Join("testdata", "metrics", file)
	if *update {
		b, err := testutil.GatherAndFormat(g, expfmt.TypeTextPlain, names...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(g, f, names...); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

func gatherAll(t testing.TB, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	return mfs
}

// labelsOf turns a metric's label pairs into a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// matching returns the series of family name whose labels include want.
func matching(mfs []*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := labelsOf(m)
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// find returns the value of the first series of family name whose labels
// include want: gauge or counter value, or a histogram's sample count.
func find(mfs []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range matching(mfs, name, want) {
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// familiesWith lists the metric families holding any series whose labels
// include want.
func familiesWith(mfs []*dto.MetricFamily, want map[string]string) []string {
	var out []string
	for _, mf := range mfs {
		if _, ok := find([]*dto.MetricFamily{mf}, mf.GetName(), want); ok {
			out = append(out, mf.GetName())
		}
	}
	return out
}

var (
	codeLabelRe     = regexp.MustCompile(`^[2-5][0-5][0-9]$`)
	enhancedLabelRe = regexp.MustCompile(`^([245]\.[0-7]\.[0-9]{1,3})?$`)
	classLabels     = []string{"2xx", "3xx", "4xx", "5xx"}
	// authResultLabels is delivery.AllAuthResults, which collector must
	// not import.
	authResultLabels = []string{"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy", "other"}
)

// checkLabelValues fails the test for any phase, reason, class, code or
// enhanced_code label outside its fixed set (ARCHITECTURE.md §6), over all
// the families; it returns how many such labels it checked.
func checkLabelValues(t *testing.T, mfs []*dto.MetricFamily) int {
	t.Helper()
	checked := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				v := lp.GetValue()
				var ok bool
				if v == overflowLabel && lp.GetName() != "class" && mf.GetName() == "probe_smtp_replies_total" {
					checked++
					continue // the folded series of a target past maxReplyLabelSets
				}
				switch lp.GetName() {
				case "phase":
					ok = slices.Contains(probes.AllPhases, probes.Phase(v))
				case "reason":
					ok = slices.Contains(probes.AllReasons, probes.Reason(v))
				case "class":
					ok = slices.Contains(classLabels, v)
				case "code":
					ok = codeLabelRe.MatchString(v)
				case "enhanced_code":
					ok = enhancedLabelRe.MatchString(v)
				case "folder":
					ok = slices.Contains([]string{"inbox", "junk", "other"}, v)
				case "method":
					ok = slices.Contains([]string{"spf", "dkim", "dmarc"}, v)
				case "result":
					ok = slices.Contains(authResultLabels, v)
					if mf.GetName() == "probe_domain_check_info" {
						ok = slices.Contains(probes.AllCheckResults, v)
					}
				case "check":
					ok = slices.Contains(probes.AllPhases, probes.Phase(v))
				case "family":
					ok = v == "ip4" || v == "ip6"
				case "mode":
					ok = slices.Contains([]string{"enforce", "testing", "none"}, v)
				default:
					continue
				}
				checked++
				if !ok {
					t.Errorf("%s: label %s=%q is outside its fixed set", mf.GetName(), lp.GetName(), v)
				}
			}
		}
	}
	return checked
}

// storeRegistry serves one target's result through NewCollector, as
// /metrics does.
func storeRegistry(t *testing.T, name, module string, res *probes.Result) *prometheus.Registry {
	t.Helper()
	store := NewStore()
	res.Target, res.Module = name, module
	store.Set(StoreEntry{Target: &config.Target{Name: name, Address: "mail.example.net:25", Module: module, Interval: time.Minute}, Result: res})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(store))
	return reg
}

func TestCollector_Success(t *testing.T) {
	reg := storeRegistry(t, "submission-ok", "submission", successResult())
	goldenCompare(t, reg, "success.prom", perRunMetricNames...)
	if checkLabelValues(t, gatherAll(t, reg)) == 0 {
		t.Error("no phase labels checked")
	}
}

func TestCollector_DMARCFailure(t *testing.T) {
	reg := storeRegistry(t, "mx-dmarc", "mx", dmarcResult())
	goldenCompare(t, reg, "dmarc.prom", perRunMetricNames...)
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	if v, ok := find(mfs, "probe_smtp_failure_info", map[string]string{"phase": "rcpt", "reason": "dmarc"}); !ok || v != 1 {
		t.Errorf("probe_smtp_failure_info{phase=rcpt,reason=dmarc} = %v, %v; want 1", v, ok)
	}
	if v, _ := find(mfs, "probe_smtp_reply_code", map[string]string{"phase": "rcpt"}); v != 550 {
		t.Errorf("probe_smtp_reply_code{phase=rcpt} = %v, want 550", v)
	}
}

func TestCollector_Delivery(t *testing.T) {
	reg := storeRegistry(t, "mailflow", "delivery", deliveryResult())
	goldenCompare(t, reg, "delivery.prom", perRunMetricNames...)
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	if v, ok := find(mfs, "probe_delivery_auth_result_info", map[string]string{"method": "dkim", "result": "fail"}); !ok || v != 1 {
		t.Errorf("probe_delivery_auth_result_info{method=dkim,result=fail} = %v, %v; want 1", v, ok)
	}
	if v, ok := find(mfs, "probe_smtp_failure_info", map[string]string{"phase": "wait", "reason": "spam_folder"}); !ok || v != 1 {
		t.Errorf("probe_smtp_failure_info{phase=wait,reason=spam_folder} = %v, %v; want 1", v, ok)
	}
}

func TestCollector_DeliveryNotSeen(t *testing.T) {
	r := deliveryResult()
	r.Delivery = &probes.DeliveryFacts{}
	mfs := gatherAll(t, storeRegistry(t, "mailflow", "delivery", r))
	for _, name := range []string{"probe_delivery_time_to_inbox_seconds", "probe_delivery_placement_info", "probe_delivery_auth_result_info", "probe_delivery_hops", "probe_delivery_spam_flagged"} {
		if _, ok := find(mfs, name, nil); ok {
			t.Errorf("%s served for a message that was never seen", name)
		}
	}
}

// TestCollector_DeliveryAuthUnknown: a module that trusts no
// Authentication-Results header has no verdicts; the auth gauge is absent
// rather than served with an empty result, and the rest is there.
func TestCollector_DeliveryAuthUnknown(t *testing.T) {
	r := deliveryResult()
	r.Delivery.AuthFound, r.Delivery.SPF, r.Delivery.DKIM, r.Delivery.DMARC, r.Delivery.DKIMDomain = false, "", "", "", ""
	mfs := gatherAll(t, storeRegistry(t, "mailflow", "delivery", r))
	if _, ok := find(mfs, "probe_delivery_auth_result_info", nil); ok {
		t.Error("probe_delivery_auth_result_info served with no trusted Authentication-Results")
	}
	if v, ok := find(mfs, "probe_delivery_placement_info", map[string]string{"folder": "junk"}); !ok || v != 1 {
		t.Errorf("probe_delivery_placement_info{folder=junk} = %v, %v; want 1", v, ok)
	}
}

// TestCollector_DeliveryBounceMailbox: probe_delivery_bounce_mailbox_up
// is there only with bounce_imap, also (above all) when the message was
// not seen.
func TestCollector_DeliveryBounceMailbox(t *testing.T) {
	for _, tc := range []struct {
		status  string
		found   bool
		want    float64
		present bool
	}{
		{"ok", true, 1, true},
		{"failed", true, 0, true},
		{"failed", false, 0, true},
		{"", true, 0, false},
		{"", false, 0, false},
	} {
		r := deliveryResult()
		if !tc.found {
			r.Delivery = &probes.DeliveryFacts{}
		}
		r.Delivery.BounceMailbox = tc.status
		mfs := gatherAll(t, storeRegistry(t, "mailflow", "delivery", r))
		v, ok := find(mfs, "probe_delivery_bounce_mailbox_up", nil)
		if ok != tc.present || v != tc.want {
			t.Errorf("bounce mailbox %q, found %v: probe_delivery_bounce_mailbox_up = %v, %v; want %v, %v", tc.status, tc.found, v, ok, tc.want, tc.present)
		}
	}
}

// TestCollector_DeliveryIMAPTLS: the receive mailbox's TLS facts are
// mapped as the SMTP leg's are, under probe_delivery_imap_, also for a
// run whose message was not seen (a certificate that failed, say).
func TestCollector_DeliveryIMAPTLS(t *testing.T) {
	imapExpiry := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, found := range []bool{true, false} {
		r := deliveryResult()
		if !found {
			r.Delivery = &probes.DeliveryFacts{}
		}
		r.Delivery.IMAPTLS = &probes.TLSInfo{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", Verified: false,
			EarliestExpiry: imapExpiry}
		mfs := gatherAll(t, storeRegistry(t, "mailflow", "delivery", r))
		for _, want := range []struct {
			name   string
			labels map[string]string
			value  float64
		}{
			{"probe_delivery_imap_ssl_earliest_cert_expiry", nil, float64(imapExpiry.Unix())},
			{"probe_delivery_imap_tls_version_info", map[string]string{"version": "TLS 1.3"}, 1},
			{"probe_delivery_imap_tls_cipher_info", map[string]string{"cipher": "TLS_AES_128_GCM_SHA256"}, 1},
			{"probe_delivery_imap_tls_verified", nil, 0},
		} {
			if v, ok := find(mfs, want.name, want.labels); !ok || v != want.value {
				t.Errorf("found %v: %s%v = %v, %v; want %v", found, want.name, want.labels, v, ok, want.value)
			}
		}
		if _, ok := find(mfs, "probe_delivery_imap_ssl_last_chain_expiry_timestamp_seconds", nil); ok {
			t.Errorf("found %v: chain expiry served for a chain that did not verify", found)
		}
		// The SMTP leg's own TLS series keep the SMTP connection's facts.
		if v, _ := find(mfs, "probe_ssl_earliest_cert_expiry", nil); v != float64(certNotAfter.Unix()) {
			t.Errorf("found %v: probe_ssl_earliest_cert_expiry = %v, want the SMTP certificate's", found, v)
		}
	}
	r := deliveryResult()
	mfs := gatherAll(t, storeRegistry(t, "mailflow", "delivery", r))
	if fams := familiesWith(mfs, nil); slices.ContainsFunc(fams, func(f string) bool { return strings.HasPrefix(f, "probe_delivery_imap_") }) {
		t.Errorf("IMAP TLS series without IMAP TLS: %v", fams)
	}
}

func TestCollector_ConnectRefused(t *testing.T) {
	reg := storeRegistry(t, "refused", "submission", refusedResult())
	goldenCompare(t, reg, "refused.prom", perRunMetricNames...)
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	if _, ok := find(mfs, "probe_smtp_reply_code", nil); ok {
		t.Error("probe_smtp_reply_code reported for a probe that got no reply")
	}
}

// phaseDurations returns the phases of probe_smtp_phase_duration_seconds
// in mfs with their values.
func phaseDurations(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "probe_smtp_phase_duration_seconds" {
			for _, m := range mf.GetMetric() {
				out[labelsOf(m)["phase"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestCollector_UnknownIsNotNo: what a probe never reached is omitted, not
// reported as 0: the phases it did not run have no duration, and whether
// STARTTLS was offered is unknown until the EHLO (or LHLO) reply came. A
// phase that ran, even failing, keeps its duration.
func TestCollector_UnknownIsNotNo(t *testing.T) {
	bannerTimeout := func() *probes.Result {
		res := refusedResult()
		banner := phaseResult(probes.PhaseBanner, 5000)
		banner.Reason, banner.Err = probes.ReasonTimeout, errors.New("i/o timeout")
		res.Phases = []*probes.PhaseResult{phaseResult(probes.PhaseResolve, 1), phaseResult(probes.PhaseConnect, 2), banner}
		res.FailedPhase, res.Reason = probes.PhaseBanner, probes.ReasonTimeout
		return res
	}
	ehloRefused := func() *probes.Result {
		res := bannerTimeout()
		res.Phases[2] = phaseResult(probes.PhaseBanner, 3, okReply(220, "", "mx.example.org ESMTP"))
		res.Phases = append(res.Phases, phaseResult(probes.PhaseEHLO, 4, reply(554, "5.7.1", probes.ReasonPolicy, "5.7.1 go away")),
			phaseResult(probes.PhaseQuit, 1, okReply(221, "", "Bye")))
		res.FailedPhase, res.Reason = probes.PhaseEHLO, probes.ReasonPolicy
		res.SMTP = &probes.SMTPFacts{HelloAnswered: true}
		return res
	}
	noSTARTTLS := func() *probes.Result {
		res := dmarcResult()
		res.SMTP.STARTTLSOffered = false
		return res
	}
	lmtp := func() *probes.Result {
		res := ehloRefused()
		res.Phases[3] = phaseResult(probes.PhaseLHLO, 4, okReply(250, "", "lmtp.example.org", "STARTTLS"))
		res.SMTP.STARTTLSOffered, res.Success = true, true
		return res
	}
	for _, tc := range []struct {
		name     string
		result   func() *probes.Result
		phases   map[string]float64
		starttls float64 // -1: absent
	}{
		{"connection refused", refusedResult, map[string]float64{"resolve": 0.00075, "connect": 0.001}, -1},
		{"banner timeout", bannerTimeout, map[string]float64{"resolve": 0.001, "connect": 0.002, "banner": 5}, -1},
		{"EHLO refused", ehloRefused, map[string]float64{"resolve": 0.001, "connect": 0.002, "banner": 0.003, "ehlo": 0.004, "quit": 0.001}, 0},
		{"no STARTTLS", noSTARTTLS, map[string]float64{"resolve": 0.002, "connect": 0.02, "banner": 0.04, "ehlo": 0.015,
			"starttls": 0.09, "mail": 0.012, "rcpt": 0.025, "quit": 0.006}, 0},
		{"LHLO", lmtp, map[string]float64{"resolve": 0.001, "connect": 0.002, "banner": 0.003, "lhlo": 0.004, "quit": 0.001}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mfs := gatherAll(t, storeRegistry(t, "t", "submission", tc.result()))
			if got := phaseDurations(mfs); !maps.Equal(got, tc.phases) {
				t.Errorf("probe_smtp_phase_duration_seconds = %v, want %v", got, tc.phases)
			}
			v, ok := find(mfs, "probe_smtp_starttls_offered", nil)
			if !ok {
				v = -1
			}
			if v != tc.starttls {
				t.Errorf("probe_smtp_starttls_offered = %v, want %v (-1: absent)", v, tc.starttls)
			}
		})
	}
}

// scheduledFixture runs three targets through a real Scheduler once each:
// the fake probe returns the fixed results on a target's first run and
// blocks later runs until the scheduler shuts down, so the counters hold
// exactly one run per target.
type scheduledFixture struct {
	sched *Scheduler
	store *Store
	cfg   *config.Config
	reg   *prometheus.Registry
}

func newScheduledFixture(t *testing.T) *scheduledFixture {
	t.Helper()
	cfg := &config.Config{
		Modules: map[string]*probes.Module{"submission": submissionModule(), "mx": mxModule()},
		Targets: []*config.Target{
			{Name: "submission-ok", Address: "mail.example.net:587", Module: "submission", Interval: 50 * time.Millisecond},
			{Name: "mx-dmarc", Address: "mx.example.org:25", Module: "mx", Interval: 50 * time.Millisecond},
			{Name: "refused", Address: "192.0.2.1:587", Module: "submission", Interval: 50 * time.Millisecond},
		},
	}
	results := map[string]func() *probes.Result{
		"mail.example.net:587": successResult,
		"mx.example.org:25":    dmarcResult,
		"192.0.2.1:587":        refusedResult,
	}
	// A target's second run starts after its first was recorded.
	second := make(chan struct{}, len(cfg.Targets))
	fake := newFakeProbe(func(c *probeCall) *probes.Result {
		if c.n > 1 {
			if c.n == 2 {
				second <- struct{}{}
			}
			<-c.ctx.Done()
		}
		return results[c.target]()
	})
	f := &scheduledFixture{store: NewStore(), cfg: cfg}
	f.sched = NewScheduler(fake.probe, 8, f.store, NewHistory(10), nopLogger())
	t.Cleanup(func() { f.sched.Shutdown(0) })
	f.reg = prometheus.NewPedanticRegistry()
	f.reg.MustRegister(NewCollector(f.store))
	f.reg.MustRegister(f.sched.Collectors()...)
	f.sched.Apply(cfg)
	for range cfg.Targets {
		select {
		case <-second:
		case <-time.After(20 * time.Second):
			t.Fatal("timed out waiting for one recorded run of every target")
		}
	}
	return f
}

func TestScheduler_RunMetrics(t *testing.T) {
	f := newScheduledFixture(t)
	goldenCompare(t, f.reg, "scheduled.prom", append(append([]string{}, runMetricNames...), perRunMetricNames...)...)
	mfs := gatherAll(t, f.reg)
	if checkLabelValues(t, mfs) == 0 {
		t.Fatal("no labels checked")
	}
	// Every reply counts, 2xx included: 10 for the successful dialog.
	var replies float64
	for _, mf := range mfs {
		if mf.GetName() != "probe_smtp_replies_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsOf(m)["target"] == "submission-ok" {
				replies += m.GetCounter().GetValue()
			}
		}
	}
	if replies != 10 {
		t.Errorf("probe_smtp_replies_total over submission-ok = %v, want 10", replies)
	}
	want := map[string]string{"target": "mx-dmarc", "module": "mx", "phase": "rcpt", "code": "550", "enhanced_code": "5.7.26", "class": "5xx", "reason": "dmarc"}
	if v, ok := find(mfs, "probe_smtp_replies_total", want); !ok || v != 1 {
		t.Errorf("probe_smtp_replies_total%v = %v, %v; want 1", want, v, ok)
	}
	// The lag gauge exists for every target (its value is the clock's).
	for _, tg := range f.cfg.Targets {
		if _, ok := find(mfs, "smtp_exporter_scheduler_lag_seconds", map[string]string{"target": tg.Name, "module": tg.Module}); !ok {
			t.Errorf("smtp_exporter_scheduler_lag_seconds{target=%q} missing", tg.Name)
		}
	}
}

func TestEnhancedLabel(t *testing.T) {
	for in, want := range map[string]string{
		"":          "",
		"2.0.0":     "2.0.0",
		"4.7.1":     "4.7.1",
		"5.7.26":    "5.7.26",
		"5.1.1":     "5.1.1",
		"5.7.999":   "5.7.999",
		"5.99.1":    "",
		"5.8.1":     "",
		"5.10.1":    "",
		"5.7.1000":  "",
		"5.7.":      "",
		"5..1":      "",
		"3.1.1":     "",
		"9.1.1":     "",
		"55.1.1":    "",
		"5.1":       "",
		"5.1.1.1":   "",
		"5.a.1":     "",
		"5.1.x":     "",
		"x.1.1":     "",
		"5.1.1 foo": "",
	} {
		if got := enhancedLabel(in); got != want {
			t.Errorf("enhancedLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReplies_OutOfRangeEnhancedCodeIsDropped feeds a reply whose enhanced
// code is outside RFC 3463's subjects; it is counted without one.
func TestReplies_OutOfRangeEnhancedCodeIsDropped(t *testing.T) {
	rm := newRunMetrics()
	res := refusedResult()
	res.Phases = []*probes.PhaseResult{phaseResult(probes.PhaseBanner, 1, reply(554, "5.99.1", probes.ReasonPolicy, "5.99.1 go away"))}
	rm.observe(&config.Target{Name: "t", Module: "m"}, res)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(rm.collectors()...)
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	if v, ok := find(mfs, "probe_smtp_replies_total", map[string]string{"code": "554", "enhanced_code": ""}); !ok || v != 1 {
		t.Errorf("554 reply with dropped enhanced code: %v, %v; want 1", v, ok)
	}
}

// randomText is reply text no label may ever carry.
func randomText(rng *rand.Rand) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:<>@\"'{}=\\é→"
	r := []rune(chars)
	var b strings.Builder
	b.WriteString("RND")
	for range 20 + rng.IntN(40) {
		b.WriteRune(r[rng.IntN(len(r))])
	}
	return b.String()
}

// randomizeTexts gives every reply of res distinct random text, keeping its
// codes, and the result random free-text fields.
func randomizeTexts(rng *rand.Rand, res *probes.Result) *probes.Result {
	for _, pr := range res.Phases {
		for i := range pr.Replies {
			r := &pr.Replies[i]
			lines := []string{randomText(rng)}
			if r.EnhancedCode != "" {
				lines[0] = r.EnhancedCode + " " + lines[0]
			}
			r.Lines = lines
		}
	}
	res.ReplyText = randomText(rng)
	res.Err = errors.New(randomText(rng))
	res.SMTP.QueueID = randomText(rng)
	res.SMTP.MessageID = randomText(rng)
	return res
}

func TestCardinality_RandomReplyTexts(t *testing.T) {
	store := NewStore()
	rm := newRunMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(store))
	reg.MustRegister(rm.collectors()...)
	rng := rand.New(rand.NewPCG(1, 2))
	targets := []struct {
		t      *config.Target
		result func() *probes.Result
	}{
		{&config.Target{Name: "submission-ok", Module: "submission"}, successResult},
		{&config.Target{Name: "mx-dmarc", Module: "mx"}, dmarcResult},
	}
	feed := func(i int) {
		tg := targets[i%len(targets)]
		res := randomizeTexts(rng, tg.result())
		res.Start = testStart.Add(time.Duration(i) * time.Minute)
		rm.observe(tg.t, res)
		store.Set(StoreEntry{Target: tg.t, Result: res})
	}
	for i := range len(targets) {
		feed(i)
	}
	before, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		feed(i)
	}
	after, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("series grew with reply texts: %d before, %d after 1,000 results", before, after)
	}
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "RND") {
					t.Fatalf("%s: reply text in label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	if v, _ := find(mfs, "probe_smtp_runs_total", map[string]string{"target": "mx-dmarc"}); v != 501 {
		t.Errorf("probe_smtp_runs_total{target=mx-dmarc} = %v, want 501", v)
	}
}

// exporterRegistry registers everything cmd/smtp_exporter/serve.go does.
func exporterRegistry(t *testing.T, f *scheduledFixture) (*prometheus.Registry, *SafeConfig) {
	t.Helper()
	sc := NewSafeConfig(filepath.Join("config", "testdata", "good.yml"))
	if _, err := sc.Reload(); err != nil {
		t.Fatalf("loading config/testdata/good.yml: %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("smtp_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(f.store),
	)
	reg.MustRegister(sc.Collectors()...)
	reg.MustRegister(f.sched.Collectors()...)
	return reg, sc
}

// TestPromtoolCheckMetrics lints the whole /metrics exposition with
// promtool. SMTP_EXPORTER_E2E=1 makes a missing promtool a failure.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SMTP_EXPORTER_E2E") == "1" {
			t.Fatalf("promtool not found with SMTP_EXPORTER_E2E=1: %v", err)
		}
		t.Skip("promtool not on PATH")
	}
	f := newScheduledFixture(t)
	reg, sc := exporterRegistry(t, f)
	// A delivery run's facts, so that promtool lints its gauges too.
	dr := deliveryResult()
	dr.Target, dr.Module = "mailflow", "delivery"
	dr.Delivery.BounceMailbox = "ok"
	dr.Delivery.IMAPTLS = dr.TLS
	f.store.Set(StoreEntry{Target: &config.Target{Name: "mailflow", Address: "mail.example.net:587", Module: "delivery", Interval: time.Minute}, Result: dr})
	// And a domain run's, with its addresses as labels.
	dom := domainFailingResult()
	dom.Target, dom.Module, dom.Domain.AddressLabels = "example.com", "posture", true
	f.store.Set(StoreEntry{Target: &config.Target{Name: "example.com", Address: "example.com", Module: "posture", Interval: time.Minute}, Result: dom})
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	for _, name := range append(append([]string{"smtp_exporter_build_info", "smtp_exporter_config_last_reload_successful",
		"smtp_exporter_config_last_reload_success_timestamp_seconds", "smtp_exporter_probes_in_flight",
		"smtp_exporter_scheduler_lag_seconds"}, runMetricNames...), perRunMetricNames...) {
		if name == "smtp_exporter_sends_skipped_total" || name == "probe_smtp_expectation_met" {
			continue // no run skipped a send; no module has expect_codes
		}
		if _, ok := find(mfs, name, nil); !ok {
			t.Errorf("%s missing from the exposition", name)
		}
	}

	// /metrics as serve.go wires it: the per-target series kept encoded.
	shared := prometheus.NewRegistry()
	shared.MustRegister(versioncollector.NewCollector("smtp_exporter"), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	shared.MustRegister(sc.Collectors()...)
	sharedRun, perTarget := f.sched.MetricSources()
	shared.MustRegister(sharedRun...)
	rec := httptest.NewRecorder()
	MetricsHandler(shared, NewCollector(f.store), perTarget).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: status %d: %s", rec.Code, rec.Body)
	}
	for _, name := range []string{"probe_success{", "probe_smtp_runs_total{", "probe_domain_mx_address_up{", "go_goroutines "} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(rec.Body.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func ExampleCollector() {
	store := NewStore()
	res := refusedResult()
	store.Set(StoreEntry{Target: &config.Target{Name: "mx1", Module: "mx"}, Result: res})
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(store))
	out, _ := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "probe_success", "probe_smtp_failure_info")
	fmt.Print(string(out))
	// Output:
	// # HELP probe_smtp_failure_info Set to 1 with the phase and reason of the last probe's failure; absent on success.
	// # TYPE probe_smtp_failure_info gauge
	// probe_smtp_failure_info{module="mx",phase="connect",reason="connect",target="mx1"} 1
	// # HELP probe_success Whether the last SMTP probe succeeded (1) or failed (0).
	// # TYPE probe_success gauge
	// probe_success{module="mx",target="mx1"} 0
}

// seriesOf counts the counters of family name whose labels include want,
// and sums them.
func seriesOf(mfs []*dto.MetricFamily, name string, want map[string]string) (n int, sum float64) {
	for _, m := range matching(mfs, name, want) {
		n++
		sum += m.GetCounter().GetValue()
	}
	return n, sum
}

// randomEnhanced is an enhanced code of class c that enhancedLabel
// accepts, drawn from its 8,000 values per class.
func randomEnhanced(rng *rand.Rand, class int) string {
	return fmt.Sprintf("%d.%d.%d", class, rng.IntN(8), rng.IntN(1000))
}

// TestReplies_LabelSetsCappedPerTarget: a server rotating random enhanced
// codes (and then random codes) cannot grow its target's reply series
// beyond maxReplyLabelSets plus one overflow series per class; the replies
// it folds are still counted, by class and in the overflow counter.
func TestReplies_LabelSetsCappedPerTarget(t *testing.T) {
	rm := newRunMetrics()
	reg := registryOf(rm.collectors()...)
	tg := &config.Target{Name: "rotating", Module: "mx"}
	rng := rand.New(rand.NewPCG(7, 7))
	rcptReply := func(code int, enh string) *probes.Result {
		res := refusedResult()
		res.Phases = []*probes.PhaseResult{phaseResult(probes.PhaseRcpt, 1, reply(code, enh, probes.ReasonPolicy, enh+" go away"))}
		return res
	}

	rm.observe(tg, successResult()) // 10 replies, 10 label sets
	const floods = 5000
	for range floods {
		rm.observe(tg, rcptReply(550, randomEnhanced(rng, 5)))
	}
	target := map[string]string{"target": "rotating"}
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	n, total := seriesOf(mfs, "probe_smtp_replies_total", target)
	if n > maxReplyLabelSets+1 {
		t.Errorf("probe_smtp_replies_total{target=rotating}: %d series after %d random enhanced codes, want at most %d", n, floods, maxReplyLabelSets+1)
	}
	if total != 10+floods {
		t.Errorf("probe_smtp_replies_total{target=rotating} sums to %v, want every reply counted (%d)", total, 10+floods)
	}
	overflowSeries := map[string]string{"target": "rotating", "phase": overflowLabel, "code": overflowLabel,
		"enhanced_code": overflowLabel, "class": "5xx", "reason": overflowLabel}
	folded, ok := find(mfs, "probe_smtp_replies_total", overflowSeries)
	// Only a random code drawn twice among the first 40 counts as itself.
	if !ok || folded < floods*9/10 {
		t.Errorf("overflow series %v = %v, %v; want most of the %d random replies", overflowSeries, folded, ok, floods)
	}
	if v, _ := find(mfs, "smtp_exporter_reply_labels_overflow_total", map[string]string{"target": "rotating", "module": "mx"}); v != folded {
		t.Errorf("smtp_exporter_reply_labels_overflow_total = %v, want the %v replies folded", v, folded)
	}

	// Label sets seen before the cap keep counting as themselves.
	rm.observe(tg, successResult())
	mfs = gatherAll(t, reg)
	banner := map[string]string{"target": "rotating", "phase": "banner", "code": "220"}
	if v, _ := find(mfs, "probe_smtp_replies_total", banner); v != 2 {
		t.Errorf("probe_smtp_replies_total%v = %v after the cap, want 2", banner, v)
	}

	// Random codes of every class fold into one series per class.
	for range floods {
		class := 2 + rng.IntN(4)
		enhClass := class
		if class == 3 {
			enhClass = 2 // RFC 3463 has no class 3
		}
		rm.observe(tg, rcptReply(class*100+rng.IntN(60), randomEnhanced(rng, enhClass)))
	}
	mfs = gatherAll(t, reg)
	checkLabelValues(t, mfs)
	if n, _ := seriesOf(mfs, "probe_smtp_replies_total", target); n > maxReplyLabelSets+len(classLabels) {
		t.Errorf("probe_smtp_replies_total{target=rotating}: %d series after random codes, want at most %d", n, maxReplyLabelSets+len(classLabels))
	}

	// forget drops the bookkeeping: the target starts afresh.
	rm.forget("rotating")
	rm.observe(tg, rcptReply(550, "5.7.1"))
	mfs = gatherAll(t, reg)
	if fams := familiesWith(mfs, map[string]string{"target": "rotating", "phase": overflowLabel}); len(fams) > 0 {
		t.Errorf("overflow series survive forget: %v", fams)
	}
	if _, ok := find(mfs, "smtp_exporter_reply_labels_overflow_total", target); ok {
		t.Error("smtp_exporter_reply_labels_overflow_total survives forget")
	}
	if v, _ := find(mfs, "probe_smtp_replies_total", map[string]string{"target": "rotating", "enhanced_code": "5.7.1"}); v != 1 {
		t.Errorf("first reply after forget: %v, want its own series at 1", v)
	}
}

// TestRunMetrics_DeliveryCounters feeds scheduled delivery runs: a late
// leftover cleaned up, a lost message and a bounce are counted, an smtp
// run adds no delivery series, and forget drops them.
func TestRunMetrics_DeliveryCounters(t *testing.T) {
	rm := newRunMetrics()
	reg := registryOf(rm.collectors()...)
	tg := &config.Target{Name: "mailpath", Module: "delivery"}

	withLate := deliveryResult()
	withLate.Delivery.Cleaned, withLate.Delivery.Late = 3, 3
	rm.observe(tg, withLate)

	lost := deliveryResult()
	lost.Reason, lost.FailedPhase = probes.ReasonNotDelivered, probes.PhaseWait
	lost.Delivery = &probes.DeliveryFacts{}
	rm.observe(tg, lost)
	rm.observe(tg, lost)

	bounced := deliveryResult()
	bounced.Reason, bounced.FailedPhase = probes.ReasonMailboxUnavailable, probes.PhaseBounce
	bounced.Delivery = &probes.DeliveryFacts{Bounce: &probes.BounceFacts{
		Reason: probes.ReasonMailboxUnavailable, Action: "failed", Code: 550, EnhancedCode: "5.1.1", Text: "User unknown"}}
	rm.observe(tg, bounced)
	delayed := deliveryResult()
	delayed.Reason, delayed.FailedPhase = probes.ReasonThrottled, probes.PhaseBounce
	delayed.Delivery = &probes.DeliveryFacts{Bounce: &probes.BounceFacts{
		Reason: probes.ReasonThrottled, Temporary: true, Action: "delayed", EnhancedCode: "4.7.0"}}
	rm.observe(tg, delayed)

	rm.observe(&config.Target{Name: "mx", Module: "smtp"}, refusedResult())

	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	tl := map[string]string{"target": "mailpath", "module": "delivery"}
	if v, ok := find(mfs, "probe_delivery_late_total", tl); !ok || v != 3 {
		t.Errorf("probe_delivery_late_total = %v, %v; want 3", v, ok)
	}
	if v, ok := find(mfs, "probe_delivery_lost_total", tl); !ok || v != 2 {
		t.Errorf("probe_delivery_lost_total = %v, %v; want 2", v, ok)
	}
	for _, want := range []struct {
		reason probes.Reason
		class  string
	}{{probes.ReasonMailboxUnavailable, "5xx"}, {probes.ReasonThrottled, "4xx"}} {
		l := map[string]string{"target": "mailpath", "module": "delivery", "reason": string(want.reason), "class": want.class}
		if v, ok := find(mfs, "probe_delivery_bounces_total", l); !ok || v != 1 {
			t.Errorf("probe_delivery_bounces_total%v = %v, %v; want 1", l, v, ok)
		}
	}
	if fams := familiesWith(mfs, map[string]string{"target": "mx"}); slices.ContainsFunc(fams, func(f string) bool { return strings.HasPrefix(f, "probe_delivery_") }) {
		t.Errorf("an smtp target has delivery series: %v", fams)
	}

	rm.forget("mailpath")
	if fams := familiesWith(gatherAll(t, reg), map[string]string{"target": "mailpath"}); len(fams) != 0 {
		t.Errorf("series left after forget: %v", fams)
	}
}

// TestRunMetrics_InboxLatency: every delivery run whose message was seen
// adds its time to inbox to the histogram, in the bucket it belongs in;
// a run whose message never came adds nothing, and the series go with
// their target.
func TestRunMetrics_InboxLatency(t *testing.T) {
	const name = "probe_delivery_inbox_latency_seconds"
	rm := newRunMetrics()
	reg := registryOf(rm.collectors()...)
	tg := &config.Target{Name: "mailpath", Module: "delivery"}
	tl := map[string]string{"target": "mailpath", "module": "delivery"}

	lost := deliveryResult()
	lost.Reason, lost.FailedPhase = probes.ReasonNotDelivered, probes.PhaseWait
	lost.Delivery = &probes.DeliveryFacts{}
	rm.observe(tg, lost)
	if ms := matching(gatherAll(t, reg), name, tl); len(ms) != 0 {
		t.Fatalf("a run whose message was not seen made %s %v", name, ms)
	}

	fast := deliveryResult() // 2.25 s, in junk: seen all the same
	slow := deliveryResult()
	slow.Delivery.TimeToInbox = 4 * time.Minute
	for _, r := range []*probes.Result{fast, slow, lost} {
		rm.observe(tg, r)
	}
	rm.observe(&config.Target{Name: "mx", Module: "smtp"}, successResult())

	mfs := gatherAll(t, reg)
	ms := matching(mfs, name, tl)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, tl, len(ms))
	}
	h := ms[0].GetHistogram()
	if got := labelsOf(ms[0]); len(got) != 2 {
		t.Errorf("%s labels %v; want target and module only", name, got)
	}
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 242.25 {
		t.Errorf("%s: count %d, sum %v; want 2 and 242.25", name, h.GetSampleCount(), h.GetSampleSum())
	}
	cum := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for le, want := range map[float64]uint64{1: 0, 2.5: 1, 120: 1, 300: 2, 3600: 2} {
		if got, ok := cum[le]; !ok || got != want {
			t.Errorf("%s bucket le=%v: %d (present %v); want %d", name, le, got, ok, want)
		}
	}
	if h.GetSchema() == 0 && len(h.GetPositiveSpan()) == 0 && h.GetZeroThreshold() == 0 {
		t.Errorf("%s has no native histogram", name)
	}
	if fams := familiesWith(mfs, map[string]string{"target": "mx"}); slices.Contains(fams, name) {
		t.Errorf("an smtp target has %s", name)
	}

	rm.forget("mailpath")
	if ms := matching(gatherAll(t, reg), name, nil); len(ms) != 0 {
		t.Errorf("%s left after forget: %v", name, ms)
	}
}

// domainCert is the MX certificates' NotAfter in domainResult; the
// second MX's expires earlier.
var (
	domainCertNotAfter  = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	domainCert2NotAfter = time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
)

// domainPhases are a default domain module's checks (dkim and dnsbl are
// opt-in).
var domainPhases = []probes.Phase{probes.PhaseMX, probes.PhasePTR, probes.PhaseSPF, probes.PhaseDMARC,
	probes.PhaseMTASTS, probes.PhaseTLSRPT, probes.PhaseDANE}

// domainResult is a healthy domain with the default checks: two MX hosts
// with an IPv4 and an IPv6 address each, every session accepting over
// TLS, an MTA-STS policy in enforce mode.
func domainResult() *probes.Result {
	r := &probes.Result{Start: testStart, Duration: 1800 * time.Millisecond, Success: true, Reason: probes.ReasonOK}
	f := &probes.DomainFacts{MTASTSMode: "enforce", MTASTSPolicyID: "20250301T000000", MTASTSMaxAge: 604800 * time.Second}
	for _, p := range domainPhases {
		r.Phases = append(r.Phases, phaseResult(p, 40))
		f.Checks = append(f.Checks, probes.DomainCheck{Name: p, Result: probes.CheckPass, Reason: probes.ReasonOK})
	}
	session := func(addr, family string, notAfter time.Time) probes.MXAddressFacts {
		return probes.MXAddressFacts{Address: addr, Family: family, Accepts: true, Reason: probes.ReasonOK,
			Duration: 150 * time.Millisecond, STARTTLSOffered: true, Greeting: "mx.example.com",
			TLS: &probes.TLSInfo{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", Verified: true, EarliestExpiry: notAfter}}
	}
	f.MX = []probes.MXHostFacts{
		{Host: "mx1.example.com.", Preference: 10, Addresses: []probes.MXAddressFacts{
			session("192.0.2.25", "ip4", domainCertNotAfter), session("2001:db8::25", "ip6", domainCertNotAfter)}},
		{Host: "mx2.example.com.", Preference: 20, Addresses: []probes.MXAddressFacts{
			session("192.0.2.26", "ip4", domainCert2NotAfter), session("2001:db8::26", "ip6", domainCert2NotAfter)}},
	}
	r.Domain = f
	return r
}

// domainFailingResult: the secondary's IPv6 address times out, SPF is
// past ten lookups, DANE does not match the certificate presented.
func domainFailingResult() *probes.Result {
	r := domainResult()
	f := r.Domain
	down := &f.MX[1].Addresses[1]
	down.Accepts, down.Reason, down.Phase, down.TLS, down.STARTTLSOffered = false, probes.ReasonTimeout, probes.PhaseConnect, nil, false
	f.Check(probes.PhaseMX).Result, f.Check(probes.PhaseMX).Reason = probes.CheckWarn, probes.ReasonMXUnreachable
	spf := f.Check(probes.PhaseSPF)
	spf.Result, spf.Reason, spf.Detail = probes.CheckFail, probes.ReasonSPFTooManyLookups, "13 DNS-querying mechanisms"
	dane := f.Check(probes.PhaseDANE)
	dane.Result, dane.Reason = probes.CheckFail, probes.ReasonDANEMismatch
	r.Success, r.FailedPhase, r.Reason = false, probes.PhaseSPF, probes.ReasonSPFTooManyLookups
	return r
}

func TestCollector_Domain(t *testing.T) {
	reg := storeRegistry(t, "example.com", "posture", domainFailingResult())
	goldenCompare(t, reg, "domain.prom", perRunMetricNames...)
	mfs := gatherAll(t, reg)
	checkLabelValues(t, mfs)
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"probe_domain_check_info", map[string]string{"check": "spf", "result": "fail", "reason": "spf_too_many_lookups"}, 1},
		{"probe_domain_check_info", map[string]string{"check": "dane", "result": "fail", "reason": "dane_mismatch"}, 1},
		{"probe_domain_check_info", map[string]string{"check": "mx", "result": "warn", "reason": "mx_unreachable"}, 1},
		{"probe_domain_check_info", map[string]string{"check": "dmarc", "result": "pass", "reason": "ok"}, 1},
		{"probe_domain_mx_up", map[string]string{"mx": "mx2.example.com", "family": "ip6"}, 0},
		{"probe_domain_mx_up", map[string]string{"mx": "mx2.example.com", "family": "ip4"}, 1},
		{"probe_domain_mx_up", map[string]string{"mx": "mx1.example.com", "family": "ip6"}, 1},
		{"probe_domain_mx_hosts", nil, 2},
		{"probe_domain_mx_hosts_accepting", nil, 2},
		{"probe_domain_null_mx", nil, 0},
		{"probe_domain_mta_sts_mode_info", map[string]string{"mode": "enforce"}, 1},
		{"probe_domain_mta_sts_policy_id_info", map[string]string{"id": "20250301T000000"}, 1},
		{"probe_domain_mta_sts_max_age_seconds", nil, 604800},
		{"probe_domain_mx_ssl_earliest_cert_expiry", nil, float64(domainCert2NotAfter.Unix())},
		{"probe_smtp_failure_info", map[string]string{"phase": "spf", "reason": "spf_too_many_lookups"}, 1},
	} {
		if v, ok := find(mfs, want.name, want.labels); !ok || v != want.value {
			t.Errorf("%s%v = %v, %v; want %v", want.name, want.labels, v, ok, want.value)
		}
	}
	if n, _ := gaugesOf(mfs, "probe_domain_check_info", nil); n != len(domainPhases) {
		t.Errorf("probe_domain_check_info has %d series, want one per check (%d)", n, len(domainPhases))
	}
	if _, ok := find(mfs, "probe_domain_mx_address_up", nil); ok {
		t.Error("MX addresses became label values without address_labels")
	}
	// The SMTP leg's gauges belong to single-host probes.
	for _, name := range []string{"probe_ssl_earliest_cert_expiry", "probe_smtp_starttls_offered", "probe_tls_version_info"} {
		if _, ok := find(mfs, name, nil); ok {
			t.Errorf("%s served for a domain run", name)
		}
	}
}

// TestCollector_DomainSeriesBudget counts the /metrics series of a
// healthy domain with the default checks, two MX hosts and two families:
// the number README.md's budget table and ARCHITECTURE.md §6 give.
func TestCollector_DomainSeriesBudget(t *testing.T) {
	mfs := gatherAll(t, storeRegistry(t, "example.com", "posture", domainResult()))
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	// success, duration, 7 phase durations, 7 check verdicts, null MX, MX
	// count, MX accepting, 4 MX up, MTA-STS mode, id and max_age, the
	// earliest MX certificate.
	if want := 27; n != want {
		for _, mf := range mfs {
			t.Logf("%s: %d", mf.GetName(), len(mf.GetMetric()))
		}
		t.Errorf("a healthy domain has %d per-run series, want %d (update README.md and ARCHITECTURE.md §6 with it)", n, want)
	}
}

// TestCollector_DomainAddressLabels: with address_labels, each address is
// a series of its own, its IP in canonical form; the prober's host names
// lose the root dot and case, so one host is one series.
func TestCollector_DomainAddressLabels(t *testing.T) {
	r := domainFailingResult()
	r.Domain.AddressLabels = true
	r.Domain.MX[1].Addresses[1].Address = "2001:DB8:0::26"
	r.Domain.MX[1].Host = "MX2.Example.COM."
	mfs := gatherAll(t, storeRegistry(t, "example.com", "posture", r))
	checkLabelValues(t, mfs)
	if n, sum := gaugesOf(mfs, "probe_domain_mx_address_up", nil); n != 4 || sum != 3 {
		t.Errorf("probe_domain_mx_address_up: %d series summing to %v, want 4 summing to 3", n, sum)
	}
	if v, ok := find(mfs, "probe_domain_mx_address_up", map[string]string{"mx": "mx2.example.com", "family": "ip6", "address": "2001:db8::26"}); !ok || v != 0 {
		t.Errorf("the timed-out address = %v, %v; want 0", v, ok)
	}
}

// TestCollector_DomainRepeatedMX: DNS may list one host twice (two
// preferences) or a host's address twice; each host, family and address
// is still one series, up when any of its sessions accepted, and the
// registry accepts the result (duplicate label sets fail a scrape).
func TestCollector_DomainRepeatedMX(t *testing.T) {
	r := domainResult()
	r.Domain.AddressLabels = true
	dup := r.Domain.MX[0]
	dup.Preference = 30
	dup.Addresses = []probes.MXAddressFacts{{Address: "192.0.2.25", Family: "ip4", Reason: probes.ReasonConnect}}
	r.Domain.MX = append(r.Domain.MX, dup)
	r.Domain.Checks = append(r.Domain.Checks, probes.DomainCheck{Name: probes.PhaseSPF, Result: probes.CheckFail, Reason: probes.ReasonSPFInvalid})
	mfs := gatherAll(t, storeRegistry(t, "example.com", "posture", r))
	if n, sum := gaugesOf(mfs, "probe_domain_mx_up", nil); n != 4 || sum != 4 {
		t.Errorf("probe_domain_mx_up: %d series summing to %v, want 4 up", n, sum)
	}
	if v, _ := find(mfs, "probe_domain_mx_hosts", nil); v != 2 {
		t.Errorf("probe_domain_mx_hosts = %v, want 2 hosts", v)
	}
	if n, _ := gaugesOf(mfs, "probe_domain_check_info", map[string]string{"check": "spf"}); n != 1 {
		t.Errorf("spf has %d verdicts, want the first only", n)
	}
}

// TestCollector_DomainOutsideFixedSets: whatever the facts hold, label
// values stay in their sets: an unknown check, verdict or reason, an
// MTA-STS mode or id that RFC 8461 does not allow, an address family
// other than ip4 and ip6 and an address that is no IP are left out.
func TestCollector_DomainOutsideFixedSets(t *testing.T) {
	r := domainResult()
	f := r.Domain
	f.AddressLabels = true
	f.MTASTSMode, f.MTASTSPolicyID = "enforce\n", "id with spaces that is far too long to be one"
	f.Checks = []probes.DomainCheck{
		{Name: "bogus", Result: probes.CheckPass, Reason: probes.ReasonOK},
		{Name: probes.PhaseSPF, Result: "maybe", Reason: probes.ReasonOK},
		{Name: probes.PhaseDMARC, Result: probes.CheckFail, Reason: "made_up"},
	}
	f.MX[0].Addresses[0].Family = "ipx"
	f.MX[0].Addresses[1].Address = "mx1.example.com"
	mfs := gatherAll(t, storeRegistry(t, "example.com", "posture", r))
	checkLabelValues(t, mfs)
	for _, name := range []string{"probe_domain_check_info", "probe_domain_mta_sts_mode_info", "probe_domain_mta_sts_policy_id_info"} {
		if _, ok := find(mfs, name, nil); ok {
			t.Errorf("%s served for values outside its set", name)
		}
	}
	if n, _ := gaugesOf(mfs, "probe_domain_mx_up", map[string]string{"mx": "mx1.example.com"}); n != 1 {
		t.Errorf("mx1 has %d family series, want ip6 only", n)
	}
	if n, _ := gaugesOf(mfs, "probe_domain_mx_address_up", map[string]string{"mx": "mx1.example.com"}); n != 0 {
		t.Errorf("mx1 has %d address series, want none", n)
	}
}

// TestCollector_DomainNullMX: a null MX domain has no hosts: it says so,
// with zero MX, and nothing per host.
func TestCollector_DomainNullMX(t *testing.T) {
	r := domainResult()
	r.Domain.NullMX, r.Domain.MX = true, nil
	mfs := gatherAll(t, storeRegistry(t, "example.com", "posture", r))
	for _, want := range []struct {
		name  string
		value float64
	}{{"probe_domain_null_mx", 1}, {"probe_domain_mx_hosts", 0}, {"probe_domain_mx_hosts_accepting", 0}} {
		if v, ok := find(mfs, want.name, nil); !ok || v != want.value {
			t.Errorf("%s = %v, %v; want %v", want.name, v, ok, want.value)
		}
	}
	for _, name := range []string{"probe_domain_mx_up", "probe_domain_mx_ssl_earliest_cert_expiry"} {
		if _, ok := find(mfs, name, nil); ok {
			t.Errorf("%s served without MX hosts", name)
		}
	}
}

// TestProbeHandler_DomainSameMapping: /probe serves a domain run with the
// mapping /metrics uses, without target and module.
func TestProbeHandler_DomainSameMapping(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(resultCollector{res: domainFailingResult()})
	probeMFs := gatherAll(t, reg)
	storeMFs := gatherAll(t, storeRegistry(t, "example.com", "posture", domainFailingResult()))
	for _, name := range perRunMetricNames {
		if !strings.HasPrefix(name, "probe_domain_") {
			continue
		}
		pn, ps := gaugesOf(probeMFs, name, nil)
		sn, ss := gaugesOf(storeMFs, name, map[string]string{"target": "example.com", "module": "posture"})
		if pn != sn || ps != ss {
			t.Errorf("%s: /probe has %d series summing to %v, /metrics %d summing to %v", name, pn, ps, sn, ss)
		}
	}
}

// gaugesOf is seriesOf for gauges: how many series of name match want,
// and their sum.
func gaugesOf(mfs []*dto.MetricFamily, name string, want map[string]string) (n int, sum float64) {
	for _, m := range matching(mfs, name, want) {
		n++
		sum += m.GetGauge().GetValue()
	}
	return n, sum
}
