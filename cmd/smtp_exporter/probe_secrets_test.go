package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// The one-shot probe's own output (the text with its verdict, the failing
// reply once and the advice; and --output=json) shows what a server said.
// A hostile server that echoes the credential in any shape must leave no
// fragment of it there, nor in the log on stderr.
func TestProbe_HostileAuthLeavesNoSecretInOutput(t *testing.T) {
	const secret = `s3cr3t-"pass\word`
	forms := probestest.SecretFragmentForms(secret)
	dir := t.TempDir()
	writeFile(t, dir, "secret", secret+"\n")
	for _, mech := range probestest.HostileAuthMechanisms {
		for _, leak := range probestest.AuthLeaks() {
			t.Run(mech+"/"+leak.Name, func(t *testing.T) {
				srv := probestest.NewHostileAuthServer(t, mech, leak.Answer)
				field := "password_file"
				if mech == "XOAUTH2" || mech == "OAUTHBEARER" {
					field = "token_file"
				}
				cfg := writeFile(t, dir, strings.NewReplacer("/", "_").Replace(t.Name())+".yml", fmt.Sprintf(`
modules:
  hostile:
    timeout: 2s
    smtp:
      tls: none
      ehlo: probe.test
      allow_insecure_auth: true
      mail_from: monitor@example.net
      rcpt_to: [sink@example.net]
      auth: {mechanism: %s, username: monitor@example.net, %s: secret}
`, mech, field))
				for _, out := range []string{"text", "json"} {
					_, stdout, stderr := runMain(t, "--config.file="+cfg, "--log.level=debug", "probe", "--module=hostile", "--output="+out, srv.Addr)
					if !strings.Contains(stdout, "AUTH "+mech) {
						t.Fatalf("the probe never authenticated, so nothing was tested:\n%s", stdout)
					}
					for name, text := range map[string]string{out + " output": stdout, "log": stderr} {
						if what, around := probestest.FindSecretFragment(text, forms); what != "" {
							t.Errorf("%s holds the %s: ...%s...", name, what, around)
						}
					}
				}
			})
		}
	}
}
