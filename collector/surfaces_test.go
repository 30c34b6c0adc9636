package collector

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// surfacesSecret has the characters that escaping changes, so that a
// redaction that matches only the literal secret misses its %q and JSON
// forms.
const surfacesSecret = `pa"ss\wo'rd-Secr3t!xyz`

// Issue 7: whatever a hostile server echoes during or after AUTH, no
// fragment of the secret reaches an output the collector serves: the
// /probe metrics and debug page (its log lines at every level included),
// /history's list and detail, /config, and the warn-level log line of a
// failed probe. The probe's own tests prove the Result clean; this proves
// the collector adds no path around it.
func TestSecrets_NoFragmentOnAnyCollectorSurface(t *testing.T) {
	forms := probestest.SecretFragmentForms(surfacesSecret)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		for _, leak := range probestest.AuthLeaks() {
			t.Run(mech+"/"+leak.Name, func(t *testing.T) {
				srv := probestest.NewHostileAuthServer(t, mech, leak.Answer)
				dir := t.TempDir()
				secretFile := filepath.Join(dir, "password")
				if err := os.WriteFile(secretFile, []byte(surfacesSecret+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg := fmt.Sprintf(`modules:
  auth:
    timeout: 3s
    smtp:
      tls: none
      allow_insecure_auth: true
      ehlo: probe.example.test
      auth: {mechanism: %s, username: monitor@example.net, password_file: %q}
      mail_from: monitor@example.net
      rcpt_to: [sink@example.net]
targets:
  - {name: mx1, address: %s, module: auth, interval: 1h}
`, mech, secretFile, srv.Addr)
				f := htNewFixture(t, htWriteConfig(t, cfg), smtp.Probe)
				var warn bytes.Buffer
				h := &ProbeHandler{Config: f.sc, Scheduler: f.sched, Logger: log.NewLogfmtLogger(&warn)}

				surfaces := map[string]string{}
				for name, url := range map[string]string{"/probe metrics": "/probe?target=mx1", "/probe debug page": "/probe?target=mx1&debug=true"} {
					rec := htGet(h, url)
					if rec.Code != http.StatusOK {
						t.Fatalf("%s: HTTP %d: %s", url, rec.Code, rec.Body)
					}
					surfaces[name] = rec.Body.String()
				}
				surfaces["warn log"] = warn.String()
				surfaces["/history"] = htGet(HistoryHandler(f.history), "/history").Body.String()
				for _, e := range f.history.List() {
					surfaces[fmt.Sprintf("/history?id=%d", e.ID)] = htGet(HistoryHandler(f.history), fmt.Sprintf("/history?id=%d", e.ID)).Body.String()
				}
				surfaces["/config"] = htGet(ConfigHandler(f.sc), "/config").Body.String()

				if len(srv.Learnt()) == 0 {
					t.Fatal("the server never learnt the secret: the test proves nothing")
				}
				if !strings.Contains(surfaces["/probe debug page"], "C: AUTH") {
					t.Fatalf("the debug page shows no AUTH: the dialog did not get there:\n%s", surfaces["/probe debug page"])
				}
				for name, text := range surfaces {
					if what, around := probestest.FindSecretFragment(text, forms); what != "" {
						t.Errorf("%s holds the %s: ...%s...", name, what, around)
					}
				}
			})
		}
	}
}

// Issue 7: a probe cut short by the scrape's deadline or by shutdown still
// leaves the server with RSET and QUIT, as the server itself counts.
func TestProbe_QuitWhenScrapeDeadlineOrShutdownCutsIn(t *testing.T) {
	slowMail := probestest.QuitOptions{Delays: map[string]time.Duration{"RCPT": 3 * time.Second}}
	t.Run("scrape deadline", func(t *testing.T) {
		srv := probestest.NewQuitServer(t, slowMail)
		f := htNewFixture(t, htWriteConfig(t, htPlainConfig(srv.Addr)), smtp.Probe)
		h := &ProbeHandler{Config: f.sc, Scheduler: f.sched, TimeoutOffset: 100 * time.Millisecond, Logger: log.NewNopLogger()}
		rec := htGet(h, "/probe?target=mx1", "X-Prometheus-Scrape-Timeout-Seconds", "1")
		if !strings.Contains(rec.Body.String(), `probe_smtp_failure_info{phase="rcpt",reason="timeout"} 1`) {
			t.Errorf("want a timeout in rcpt:\n%s", rec.Body)
		}
		s := srv.WaitSessions(t, 1, 5*time.Second)[0]
		if !s.Quit || !s.Reset {
			t.Errorf("session %+v: want RSET and QUIT after the scrape's deadline", s)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		opts := slowMail
		reached := make(chan struct{})
		opts.Event = func(e string) {
			if e == "RCPT" {
				close(reached)
			}
		}
		srv := probestest.NewQuitServer(t, opts)
		f := htNewFixture(t, htWriteConfig(t, htPlainConfig(srv.Addr)), smtp.Probe)
		done := make(chan error, 1)
		go func() {
			_, _, err := f.sched.RunNow(t.Context(), "mx1", 0, nil)
			done <- err
		}()
		<-reached
		f.sched.Shutdown(0)
		if err := <-done; err != ErrShuttingDown {
			t.Errorf("RunNow during shutdown: %v, want %v", err, ErrShuttingDown)
		}
		s := srv.WaitSessions(t, 1, 5*time.Second)[0]
		if !s.Quit || !s.Reset {
			t.Errorf("session %+v: want RSET and QUIT after shutdown cancelled the probe", s)
		}
	})
}
