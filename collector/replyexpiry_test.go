package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// rcptRefused is a run refused at RCPT with enhanced code enh.
func rcptRefused(enh string) *probes.Result {
	res := refusedResult()
	res.Phases = []*probes.PhaseResult{phaseResult(probes.PhaseRcpt, 1, reply(550, enh, probes.ReasonPolicy, enh+" go away"))}
	return res
}

// encodedText is the target's series as the metric cache serves them.
func encodedText(rm *runMetrics) string {
	_, out := rm.encodedTargets(fastText)
	var b strings.Builder
	for _, e := range out {
		b.Write(e.buf)
	}
	return b.String()
}

// A reply label set a target has not produced for replyExpiry is dropped
// at its next run, from the metrics and from the cache's kept encoding;
// the sets it keeps producing stay.
func TestReplies_ExpireWhenNotSeen(t *testing.T) {
	rm := newRunMetrics()
	clock := testStart
	rm.now = func() time.Time { return clock }
	tg := &config.Target{Name: "mx", Module: "m", Interval: time.Minute}
	rm.observe(tg, successResult())
	rm.observe(tg, rcptRefused("5.7.1"))
	const refused = `enhanced_code="5.7.1"`
	if !strings.Contains(encodedText(rm), refused) {
		t.Fatalf("the refusal is not counted:\n%s", encodedText(rm))
	}

	clock = clock.Add(replyExpiry - time.Minute)
	rm.observe(tg, successResult())
	if !strings.Contains(encodedText(rm), refused) {
		t.Errorf("the refusal expired before %v", replyExpiry)
	}

	clock = clock.Add(2 * time.Minute)
	rm.observe(tg, successResult())
	text := encodedText(rm)
	if strings.Contains(text, refused) {
		t.Errorf("the refusal not seen for %v is still served:\n%s", replyExpiry+time.Minute, text)
	}
	if v, _ := find(gatherAll(t, registryOf(rm.collectors()...)), "probe_smtp_replies_total", map[string]string{"target": "mx", "enhanced_code": "5.7.1"}); v != 0 {
		t.Errorf("the refusal is still gathered: %v", v)
	}
	if !strings.Contains(text, `phase="banner"`) {
		t.Errorf("the banner's series, seen at every run, expired:\n%s", text)
	}
}

// An expired set frees its place under the cap: a target that rotated
// through maxReplyLabelSets sets long ago counts a new one as itself.
func TestReplies_ExpiredSetFreesItsSlot(t *testing.T) {
	rm := newRunMetrics()
	clock := testStart
	rm.now = func() time.Time { return clock }
	tg := &config.Target{Name: "mx", Module: "m", Interval: time.Minute}
	for i := range maxReplyLabelSets + 5 {
		rm.observe(tg, rcptRefused(fmt.Sprintf("5.7.%d", 100+i)))
	}
	if !strings.Contains(encodedText(rm), `phase="other"`) {
		t.Fatal("the flood did not reach the cap")
	}
	clock = clock.Add(replyExpiry + time.Minute)
	rm.observe(tg, rcptRefused("5.7.1"))
	text := encodedText(rm)
	if !strings.Contains(text, `enhanced_code="5.7.1"`) {
		t.Errorf("a new set after the old ones expired is not counted as itself:\n%s", text)
	}
	if strings.Contains(text, `phase="other"`) || strings.Contains(text, `enhanced_code="5.7.100"`) {
		t.Errorf("sets not seen for %v are still served:\n%s", replyExpiry, text)
	}
	// The overflow counter is not a reply set: it stays.
	if !strings.Contains(text, "smtp_exporter_reply_labels_overflow_total") {
		t.Errorf("the overflow counter went:\n%s", text)
	}
}
