package probestest

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Postfix is the private Postfix instance that scripts/postfix.sh starts
// on loopback; `make test-e2e` exports its SMTP_EXPORTER_POSTFIX_*
// variables (from DIR/env) to the tests.
type Postfix struct {
	Addr           string // SMTP with STARTTLS; AUTH only after TLS
	SMTPSAddr      string // implicit TLS
	SubmissionAddr string // TLS and AUTH required before MAIL
	ExpiredAddr    string // STARTTLS with an expired certificate
	CAFile         string // verifies every listener's certificate
	ServerName     string // the name in the certificates
	User           string // SASL user, also a valid sender
	PasswordFile   string
	Domain         string // the local test domain; sink@Domain is delivered
	Maildir        string // where messages to Domain land
}

// E2E reports whether SMTP_EXPORTER_E2E=1 asks for the real components:
// then a missing Postfix or Prometheus is a failure, never a skip.
func E2E() bool { return os.Getenv("SMTP_EXPORTER_E2E") == "1" }

// PostfixFromEnv returns the instance described by the environment, or nil
// when none is configured. It fails the test when E2E() is set and the
// instance is missing, and whenever it is only partly configured.
func PostfixFromEnv(t testing.TB) *Postfix {
	t.Helper()
	pf := &Postfix{}
	vars := map[string]*string{
		"ADDR": &pf.Addr, "SMTPS_ADDR": &pf.SMTPSAddr, "SUBMISSION_ADDR": &pf.SubmissionAddr,
		"EXPIRED_ADDR": &pf.ExpiredAddr, "CA_FILE": &pf.CAFile, "SERVER_NAME": &pf.ServerName,
		"USER": &pf.User, "PASSWORD_FILE": &pf.PasswordFile, "DOMAIN": &pf.Domain, "MAILDIR": &pf.Maildir,
	}
	var missing []string
	set := 0
	for k, dst := range vars {
		name := "SMTP_EXPORTER_POSTFIX_" + k
		if *dst = os.Getenv(name); *dst == "" {
			missing = append(missing, name)
		} else {
			set++
		}
	}
	switch {
	case len(missing) == 0:
		return pf
	case E2E() || set > 0:
		t.Fatalf("the real Postfix is not (fully) configured, missing %s: run `make test-e2e`, or `scripts/postfix.sh start DIR` and export DIR/env", strings.Join(missing, ", "))
	}
	return nil
}

// SendModuleYAML is a module, as an entry of a config file's modules: map,
// that authenticates with PLAIN over verified STARTTLS and sends a message
// to sink@Domain. timeout may be empty (the default); extra are further
// lines of its smtp: section, such as "min_send_interval: 1h".
func (pf *Postfix) SendModuleYAML(name, timeout string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n", name)
	if timeout != "" {
		fmt.Fprintf(&b, "    timeout: %s\n", timeout)
	}
	fmt.Fprintf(&b, `    smtp:
      tls: starttls
      ehlo: probe.example.test
      tls_config: {ca_file: %q, server_name: %q}
      auth: {mechanism: PLAIN, username: %q, password_file: %q}
      mail_from: %q
      rcpt_to: [%q]
      send: true
`, pf.CAFile, pf.ServerName, pf.User, pf.PasswordFile, pf.User, "sink@"+pf.Domain)
	for _, l := range extra {
		fmt.Fprintf(&b, "      %s\n", l)
	}
	return b.String()
}
