package smtp

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// sendMessage runs a sending probe of mc against a Dialog server and
// returns the result, the message as delivered (dot-stuffing undone) and
// every line the server read.
func sendMessage(t *testing.T, mc probes.MessageConfig) (*probes.Result, string, []string) {
	t.Helper()
	delivered := make(chan string, 1)
	srv := probestest.NewScriptServer(t, probestest.Dialog{Deliver: func(msg string) { delivered <- msg }}.Serve)
	m := dialogModule()
	m.SMTP.Send = true
	m.SMTP.Message = mc
	m.SetDefaults()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := Probe(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, r)
	select {
	case msg := <-delivered:
		return r, msg, srv.Received()
	default:
		t.Fatal("the server got no message")
		return nil, "", nil
	}
}

// TestRun_CustomMessage: a module's headers and body reach the server as
// configured: overrides in the prober's header's place, the other headers
// sorted, the token header and Message-ID kept, the body with CRLF line
// ends, its dot lines stuffed on the wire and intact on arrival, the
// "Probe:" line last, and SIZE= the size of what arrived.
func TestRun_CustomMessage(t *testing.T) {
	r, msg, received := sendMessage(t, probes.MessageConfig{
		Headers: map[string]string{
			"X-Mailer": "report generator", "from": "Monitor <a@example.test>", "Subject": "Weekly report",
			"List-Id": "<reports.example.test>", "Content-Type": "text/plain; charset=us-ascii; format=flowed",
		},
		Body: "Hello,\n.hidden\n..two dots\n.\n\nlast line without newline",
	})
	token := r.SMTP.ProbeToken
	if token == "" || r.SMTP.MessageID == "" {
		t.Fatalf("token %q, Message-ID %q, want both", token, r.SMTP.MessageID)
	}
	head, _, _ := strings.Cut(msg, "\r\n")
	date, ok := strings.CutPrefix(head, "Date: ")
	if !ok {
		t.Fatalf("message starts with %q, want Date", head)
	}
	want := "Date: " + date + "\r\n" +
		"From: Monitor <a@example.test>\r\n" +
		"To: <b@example.test>\r\n" +
		"Message-ID: " + r.SMTP.MessageID + "\r\n" +
		"Subject: Weekly report\r\n" +
		"Auto-Submitted: auto-generated\r\n" +
		"X-SMTP-Exporter-Probe: " + token + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii; format=flowed\r\n" +
		"List-Id: <reports.example.test>\r\n" +
		"X-Mailer: report generator\r\n" +
		"\r\n" +
		"Hello,\r\n.hidden\r\n..two dots\r\n.\r\n\r\nlast line without newline\r\n" +
		"Probe: " + token + "\r\n"
	if msg != want {
		t.Errorf("message arrived as\n%q\nwant\n%q", msg, want)
	}
	data := received[slices.Index(received, "DATA")+1:]
	data = data[:slices.Index(data, ".")]
	i := slices.Index(data, "..hidden")
	if i < 0 || !slices.Equal(data[i:i+3], []string{"..hidden", "...two dots", ".."}) {
		t.Errorf("body lines starting with a dot were not stuffed on the wire: %q", data)
	}
	mail := received[slices.IndexFunc(received, func(l string) bool { return strings.HasPrefix(l, "MAIL ") })]
	if _, size, _ := strings.Cut(mail, " SIZE="); size != strconv.Itoa(len(msg)) {
		t.Errorf("MAIL declared SIZE=%s, %d bytes arrived", size, len(msg))
	}
}

// TestRun_CustomBodyFile: a body_file's content, read at load, is the body.
func TestRun_CustomBodyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/gtube.txt", []byte("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, msg, _ := sendMessage(t, probes.MessageConfig{BodyFile: dir + "/gtube.txt"})
	_, body, _ := strings.Cut(msg, "\r\n\r\n")
	if want := "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\nProbe: " + r.SMTP.ProbeToken + "\r\n"; body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	if !strings.Contains(msg, "\r\nSubject: smtp_exporter probe "+r.SMTP.ProbeToken+" of ") {
		t.Errorf("the generated Subject is gone with a custom body only:\n%s", msg)
	}
}
