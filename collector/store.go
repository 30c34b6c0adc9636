package collector

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
	"unique"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Store keeps the last scheduled result of every target, for the per-run
// gauges on /metrics.
type Store struct {
	mu      sync.RWMutex
	entries map[string]StoreEntry
	// encMu guards the encodings kept in the entries' cachedTargets.
	encMu sync.Mutex
}

// StoreEntry is a target's last result.
type StoreEntry struct {
	Target *config.Target
	Result *probes.Result
	// cached is what Collector keeps of Result: it goes with the entry, so
	// that a replaced result and its encodings are garbage at once rather
	// than at the next scrape.
	cached *cachedTarget
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{entries: map[string]StoreEntry{}} }

// Set records a target's latest result, as a compact copy (compactResult):
// the caller's result is left whole.
func (s *Store) Set(e StoreEntry) { s.setCompact(e, compactResult(e.Result)) }

// setCompact records e with c, a compactResult of e.Result, which the
// scheduler shares with the History: neither changes it. The store keeps
// no transcript, which /metrics never shows (/history keeps its own).
func (s *Store) setCompact(e StoreEntry, c *probes.Result) {
	kept := *c
	kept.Transcript = nil
	e.Result = &kept
	e.cached = &cachedTarget{result: e.Result, name: e.Target.Name, module: e.Target.Module}
	s.mu.Lock()
	s.entries[e.Target.Name] = e
	s.mu.Unlock()
}

// Delete forgets a target.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	delete(s.entries, name)
	s.mu.Unlock()
}

// Snapshot returns every entry, ordered by target name.
func (s *Store) Snapshot() []StoreEntry {
	s.mu.RLock()
	out := make([]StoreEntry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b StoreEntry) int { return strings.Compare(a.Target.Name, b.Target.Name) })
	return out
}

// What a kept result may hold: every kept text (a reply line, an extension,
// a transcript line, an error) is cut at maxKeptText bytes; a kept reply's
// lines and the extensions stop at maxKeptReply bytes in all, and the
// transcript at maxKeptTranscript, its head and its tail kept. A healthy
// dialog stays far below (about 3 KB of transcript); a hostile server that
// sends 99 EHLO lines of 4 KB no longer keeps 0.9 MB alive per target.
const (
	maxKeptText       = 512
	maxKeptReply      = 4 << 10
	maxKeptTranscript = 32 << 10
)

// compactResult returns a copy of r with what /metrics, /history and its
// JSON need: per phase only the reply that decided it, and every text cut
// to the limits above. The texts are copied, so that none pins the larger
// buffer it was cut from. r's texts were redacted by the probe, so cutting
// them cannot reveal a secret. r itself is not changed: the counters need
// every reply.
func compactResult(r *probes.Result) *probes.Result {
	c := *r
	c.ReplyText = keptText(r.ReplyText)
	c.Err = keptError(r.Err)
	// One allocation each for the phases, their replies and the reply
	// lines, rather than one per phase, reply and line: the record step
	// runs for every scheduled result.
	c.Phases = make([]*probes.PhaseResult, len(r.Phases))
	phases := make([]probes.PhaseResult, len(r.Phases))
	var replies []probes.Reply
	var lines []string
	if n, ls := decidingReplies(r.Phases); n > 0 {
		replies = make([]probes.Reply, 0, n)
		// Each reply's lines, and perhaps the note of those not kept.
		lines = make([]string, 0, ls+n)
	}
	for i, pr := range r.Phases {
		cp := &phases[i]
		*cp = probes.PhaseResult{Phase: pr.Phase, Duration: pr.Duration, Reason: pr.Reason, Err: keptError(pr.Err)}
		if rep := pr.DecidingReply(); rep != nil {
			replies = append(replies, keptReply(*rep, &lines))
			cp.Replies = replies[len(replies)-1 : len(replies) : len(replies)]
		}
		c.Phases[i] = cp
	}
	if r.SMTP != nil {
		c.SMTP = compactSMTPFacts(r.SMTP)
	}
	if r.TLS != nil {
		c.TLS = keptTLS(r.TLS)
	}
	c.Transcript = keptTranscript(r.Transcript)
	return &c
}

// keptTLS is the TLS facts as kept. Their names are interned as all kept
// text is: a fleet's targets often present the same certificate (a
// wildcard, a provider's), every run presents it again, and its subject,
// issuer, serial, fingerprint and SANs held a third of the heap's objects
// at 10,000 targets, each marked by every garbage collection.
func keptTLS(in *probes.TLSInfo) *probes.TLSInfo {
	t := *in
	// A verification error may hold the parsed certificate.
	t.VerifyError = keptError(in.VerifyError)
	t.Peer = nil
	t.Version, t.Cipher, t.ServerName = keptText(in.Version), keptText(in.Cipher), keptText(in.ServerName)
	if in.Certificates == nil {
		return &t
	}
	n := 0
	for _, ci := range in.Certificates {
		n += len(ci.DNSNames) + len(ci.IPAddresses)
	}
	// One array for every certificate, one for all their names.
	t.Certificates = make([]probes.CertInfo, len(in.Certificates))
	names := make([]string, 0, n)
	kept := func(from []string) []string {
		if from == nil {
			return nil
		}
		start := len(names)
		for _, s := range from {
			names = append(names, keptText(s))
		}
		return names[start:len(names):len(names)]
	}
	for i, ci := range in.Certificates {
		ci.Subject, ci.Issuer = keptText(ci.Subject), keptText(ci.Issuer)
		ci.Serial, ci.SHA256 = keptText(ci.Serial), keptText(ci.SHA256)
		ci.DNSNames, ci.IPAddresses = kept(ci.DNSNames), kept(ci.IPAddresses)
		t.Certificates[i] = ci
	}
	return &t
}

// keptText is a copy of s cut at maxKeptText bytes, on a character
// boundary, with the original size noted.
func keptText(s string) string {
	if len(s) <= maxKeptText {
		// Interned, not cloned: most of what a result keeps (reply lines,
		// extensions, cipher names, a shared certificate's fingerprint)
		// is the same text for many targets and every run, and at 10,000
		// targets the kept copies' strings were a fifth of the heap's
		// objects, each marked by every garbage collection. unique holds
		// its entries weakly, so text no result keeps any more goes.
		return unique.Make(s).Value()
	}
	cut := maxKeptText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}

func keptError(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(keptText(err.Error()))
}

// decidingReplies counts the phases' deciding replies and their lines.
func decidingReplies(phases []*probes.PhaseResult) (replies, lines int) {
	for _, pr := range phases {
		if rep := pr.DecidingReply(); rep != nil {
			replies++
			lines += len(rep.Lines)
		}
	}
	return replies, lines
}

// keptReply is a kept copy of rep whose lines are appended to *lines (the
// backing array every reply of a result shares).
func keptReply(rep probes.Reply, lines *[]string) probes.Reply {
	c := probes.Reply{Code: rep.Code, EnhancedCode: keptText(rep.EnhancedCode), Reason: rep.Reason}
	start := len(*lines)
	size := 0
	for i, l := range rep.Lines {
		k := keptText(l)
		if size += len(k); size > maxKeptReply {
			*lines = append(*lines, fmt.Sprintf("…(%d more lines not kept)", len(rep.Lines)-i))
			break
		}
		*lines = append(*lines, k)
	}
	if end := len(*lines); end > start {
		c.Lines = (*lines)[start:end:end]
	}
	return c
}

// compactSMTPFacts is compactResult's part for the SMTP facts.
func compactSMTPFacts(f *probes.SMTPFacts) *probes.SMTPFacts {
	c := *f
	c.MessageID = keptText(f.MessageID)
	c.QueueID = keptText(f.QueueID)
	c.Extensions = keptExtensions(f.Extensions)
	return &c
}

// keptExtensions keeps the extensions in keyword order up to maxKeptReply
// bytes; real servers advertise a dozen short ones.
func keptExtensions(ext map[string]string) map[string]string {
	if ext == nil {
		return nil
	}
	c := make(map[string]string, len(ext))
	size := 0
	for _, k := range slices.Sorted(maps.Keys(ext)) {
		kk, kv := keptText(k), keptText(ext[k])
		if size += len(kk) + len(kv); size > maxKeptReply {
			break
		}
		c[kk] = kv
	}
	return c
}

// keptTranscript keeps the transcript's head and tail, half of
// maxKeptTranscript each, and notes what it dropped between them: the
// start shows how the dialog went, the end how it failed.
func keptTranscript(lines []probes.TranscriptLine) []probes.TranscriptLine {
	kept := make([]probes.TranscriptLine, len(lines))
	total := 0
	for i, l := range lines {
		text := l.Text
		if l.Dir == probes.DirInfo && len(text) <= maxKeptText {
			// The probe's own remarks name the connection's local port,
			// another at every run: interning text that never comes back
			// costs more than a copy (a new entry, a weak handle and its
			// cleanup when the result goes).
			text = strings.Clone(text)
		} else {
			text = keptText(text)
		}
		kept[i] = probes.TranscriptLine{Offset: l.Offset, Dir: l.Dir, Text: text}
		total += len(kept[i].Text)
	}
	if total <= maxKeptTranscript {
		return kept
	}
	head, size := 0, 0
	for head < len(kept) && size+len(kept[head].Text) <= maxKeptTranscript/2 {
		size += len(kept[head].Text)
		head++
	}
	tail, size := len(kept), 0
	for tail > head && size+len(kept[tail-1].Text) <= maxKeptTranscript/2 {
		size += len(kept[tail-1].Text)
		tail--
	}
	dropped := 0
	for _, l := range lines[head:tail] {
		dropped += len(l.Text)
	}
	note := probes.TranscriptLine{Offset: lines[head].Offset, Dir: probes.DirInfo,
		Text: fmt.Sprintf("…(%d lines, %d bytes, not kept)", tail-head, dropped)}
	return slices.Concat(kept[:head], []probes.TranscriptLine{note}, kept[tail:])
}
