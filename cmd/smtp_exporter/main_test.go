package main

import (
	"strings"
	"testing"
)

// TestRun_Help runs every way of asking for help or the version through the
// real entry point: each must exit 0, print to stdout only, and show what
// the user of that command needs.
func TestRun_Help(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		// serve is the default command: its flags are what a user of
		// `smtp_exporter --config.file=...` sets, so top-level help shows
		// them beside the commands.
		{[]string{"--help"}, []string{"--config.file", "--web.listen-address", "config.check", "--probe.concurrency", "probe", "serve"}},
		{[]string{"-h"}, []string{"--web.listen-address"}},
		{[]string{"help"}, []string{"--web.listen-address", "probe"}},
		{[]string{"serve", "--help"}, []string{"--web.listen-address", "config.check"}},
		{[]string{"help", "serve"}, []string{"--web.listen-address"}},
		// probe's target is required for a probe, not for its help.
		{[]string{"probe", "--help"}, []string{"<target>", "--module", "--rcpt-to"}},
		{[]string{"probe", "-h"}, []string{"<target>"}},
		{[]string{"help", "probe"}, []string{"<target>", "--module"}},
		{[]string{"--version"}, []string{"smtp_exporter, version"}},
		{[]string{"probe", "--version"}, []string{"smtp_exporter, version"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runMain(t, tt.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout does not show %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestRun_HelpProbeHidesServerFlags keeps probe's help about probing: the
// server's flags are serve's, and --web.listen-address means nothing to a
// one-shot probe.
func TestRun_HelpProbeHidesServerFlags(t *testing.T) {
	_, stdout, _ := runMain(t, "probe", "--help")
	if strings.Contains(stdout, "--web.listen-address") {
		t.Errorf("probe --help shows the server's flags:\n%s", stdout)
	}
}

// TestRun_UsageErrors: a mistake on the command line still exits 2 with
// the reason on stderr, however help is handled.
func TestRun_UsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"probe"},
		{"--no-such-flag"},
		{"probe", "--tls=bogus", "127.0.0.1:25"},
	} {
		code, _, stderr := runMain(t, args...)
		if code != 2 || !strings.HasPrefix(stderr, appName+": ") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and the error", args, code, stderr)
		}
	}
}
