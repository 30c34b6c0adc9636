package probes

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Direction tags a transcript line.
type Direction string

// Directions: what the probe sent, what the server sent, and the probe's own
// notes (TLS handshakes, errors) that explain the gaps between them.
const (
	DirSend Direction = "C"
	DirRecv Direction = "S"
	DirInfo Direction = "*"
)

// Redacted replaces credentials in the transcript. The transcript is shown
// on /probe?debug=true, printed by the probe command and logged at debug, so
// it must never hold a password, token or their base64 form.
const Redacted = "<redacted>"

// TranscriptLine is one line of the dialog, with its offset from the start
// of the probe on the monotonic clock.
type TranscriptLine struct {
	Offset time.Duration
	Dir    Direction
	Text   string
}

// MarshalJSON writes the offset in seconds, like every duration in the
// result's JSON.
func (l TranscriptLine) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Offset float64   `json:"offset_seconds"`
		Dir    Direction `json:"dir"`
		Text   string    `json:"text"`
	}{l.Offset.Seconds(), l.Dir, l.Text})
}

// String renders the line as the probe command prints it.
func (l TranscriptLine) String() string {
	return formatOffset(l.Offset) + " " + string(l.Dir) + ": " + l.Text
}

// WriteTranscript writes lines one per line, each after indent, so that
// the probe command, the debug page and /history show a dialog alike. It
// returns the first write error.
func WriteTranscript(w io.Writer, indent string, lines []TranscriptLine) error {
	for _, l := range lines {
		if _, err := io.WriteString(w, indent+l.String()+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func formatOffset(d time.Duration) string {
	return fmt.Sprintf("%9.1fms", d.Seconds()*1000)
}
