package delivery

import (
	"math"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
)

// Spam filters a verdict can come from, as a fact's value.
const (
	SpamSourceNone         = ""
	SpamSourceSpamAssassin = "spamassassin"
	SpamSourceRspamd       = "rspamd"
)

// SpamFacts is the spam verdict the receiving side's filter wrote into the
// message's header. They are facts for the output, never labels.
type SpamFacts struct {
	// Source is the filter that wrote the verdict (SpamSource*); "" when
	// the header carries none.
	Source string `json:"source,omitempty"`
	// Flagged: the filter judged the message spam.
	Flagged bool `json:"flagged"`
	// Scored: Score holds the filter's score. Threshold is the score the
	// filter compares against, 0 when it did not say: SpamAssassin's
	// required=, rspamd's reject threshold (the second number of
	// X-Spamd-Result).
	Scored    bool    `json:"scored"`
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold,omitempty"`
}

// ParseSpam reads the spam verdict headers of SpamAssassin and rspamd:
//
//   - SpamAssassin: "X-Spam-Status: Yes, score=7.3 required=5.0 tests=..."
//     (hits= in versions before 3.0), "X-Spam-Flag: YES", and
//     "X-Spam-Score" where a site's add_header writes one;
//   - rspamd (its milter_headers module, and the headers Exim and
//     Postfix integrations add): "X-Spamd-Result: default: False [-2.16 /
//     15.00]; SYMBOL(...)...", "X-Rspamd-Score", "X-Spam-Action" or
//     "X-Rspamd-Action" ("no action", "add header", "rewrite subject",
//     "reject", ...), "X-Spam: Yes", and "X-Spam-Score";
//
// Source is rspamd when any rspamd-only header is present (rspamd can
// write an X-Spam-Status of its own), else spamassassin when one of its
// headers is. Flagged is true when any of them says spam: an rspamd action
// that marks the message, True in X-Spamd-Result, Yes in X-Spam-Status,
// X-Spam-Flag or X-Spam. The topmost field of each name counts: filters
// replace their own headers, so lower ones came with the message.
func ParseSpam(h message.Header) SpamFacts {
	var f SpamFacts
	setScore := func(v string) {
		if s, ok := parseScore(v); ok && !f.Scored {
			f.Score, f.Scored = s, true
		}
	}
	if v := h.Get("X-Spamd-Result"); v != "" {
		f.Source = SpamSourceRspamd
		flag, score, threshold, ok := parseSpamdResult(v)
		f.Flagged = f.Flagged || flag
		if ok {
			f.Score, f.Threshold, f.Scored = score, threshold, true
		}
	}
	if v := h.Get("X-Rspamd-Score"); v != "" {
		f.Source = SpamSourceRspamd
		setScore(v)
	}
	for _, k := range []string{"X-Rspamd-Action", "X-Spam-Action"} {
		if v := h.Get(k); v != "" {
			if k == "X-Rspamd-Action" {
				f.Source = SpamSourceRspamd
			}
			f.Flagged = f.Flagged || rspamdActionFlags(v)
		}
	}
	if h.Has("X-Spam-Action") || h.Has("X-Rspamd-Server") || h.Has("X-Rspamd-Queue-Id") {
		f.Source = SpamSourceRspamd
	}
	if v := h.Get("X-Spam-Status"); v != "" {
		yes, score, threshold, scored := parseSpamStatus(v)
		f.Flagged = f.Flagged || yes
		if scored && !f.Scored {
			f.Score, f.Scored = score, true
		}
		if f.Threshold == 0 {
			f.Threshold = threshold
		}
		if f.Source == SpamSourceNone {
			f.Source = SpamSourceSpamAssassin
		}
	}
	if v := h.Get("X-Spam-Flag"); v != "" {
		f.Flagged = f.Flagged || isYes(v)
		if f.Source == SpamSourceNone {
			f.Source = SpamSourceSpamAssassin
		}
	}
	if v := h.Get("X-Spam"); v != "" {
		f.Flagged = f.Flagged || isYes(v)
		if f.Source == SpamSourceNone {
			f.Source = SpamSourceRspamd
		}
	}
	if v := h.Get("X-Spam-Score"); v != "" {
		setScore(v)
		if f.Source == SpamSourceNone && f.Scored {
			f.Source = SpamSourceSpamAssassin
		}
	}
	return f
}

func isYes(v string) bool {
	w, _, _ := strings.Cut(strings.TrimSpace(v), ",")
	w = strings.TrimSpace(w)
	return strings.EqualFold(w, "yes") || strings.EqualFold(w, "true")
}

// rspamdActionFlags says whether an rspamd action marks the message as
// spam. Greylisting and soft rejects defer it; "no action" passes it.
func rspamdActionFlags(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "add header", "add_header", "rewrite subject", "rewrite_subject", "reject":
		return true
	}
	return false
}

// parseSpamStatus reads "Yes, score=7.3 required=5.0 tests=...".
func parseSpamStatus(v string) (yes bool, score, threshold float64, scored bool) {
	yes = isYes(v)
	for _, w := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
		k, val, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "score", "hits":
			if s, ok := parseScore(val); ok && !scored {
				score, scored = s, true
			}
		case "required":
			if s, ok := parseScore(val); ok && threshold == 0 {
				threshold = s
			}
		}
	}
	return yes, score, threshold, scored
}

// parseSpamdResult reads "default: False [-2.16 / 15.00]; ...".
func parseSpamdResult(v string) (flag bool, score, threshold float64, ok bool) {
	head, _, _ := strings.Cut(v, ";")
	_, head, found := strings.Cut(head, ":")
	if !found {
		return false, 0, 0, false
	}
	word, rest, _ := strings.Cut(strings.TrimSpace(head), "[")
	flag = isYes(word)
	rest, _, _ = strings.Cut(rest, "]")
	s, t, _ := strings.Cut(rest, "/")
	score, ok = parseScore(s)
	if ok {
		threshold, _ = parseScore(t)
	}
	return flag, score, threshold, ok
}

// parseScore reads a score as filters write it ("7.3", "-0.1", "+2.0"),
// refusing what no filter writes: NaN, infinities, absurd magnitudes.
func parseScore(v string) (float64, bool) {
	s, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(s) || math.Abs(s) > 1e6 {
		return 0, false
	}
	return s, true
}
