package collector

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unique"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

func storeEntry(name, module string, res *probes.Result) StoreEntry {
	res.Target, res.Module = name, module
	return StoreEntry{Target: &config.Target{Name: name, Address: name + ":25", Module: module, Interval: time.Minute}, Result: res}
}

// Get returns a target's last entry; only tests need one target's.
func (s *Store) Get(name string) (StoreEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entries[name]
	return e, ok
}

func TestStore_SetGetDelete(t *testing.T) {
	s := NewStore()
	if _, ok := s.Get("mx1"); ok {
		t.Fatal("empty store has mx1")
	}
	first := storeEntry("mx1", "mx", dmarcResult())
	s.Set(first)
	e, ok := s.Get("mx1")
	if !ok || e.Target != first.Target || e.Result.Reason != probes.ReasonDMARC {
		t.Fatalf("Get(mx1) = %+v, %v; want the entry set", e, ok)
	}
	// The latest result replaces the previous one.
	second := storeEntry("mx1", "mx", refusedResult())
	s.Set(second)
	if e, _ := s.Get("mx1"); e.Target != second.Target || e.Result.Reason != probes.ReasonConnect {
		t.Fatal("Set did not replace the previous result")
	}
	if n := len(s.Snapshot()); n != 1 {
		t.Fatalf("Snapshot has %d entries for one target", n)
	}
	s.Delete("mx1")
	if _, ok := s.Get("mx1"); ok {
		t.Fatal("Get(mx1) after Delete")
	}
	s.Delete("never-there") // no-op
}

func TestStore_SnapshotSortedByName(t *testing.T) {
	s := NewStore()
	names := []string{"mx3", "a-submission", "mx10", "mx1", "lmtp"}
	for _, n := range names {
		s.Set(storeEntry(n, "mx", okResult()))
	}
	var got []string
	for _, e := range s.Snapshot() {
		got = append(got, e.Target.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("Snapshot order = %v, want %v", got, want)
	}
}

// TestCollector_SeriesFollowStore: a deleted target's gauges go with it,
// and each target is labelled with its own module.
func TestCollector_SeriesFollowStore(t *testing.T) {
	s := NewStore()
	s.Set(storeEntry("submission-ok", "submission", successResult()))
	s.Set(storeEntry("mx-dmarc", "mx", dmarcResult()))
	c := NewCollector(s)
	both := testutil.CollectAndCount(c)
	mfs := gatherAll(t, registryOf(c))
	if v, _ := find(mfs, "probe_success", map[string]string{"target": "submission-ok", "module": "submission"}); v != 1 {
		t.Errorf("probe_success{target=submission-ok} = %v, want 1", v)
	}
	if v, _ := find(mfs, "probe_success", map[string]string{"target": "mx-dmarc", "module": "mx"}); v != 0 {
		t.Errorf("probe_success{target=mx-dmarc} = %v, want 0", v)
	}
	s.Delete("submission-ok")
	one := testutil.CollectAndCount(c)
	if one >= both || one == 0 {
		t.Fatalf("series: %d with two targets, %d after deleting one", both, one)
	}
	if fams := familiesWith(gatherAll(t, registryOf(c)), map[string]string{"target": "submission-ok"}); len(fams) > 0 {
		t.Errorf("deleted target still in %v", fams)
	}
	s.Delete("mx-dmarc")
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("empty store yields %d series", n)
	}
}

func registryOf(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	return reg
}

// TestStore_ConcurrentSetAndCollect runs writers against scrapes; -race
// checks the locking.
func TestStore_ConcurrentSetAndCollect(t *testing.T) {
	s := NewStore()
	c := NewCollector(s)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("t%d-%d", w, i%10)
				s.Set(storeEntry(name, "mx", dmarcResult()))
				if i%7 == 0 {
					s.Delete(name)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			testutil.CollectAndCount(c)
		}
	})
	wg.Wait()
	if n := len(s.Snapshot()); n > 40 {
		t.Errorf("%d entries for 40 names", n)
	}
}

// bigEHLOServer answers EHLO with 99 lines of 4,000 bytes, as the audit's
// server did; the probe itself succeeds.
func bigEHLOServer(t *testing.T) *probestest.ScriptServer {
	t.Helper()
	lines := make([]string, 0, 100)
	lines = append(lines, "250-script.test")
	for i := range 99 {
		sep := "-"
		if i == 98 {
			sep = " "
		}
		lines = append(lines, fmt.Sprintf("250%sX-BIG%02d %s", sep, i, strings.Repeat(string(rune('a'+i%26)), 4000)))
	}
	return probestest.NewScriptServer(t, probestest.Dialog{EHLO: lines}.Serve)
}

func bigEHLOModule() *probes.Module {
	m := &probes.Module{Prober: probes.ProberSMTP, Timeout: 5 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.example.test", MailFrom: "monitor@example.test", RcptTo: []string{"sink@example.test"},
	}}
	m.SetDefaults()
	return m
}

// textBytes is the size of the text a result holds: what a stored result
// keeps alive beyond its fixed-size fields.
func textBytes(r *probes.Result) int {
	n := len(r.ReplyText) + len(r.SMTP.MessageID) + len(r.SMTP.QueueID)
	if r.Err != nil {
		n += len(r.Err.Error())
	}
	for _, pr := range r.Phases {
		for _, rep := range pr.Replies {
			for _, l := range rep.Lines {
				n += len(l)
			}
		}
		if pr.Err != nil {
			n += len(pr.Err.Error())
		}
	}
	for k, v := range r.SMTP.Extensions {
		n += len(k) + len(v)
	}
	for _, l := range r.Transcript {
		n += len(l.Text)
	}
	return n
}

// maxStoredBytes bounds the text of one stored result: the transcript's
// budget and the kept replies and extensions, with room to spare.
const maxStoredBytes = 64 << 10

// TestStoredResults_Compact: a server that sends 99 EHLO lines of 4 KB
// must not keep 0.9 MB alive per target in the Store and the History;
// they keep a trimmed copy that still yields the same per-run gauges (the
// store without the transcript), and leave the caller's result, which the
// counters need whole, untouched.
func TestStoredResults_Compact(t *testing.T) {
	srv := bigEHLOServer(t)
	m := bigEHLOModule()
	res := smtp.Probe(t.Context(), srv.Addr, *m, nopLogger())
	if !res.Success {
		t.Fatalf("probe failed: %v", res.Err)
	}
	raw := textBytes(res)
	if raw < 2*99*4000 {
		t.Fatalf("fixture: the result holds %d bytes of text, want the EHLO reply twice (reply and transcript)", raw)
	}
	rawLines, rawTranscript := len(res.Phase(probes.PhaseEHLO).Replies[0].Lines), len(res.Transcript)

	store, hist := NewStore(), NewHistory(10)
	tg := &config.Target{Name: "big", Module: "mx"}
	res.Target, res.Module = tg.Name, tg.Module
	store.Set(StoreEntry{Target: tg, Result: res})
	hist.Add("schedule", res)

	if got := textBytes(res); got != raw || len(res.Phase(probes.PhaseEHLO).Replies[0].Lines) != rawLines || len(res.Transcript) != rawTranscript {
		t.Fatalf("storing changed the caller's result: %d bytes of text, was %d", got, raw)
	}
	full := testutil.CollectAndCount(resultCollector{res: res})
	for name, kept := range map[string]*probes.Result{"store": store.Snapshot()[0].Result, "history": hist.List()[0].Result} {
		t.Logf("%s keeps %d bytes of text, the full result %d", name, textBytes(kept), raw)
		if n := textBytes(kept); n > maxStoredBytes {
			t.Errorf("%s keeps %d bytes of text for one result, want at most %d", name, n, maxStoredBytes)
		}
		if n := testutil.CollectAndCount(resultCollector{res: kept}); n != full {
			t.Errorf("%s: %d per-run series from the kept result, %d from the full one", name, n, full)
		}
		if rep := kept.Phase(probes.PhaseEHLO).DecidingReply(); rep == nil || rep.Code != 250 {
			t.Errorf("%s: EHLO deciding reply = %+v, want the 250", name, rep)
		}
		tr := kept.Transcript
		if name == "store" {
			// /metrics never shows it; /history keeps its own.
			if len(tr) != 0 {
				t.Errorf("store: keeps a transcript of %d lines", len(tr))
			}
			continue
		}
		if len(tr) == 0 || tr[len(tr)-1].Text != res.Transcript[len(res.Transcript)-1].Text {
			t.Errorf("%s: the transcript lost its end (the QUIT)", name)
		}
		var noted bool
		for _, l := range tr {
			noted = noted || strings.Contains(l.Text, "not kept")
		}
		if !noted {
			t.Errorf("%s: the transcript does not say which lines it dropped", name)
		}
	}
}

// TestStoredResults_HeapBound measures what 20 stored results of the
// 99×4 KB EHLO server keep alive, so that a kept substring cannot pin the
// whole line it came from.
func TestStoredResults_HeapBound(t *testing.T) {
	const n = 20
	srv := bigEHLOServer(t)
	m := bigEHLOModule()
	store := NewStore()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		res := smtp.Probe(t.Context(), srv.Addr, *m, nopLogger())
		store.Set(StoreEntry{Target: &config.Target{Name: fmt.Sprintf("big%d", i), Module: "mx"}, Result: res})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d stored results keep %d KB alive", n, grew>>10)
	if grew > n*2*maxStoredBytes {
		t.Errorf("%d stored results keep %d KB alive, want at most %d KB", n, grew>>10, n*2*maxStoredBytes>>10)
	}
	runtime.KeepAlive(store)
}

// TestScheduler_RecordCompactsOnce: a scheduled result is compacted once,
// and the store and the history share that copy; the store keeps no
// transcript, which /metrics never shows (/history does).
func TestScheduler_RecordCompactsOnce(t *testing.T) {
	store, hist := NewStore(), NewHistory(10)
	s, l, tg, res := recordingScheduler(store, hist)
	defer s.Shutdown(0)
	res.Transcript = []probes.TranscriptLine{{Dir: probes.DirRecv, Text: "220 mx.example.net ESMTP"}}
	s.record(l, tg, res, 0, false)

	stored, ok := store.Get(tg.Name)
	if !ok {
		t.Fatal("nothing stored")
	}
	kept := hist.List()[0].Result
	if stored.Result.Phases[0] != kept.Phases[0] || stored.Result.SMTP != kept.SMTP {
		t.Error("the store and the history hold two compact copies of one result")
	}
	if stored.Result.Phases[0] == res.Phases[0] {
		t.Error("the store holds the caller's result, not a compact copy")
	}
	if len(stored.Result.Transcript) != 0 {
		t.Errorf("the store keeps a transcript of %d lines", len(stored.Result.Transcript))
	}
	if len(kept.Transcript) != 1 {
		t.Errorf("the history keeps a transcript of %d lines, want the 1", len(kept.Transcript))
	}
}

// The TLS facts a result keeps say what the probe's said, and two
// targets presenting the same certificate share its names (interned)
// rather than each keeping a copy.
func TestStoredResults_TLSFactsInterned(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t, "mx.example.test", "127.0.0.1")
	facts := func() *probes.TLSInfo {
		// Each probe parses the certificate anew, as a real one does.
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return probes.TLSFacts(tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
			PeerCertificates: []*x509.Certificate{leaf, ca.Cert}, ServerName: "mx.example.test"}, ca.Pool(), "mx.example.test")
	}
	a, b := facts(), facts()
	ka, kb := compactResult(&probes.Result{TLS: a}).TLS, compactResult(&probes.Result{TLS: b}).TLS

	wantJSON, _ := json.Marshal(a)
	gotJSON, _ := json.Marshal(ka)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("kept TLS facts differ from the probe's:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if ka.Peer != nil {
		t.Error("kept TLS facts hold the parsed chain")
	}
	if len(ka.Certificates) != 2 || len(kb.Certificates) != 2 {
		t.Fatalf("kept %d and %d certificates, want 2 each", len(ka.Certificates), len(kb.Certificates))
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	for i := range ka.Certificates {
		x, y := ka.Certificates[i], kb.Certificates[i]
		if !same(x.Subject, y.Subject) || !same(x.Issuer, y.Issuer) || !same(x.SHA256, y.SHA256) || !same(x.Serial, y.Serial) {
			t.Errorf("certificate %d: two results keep separate copies of the same names", i)
		}
		if same(x.Subject, a.Certificates[i].Subject) {
			t.Errorf("certificate %d: the kept subject is the probe's own string, not a kept copy", i)
		}
	}
	if !same(ka.Certificates[0].DNSNames[0], kb.Certificates[0].DNSNames[0]) {
		t.Error("two results keep separate copies of the same SAN")
	}
}

func TestStoredResults_RemarksCopiedRepliesInterned(t *testing.T) {
	run := func(port int) *probes.Result {
		return &probes.Result{Transcript: []probes.TranscriptLine{
			{Dir: probes.DirInfo, Text: fmt.Sprintf("connected to 192.0.2.1:25 from 192.0.2.9:%d", port)},
			{Dir: probes.DirRecv, Text: strings.Clone("220 mx.example.test ESMTP")},
		}}
	}
	a, b := compactResult(run(40001)).Transcript, compactResult(run(40002)).Transcript
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a[1].Text, b[1].Text) {
		t.Error("two results keep separate copies of the same reply line")
	}
	// A remark naming the run's own port is never seen again: copied, not
	// interned (unique.Make would hand back the kept string itself).
	if same(a[0].Text, unique.Make(a[0].Text).Value()) {
		t.Error("the probe's remark was interned")
	}
	if a[0].Text != "connected to 192.0.2.1:25 from 192.0.2.9:40001" {
		t.Errorf("kept remark %q", a[0].Text)
	}
}
