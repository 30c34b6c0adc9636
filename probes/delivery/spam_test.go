package delivery

import (
	"math"
	"strings"
	"testing"
)

// TestParseSpam reads spam verdict headers as the filters write them, each
// naming its source; hosts anonymised.
func TestParseSpam(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         SpamFacts
	}{
		{
			// SpamAssassin 3.4 behind Postfix (a mail.kladler.at message
			// from the Port25 verifier, 2017): folded X-Spam-Status.
			"spamassassin ham", `
X-Spam-Checker-Version: SpamAssassin 3.4.0 (2014-02-07) on mail.example.at
X-Spam-Status: No, score=0.0 required=5.0 tests=DKIM_SIGNED,DKIM_VALID,
	SPF_HELO_PASS,URIBL_BLOCKED autolearn=ham autolearn_force=no`,
			SpamFacts{Source: SpamSourceSpamAssassin, Scored: true, Score: 0, Threshold: 5},
		},
		{
			// SpamAssassin on GTUBE (its default add_header lines: Flag,
			// Level, Status; GTUBE scores 1000).
			"spamassassin gtube", `
X-Spam-Flag: YES
X-Spam-Level: **************************************************
X-Spam-Status: Yes, score=1000.0 required=5.0 tests=GTUBE,NO_RECEIVED,
	NO_RELAYS autolearn=no autolearn_force=no version=3.4.6`,
			SpamFacts{Source: SpamSourceSpamAssassin, Flagged: true, Scored: true, Score: 1000, Threshold: 5},
		},
		{
			// SpamAssassin 2.x wrote hits= for the score.
			"spamassassin 2 hits", `
X-Spam-Status: Yes, hits=7.3 required=5.0 tests=BAYES_99,HTML_MESSAGE`,
			SpamFacts{Source: SpamSourceSpamAssassin, Flagged: true, Scored: true, Score: 7.3, Threshold: 5},
		},
		{
			// A site's add_header all Score _SCORE_ with nothing else.
			"score only", `
X-Spam-Score: -0.1`,
			SpamFacts{Source: SpamSourceSpamAssassin, Scored: true, Score: -0.1},
		},
		{
			// rspamd's milter headers (mail.lfdr.de, 2026): "False" and no
			// action.
			"rspamd ham", `
X-Rspamd-Queue-Id: A6DC22480B9
X-Rspamd-Server: lfdr
X-Spamd-Result: default: False [-2.16 / 15.00];
	ARC_ALLOW(-1.00)[subspace.example.org:s=arc-20240116:i=2];
	DMARC_POLICY_ALLOW(-0.50)[example.com,reject];
	R_SPF_ALLOW(-0.20)[+ip6:2001:db8::/64:c];
	R_DKIM_ALLOW(-0.20)[example.com:s=google];
	MIME_GOOD(-0.10)[text/plain]
X-Rspamd-Action: no action`,
			SpamFacts{Source: SpamSourceRspamd, Scored: true, Score: -2.16, Threshold: 15},
		},
		{
			// rspamd behind Postfix at SUSE (2024): X-Spam-Score and
			// X-Spam-Level beside X-Spamd-Result, a 50.00 reject score.
			"rspamd suse", `
X-Spam-Level: ***
X-Spam-Score: 3.13
X-Spamd-Result: default: False [3.13 / 50.00];
	 ARC_NA(0.00)[];
	 R_MISSING_CHARSET(2.50)[];
	 BROKEN_CONTENT_TYPE(1.50)[]`,
			SpamFacts{Source: SpamSourceRspamd, Scored: true, Score: 3.13, Threshold: 50},
		},
		{
			// rspamd marking a message (milter_headers' x-spam and
			// x-rspamd-action routines).
			"rspamd add header", `
X-Spam: Yes
X-Rspamd-Action: add header
X-Rspamd-Score: 8.42
X-Spamd-Result: default: False [8.42 / 15.00];
	GTUBE(0.00)[]`,
			SpamFacts{Source: SpamSourceRspamd, Flagged: true, Scored: true, Score: 8.42, Threshold: 15},
		},
		{
			// rspamd's X-Spam-Status emulation, told from SpamAssassin's
			// by the rspamd headers beside it.
			"rspamd x-spam-status", `
X-Spam-Status: Yes, score=16.10
X-Rspamd-Server: mx1
X-Spam-Action: reject`,
			SpamFacts{Source: SpamSourceRspamd, Flagged: true, Scored: true, Score: 16.1},
		},
		{
			// The topmost field wins: the filter adds its own above what
			// came with the message.
			"topmost wins", `
X-Spam-Status: No, score=1.2 required=5.0
X-Spam-Status: Yes, score=99.0 required=5.0`,
			SpamFacts{Source: SpamSourceSpamAssassin, Scored: true, Score: 1.2, Threshold: 5},
		},
		{"none", `
Subject: hello`, SpamFacts{}},
		{
			"garbage", `
X-Spam-Status: Maybe, score=NaN required=Inf
X-Spamd-Result: default
X-Rspamd-Score: 1e400`,
			SpamFacts{Source: SpamSourceRspamd},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(strings.NewReader(string(header(t, tc.header))))
			if err != nil {
				t.Fatal(err)
			}
			if got := ParseSpam(h); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseSpam(f *testing.F) {
	f.Add("X-Spamd-Result: default: True [1 / 2]\r\nX-Spam-Status: Yes, score=3 required=4\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		h, _ := ReadHeader(strings.NewReader(raw))
		got := ParseSpam(h)
		switch got.Source {
		case SpamSourceNone, SpamSourceSpamAssassin, SpamSourceRspamd:
		default:
			t.Errorf("source %q outside the fixed set", got.Source)
		}
		if math.IsNaN(got.Score) || math.IsNaN(got.Threshold) {
			t.Errorf("NaN in %+v", got)
		}
	})
}
