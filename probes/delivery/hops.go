package delivery

import (
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// HopFacts is what a message's Received: chain (RFC 5321 §4.4) says of its
// way: every MTA it passed prepends one field ending in "; date". The
// gaps between those dates tell the sender's queue from the receiver's
// filters.
type HopFacts struct {
	// Hops counts the Received: fields; Dated, those whose date parsed.
	Hops  int `json:"hops"`
	Dated int `json:"dated"`
	// Total runs from the oldest dated field to the newest, or to the
	// arrival time given. Largest is the longest gap between two
	// consecutive dated fields, and LargestHop its position, counted from
	// the oldest field (1 is the gap between the oldest and the next), 0
	// when there is no gap to measure.
	Total      time.Duration `json:"total"`
	Largest    time.Duration `json:"largest"`
	LargestHop int           `json:"largest_hop,omitempty"`
}

// maxHops bounds the fields read: RFC 5321 §6.3 has MTAs give up on a
// message after about 100 hops, as a loop.
const maxHops = 100

// ParseHops reads the Received: chain of h. A field whose date is missing
// or does not parse is counted but skipped in the timing. Clocks of
// different hosts disagree: a gap that runs backwards counts as 0, and so
// does a negative total, rather than letting one skewed clock make a
// delay look shorter than none. arrival, when not zero, is when the
// message was seen in the mailbox (say, its IMAP INTERNALDATE), and ends
// Total instead of the newest field; it is no hop, so Largest ignores it.
func ParseHops(h message.Header, arrival time.Time) HopFacts {
	var f HopFacts
	var dates []time.Time // newest first, as the fields stand
	for fs := h.FieldsByKey("Received"); fs.Next() && f.Hops < maxHops; {
		f.Hops++
		if t, ok := receivedDate(fs.Value()); ok {
			dates = append(dates, t)
		}
	}
	f.Dated = len(dates)
	if len(dates) == 0 {
		return f
	}
	oldest, newest := dates[len(dates)-1], dates[0]
	for i := len(dates) - 1; i > 0; i-- {
		if gap := dates[i-1].Sub(dates[i]); gap > f.Largest {
			f.Largest, f.LargestHop = gap, len(dates)-i
		}
	}
	if !arrival.IsZero() {
		newest = arrival
	}
	f.Total = max(newest.Sub(oldest), 0)
	return f
}

// receivedDate parses the date after the last ";" of a Received: value.
// Real ones come with comments ("(PDT)", "(UTC)") and obsolete zones
// ("GMT", "-0000"), which net/mail's RFC 5322 parser takes.
func receivedDate(v string) (time.Time, bool) {
	i := strings.LastIndexByte(v, ';')
	if i < 0 {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(strings.TrimSpace(v[i+1:]))
	return t, err == nil
}
