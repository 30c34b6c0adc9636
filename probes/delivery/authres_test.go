package delivery

import (
	"slices"
	"strings"
	"testing"
)

// header builds a message header from lines written as they appear in a
// message, "\n" between lines, as mail clients show them.
func header(t testing.TB, text string) []byte {
	t.Helper()
	return []byte(strings.ReplaceAll(strings.TrimLeft(text, "\n"), "\n", "\r\n") + "\r\n\r\n")
}

// Headers as the verifiers write them, each naming its source; addresses
// and hosts anonymised.
const (
	// Gmail (mx.google.com): the layout of a message received by Gmail as
	// archived on the linux-mm list (kvack.org): its A-R below its own
	// Received: and Received-SPF.
	gmailHeader = `
Delivered-To: probe@gmail.com
Received: by 2002:a05:6a10:1234:b0:5a1:2b3c:4d5e with SMTP id e20csp123456pxb;
        Wed, 12 Jun 2019 15:32:08 -0700 (PDT)
ARC-Authentication-Results: i=1; mx.google.com;
       dkim=pass header.i=@example.com header.s=corp-2018-07-02 header.b=lhk5qU4z;
       spf=pass (google.com: domain of probe@example.com designates 192.0.2.10 as permitted sender) smtp.mailfrom=probe@example.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com
Return-Path: <probe@example.com>
Received: from mail.example.com (mail.example.com. [192.0.2.10])
        by mx.google.com with ESMTPS id d71si833482jab.10.2019.06.12.15.32.08
        for <probe@gmail.com>
        (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128);
        Wed, 12 Jun 2019 15:32:08 -0700 (PDT)
Received-SPF: pass (google.com: domain of probe@example.com designates 192.0.2.10 as permitted sender) client-ip=192.0.2.10;
Authentication-Results: mx.google.com;
       dkim=pass header.i=@example.com header.s=corp-2018-07-02 header.b=lhk5qU4z;
       spf=pass (google.com: domain of probe@example.com designates 192.0.2.10 as permitted sender) smtp.mailfrom=probe@example.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com
Received: from pps.filterd (mail.example.com [127.0.0.1])
	by mail.example.com (8.16.0.27/8.16.0.27) with SMTP id x5CMTs85064050;
	Wed, 12 Jun 2019 22:31:48 GMT
From: Probe <probe@example.com>`

	// Gmail again, for a sender whose Google Workspace signs with its
	// gappssmtp.com domain only and whose SPF is ~all (linux-mm archive,
	// February 2019): the only passing signature is not the From domain's.
	gmailUnalignedHeader = `
Received: from mail-sor-f65.google.com (mail-sor-f65.google.com. [209.85.220.65])
        by mx.google.com with SMTPS id i11sor5965495wrq.49.2019.02.19.19.24.23
        for <probe@gmail.com>
        (Google Transport Security);
        Tue, 19 Feb 2019 19:24:23 -0800 (PST)
Received-SPF: softfail (google.com: domain of transitioning probe@example.com does not designate 209.85.220.65 as permitted sender) client-ip=209.85.220.65;
Authentication-Results: mx.google.com;
       dkim=pass header.i=@example-com.20150623.gappssmtp.com header.s=20150623 header.b=zwziYVWi;
       spf=softfail (google.com: domain of transitioning probe@example.com does not designate 209.85.220.65 as permitted sender) smtp.mailfrom=probe@example.com;
       dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=example.com
From: probe@example.com`

	// Microsoft 365 / Exchange Online: no authserv-id at all ("Anti-spam
	// message headers", learn.microsoft.com; the same form in
	// X-MS-Exchange-Authentication-Results of list archives).
	microsoftHeader = `
Received: from AM0PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6:208:1::12)
 by AM0PR01MB5678.eurprd01.prod.exchangelabs.com with Microsoft SMTP Server
 (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7159.19;
 Mon, 8 Jan 2024 10:15:03 +0000
Authentication-Results: spf=pass (sender IP is 192.0.2.10)
 smtp.mailfrom=example.com; dkim=pass (signature was verified)
 header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass
 reason=100
Received-SPF: Pass (protection.outlook.com: domain of example.com designates
 192.0.2.10 as permitted sender) receiver=protection.outlook.com;
 client-ip=192.0.2.10; helo=mail.example.com; pr=C
Received: from mail.example.com (192.0.2.10) by
 AM0PR01MB5678.mail.protection.outlook.com (10.167.242.1) with Microsoft SMTP
 Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7159.19 via
 Frontend Transport; Mon, 8 Jan 2024 10:15:02 +0000
From: <probe@example.com>`

	// Fastmail: the authserv-id names the MX that verified
	// (mx1..mx6.messagingengine.com, "phl-mx-07.messagingengine.com"),
	// with the key size in a comment.
	fastmailHeader = `
Received: from mx3.messagingengine.com (localhost [127.0.0.1])
	by mailmx.nyi.internal (Postfix) with ESMTP id 1A2B3C4D5E
	for <probe@fastmail.example>; Mon,  8 Jan 2024 05:15:02 -0500 (EST)
Authentication-Results: mx3.messagingengine.com;
    dkim=pass (2048-bit rsa key sha256) header.d=example.com
      header.i=@example.com header.b=xyzAbC12 header.a=rsa-sha256
      header.s=s1 x-bits=2048;
    dmarc=pass policy.published-domain-policy=reject
      policy.applied-disposition=none policy.evaluated-disposition=none
      (p=reject,d=none,d.eval=none) policy.policy-from=p
      header.from=example.com;
    iprev=pass smtp.remote-ip=192.0.2.10 (mail.example.com);
    spf=pass smtp.mailfrom=probe@example.com smtp.helo=mail.example.com
Received: from mail.example.com (mail.example.com [192.0.2.10])
	by mx3.messagingengine.com (Postfix) with ESMTPS
	for <probe@fastmail.example>; Mon,  8 Jan 2024 05:15:01 -0500 (EST)
From: <probe@example.com>`

	// Postfix with OpenDKIM, OpenDMARC and pypolicyd-spf, one header each
	// (lists.ozlabs.org, 2023; the OpenDMARC line as a "DMARC-Filter:
	// OpenDMARC Filter v1.3.2" host writes it). OpenDKIM's comment holds a
	// semicolon.
	openDKIMHeader = `
X-Original-To: probe@lists.example.org
Delivered-To: probe@lists.example.org
DMARC-Filter: OpenDMARC Filter v1.3.2 lists.example.org 4R93q8140pz3cc5
Authentication-Results: lists.example.org; dmarc=pass (p=reject dis=none) header.from=example.com
Authentication-Results: lists.example.org;
	dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=20221208 header.b=p9s9prTX;
	dkim-atps=neutral
Authentication-Results: lists.example.org; spf=pass (sender SPF authorized) smtp.mailfrom=example.com (client-ip=192.0.2.10; helo=mail.example.com; envelope-from=probe@example.com; receiver=lists.example.org)
Received: from mail.example.com (mail.example.com [192.0.2.10])
	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
	 key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)
	(No client certificate requested)
	by lists.example.org (Postfix) with ESMTPS id 4R93q8140pz3cc5
	for <probe@lists.example.org>; Tue, 25 Jul 2023 14:25:24 +1000 (AEST)
From: Probe <probe@example.com>`

	// rspamd (mail.lfdr.de, 2026): two DKIM signatures, a quoted
	// smtp.mailfrom, and arc=pass with a quoted comment.
	rspamdHeader = `
Received: from sea.lore.example.org (sea.lore.example.org [192.0.2.12])
	by mail.lfdr.example (Postfix) with ESMTPS id 879CF5E4287
	for <lists@lfdr.example>; Mon, 08 Jun 2026 22:44:54 +0200 (CEST)
Authentication-Results: mail.lfdr.example;
	dkim=pass header.d=example.com header.s=qcppdkim1 header.b=GTjz5P1w;
	dkim=pass header.d=oss.example.com header.s=google header.b=XDeEXy+K;
	spf=pass (mail.lfdr.example: domain of "list+bounces-33713-lists=lfdr.example@lists.example.org" designates 192.0.2.12 as permitted sender) smtp.mailfrom="list+bounces-33713-lists=lfdr.example@lists.example.org";
	dmarc=pass (policy=reject) header.from=example.com;
	arc=pass ("subspace.example.org:s=arc-20240116:i=1")
Received: from smtp.subspace.example.org (conduit.subspace.example.org [192.0.2.1])
	by sea.lore.example.org (Postfix) with ESMTP id 978603014B38
	for <lists@lfdr.example>; Mon,  8 Jun 2026 20:44:45 +0000 (UTC)
From: Someone <someone@oss.example.com>`

	// rspamd with nothing to say (smtp-out2.suse.de, 2024).
	rspamdNoneHeader = `
Authentication-Results: smtp-out2.example.de;
	none
Received: from mail.example.com by smtp-out2.example.de; Mon, 26 Feb 2024 12:12:32 +0200
From: <probe@example.com>`

	// RFC 8601 Appendix B.6: two ADMDs each wrote one; the lower one
	// (example.net's, a relay's view) is above its own Received: only.
	rfc8601B6Header = `
Authentication-Results: example.com;
          dkim=pass (good signature) header.d=mail-router.example.net;
          dkim=fail (bad signature) header.d=newyork.example.com
Received: from mail-router.example.net
              (mail-router.example.net [192.0.2.250])
          by chicago.example.com (8.11.6/8.11.6)
              for <recipient@chicago.example.com>
              with ESMTP id i7PK0sH7021929;
          Fri, Feb 15 2002 17:19:22 -0800
Authentication-Results: example.net;
          dkim=pass (good signature) header.d=newyork.example.com
Received: from smtp.newyork.example.com
              (smtp.newyork.example.com [192.0.2.220])
          by mail-router.example.net (8.11.6/8.11.6)
              with ESMTP id g1G0r1kA003489;
          Fri, Feb 15 2002 17:19:07 -0800
From: sender@newyork.example.com`

	// RFC 8601 Appendix B.4: SMTP AUTH and SPF, with a version.
	rfc8601B4Header = `
Authentication-Results: example.com 1;
          auth=pass (cram-md5) smtp.auth=sender@example.net;
          spf=pass smtp.mailfrom=example.net
Received: from dialup-1-2-3-4.example.net (8.11.6/8.11.6)
              (dialup-1-2-3-4.example.net [192.0.2.200])
          by mail-router.example.com (8.11.6/8.11.6)
              with ESMTPA id g1G0r1kA003489;
          Fri, Feb 15 2002 17:19:07 -0800
From: sender@example.net`
)

func TestParseAuthResults(t *testing.T) {
	for _, tc := range []struct {
		name, header, authservID string
		found                    bool
		spf, dkim, dmarc         AuthResult
		dkimDomain               string
		signatures               int
	}{
		{"gmail", gmailHeader, "mx.google.com", true, AuthPass, AuthPass, AuthPass, "example.com", 1},
		// Case does not matter in the authserv-id.
		{"gmail, id in capitals", gmailHeader, "MX.Google.COM", true, AuthPass, AuthPass, AuthPass, "example.com", 1},
		// The From domain did not sign: DKIM is none, whatever the
		// provider's own signature says.
		{"gmail, unaligned signature", gmailUnalignedHeader, "mx.google.com", true, AuthSoftFail, AuthNone, AuthFail, "", 1},
		// An id-less header is never taken for a named verifier's.
		{"microsoft 365 header, named id", microsoftHeader, "mx.example.net", false, AuthNone, AuthNone, AuthNone, "", 0},
		{"fastmail, its MX by a leading dot", fastmailHeader, ".messagingengine.com", true, AuthPass, AuthPass, AuthPass, "example.com", 1},
		// Without the dot the id must match exactly.
		{"fastmail, parent without dot", fastmailHeader, "messagingengine.com", false, AuthNone, AuthNone, AuthNone, "", 0},
		{"opendkim, opendmarc, policyd-spf", openDKIMHeader, "lists.example.org", true, AuthPass, AuthPass, AuthPass, "example.com", 1},
		// From someone@oss.example.com: both signatures align (a
		// subdomain and its parent); the first passing one is reported.
		{"rspamd, two signatures", rspamdHeader, "mail.lfdr.example", true, AuthPass, AuthPass, AuthPass, "example.com", 2},
		{"rspamd, none", rspamdNoneHeader, "smtp-out2.example.de", true, AuthNone, AuthNone, AuthNone, "", 0},
		// The From domain's own signature failed; the relay's passing one
		// does not count for it.
		{"rfc 8601 B.6, receiver", rfc8601B6Header, "example.com", true, AuthNone, AuthFail, AuthNone, "newyork.example.com", 2},
		// The relay's header is above the relay's own Received:, so it is
		// trusted when the relay's id is asked for.
		{"rfc 8601 B.6, relay", rfc8601B6Header, "example.net", true, AuthNone, AuthPass, AuthNone, "newyork.example.com", 1},
		{"rfc 8601 B.4", rfc8601B4Header, "example.com", true, AuthPass, AuthNone, AuthNone, "", 0},
		{"no header of that id", gmailHeader, "mx.example.net", false, AuthNone, AuthNone, AuthNone, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(strings.NewReader(string(header(t, tc.header))))
			if err != nil {
				t.Fatal(err)
			}
			got := ParseAuthResults(h, AuthTrust{ID: tc.authservID})
			if got.Found != tc.found || got.SPF != tc.spf || got.DKIM != tc.dkim || got.DMARC != tc.dmarc ||
				got.DKIMDomain != tc.dkimDomain || len(got.Signatures) != tc.signatures || got.Malformed {
				t.Errorf("got %+v,\nwant found %v spf %q dkim %q dmarc %q domain %q, %d signatures",
					got, tc.found, tc.spf, tc.dkim, tc.dmarc, tc.dkimDomain, tc.signatures)
			}
		})
	}
}

// TestParseAuthResultsTrust: which headers count is the module's explicit
// choice. An id-less header (Microsoft 365's) counts only with WithoutID,
// and then a named one does not; trusting nothing leaves every verdict
// unknown (empty), not none, so that a forgotten key reads as no data.
func TestParseAuthResultsTrust(t *testing.T) {
	for _, tc := range []struct {
		name, header     string
		trust            AuthTrust
		found            bool
		spf, dkim, dmarc AuthResult
	}{
		{"microsoft 365, without id", microsoftHeader, AuthTrust{WithoutID: true}, true, AuthPass, AuthPass, AuthPass},
		{"microsoft 365, nothing trusted", microsoftHeader, AuthTrust{}, false, "", "", ""},
		{"gmail, nothing trusted", gmailHeader, AuthTrust{}, false, "", "", ""},
		// A named header is not the id-less one asked for.
		{"gmail, without id", gmailHeader, AuthTrust{WithoutID: true}, false, AuthNone, AuthNone, AuthNone},
		// The topmost-above-Received rule holds for the id-less header
		// too: one below the receiver's Received: came with the message.
		{"id-less, forged below", `
Authentication-Results: spf=fail (sender IP is 192.0.2.66) smtp.mailfrom=example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com
Received: from mail.example.com (192.0.2.66) by AM0PR01MB5678.mail.protection.outlook.com; Mon, 8 Jan 2024 10:15:02 +0000
Authentication-Results: spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com
From: <probe@example.com>`, AuthTrust{WithoutID: true}, true, AuthFail, AuthFail, AuthFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := ReadHeader(strings.NewReader(string(header(t, tc.header))))
			got := ParseAuthResults(h, tc.trust)
			if got.Found != tc.found || got.SPF != tc.spf || got.DKIM != tc.dkim || got.DMARC != tc.dmarc {
				t.Errorf("got %+v, want found %v spf %q dkim %q dmarc %q", got, tc.found, tc.spf, tc.dkim, tc.dmarc)
			}
		})
	}
}

// TestParseAuthResultsForged: a header that claims the receiver's id but
// stands below the hop where the receiver took the message came with the
// message, and is ignored; so is one of another id above it. Where a
// forged one sits within the receiver's headers, the receiver's own
// verdict, above it, still wins.
func TestParseAuthResultsForged(t *testing.T) {
	for _, tc := range []struct {
		name, header     string
		found            bool
		spf, dkim, dmarc AuthResult
	}{
		{"forged below the receiver's Received", `
Authentication-Results: mx.google.com;
       dkim=fail header.i=@example.com;
       spf=fail smtp.mailfrom=probe@example.com;
       dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=example.com
Received: from mail.example.com by mx.google.com with ESMTPS id x; Wed, 12 Jun 2019 15:32:08 -0700 (PDT)
Authentication-Results: mx.google.com; dkim=pass header.i=@example.com; spf=pass smtp.mailfrom=probe@example.com; dmarc=pass header.from=example.com
From: probe@example.com`, true, AuthFail, AuthFail, AuthFail},
		{"other id above", `
Authentication-Results: forger.example; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com
Authentication-Results: mx.google.com; dkim=none; spf=neutral smtp.mailfrom=example.com; dmarc=none header.from=example.com
Received: from mail.example.com by mx.google.com; Wed, 12 Jun 2019 15:32:08 -0700 (PDT)
From: probe@example.com`, true, AuthNeutral, AuthNone, AuthNone},
		{"forged within the receiver's headers", `
Received: from mail.example.com by mx.google.com; Wed, 12 Jun 2019 15:32:08 -0700 (PDT)
Authentication-Results: mx.google.com; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=example.com; dmarc=fail header.from=example.com
Authentication-Results: mx.google.com; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com
From: probe@example.com`, true, AuthFail, AuthPass, AuthFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := ReadHeader(strings.NewReader(string(header(t, tc.header))))
			got := ParseAuthResults(h, AuthTrust{ID: "mx.google.com"})
			if got.Found != tc.found || got.SPF != tc.spf || got.DKIM != tc.dkim || got.DMARC != tc.dmarc {
				t.Errorf("got %+v, want found %v spf %q dkim %q dmarc %q", got, tc.found, tc.spf, tc.dkim, tc.dmarc)
			}
		})
	}
}

// TestParseAuthResultsValues maps every result word to the fixed set.
func TestParseAuthResultsValues(t *testing.T) {
	for word, want := range map[string]AuthResult{
		"pass": AuthPass, "FAIL": AuthFail, "softfail": AuthSoftFail, "neutral": AuthNeutral,
		"none": AuthNone, "temperror": AuthTempError, "permerror": AuthPermError, "policy": AuthPolicy,
		"hardfail": AuthFail, "bestguesspass": AuthNone, "error": AuthOther, "passed": AuthOther,
	} {
		h, _ := ReadHeader(strings.NewReader("Authentication-Results: mx.example.net; spf=" + word + " smtp.mailfrom=example.com\r\n\r\n"))
		if got := ParseAuthResults(h, AuthTrust{ID: "mx.example.net"}).SPF; got != want {
			t.Errorf("spf=%s: got %q, want %q", word, got, want)
		}
	}
}

// TestParseAuthResultsMalformed: what parsed before a fault counts, and
// the fault is reported.
func TestParseAuthResultsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		found       bool
		spf         AuthResult
	}{
		{"method without a result", "mx.example.net; spf=pass smtp.mailfrom=example.com; dkim", true, AuthPass},
		{"unknown version", "mx.example.net 2; spf=pass", false, AuthNone},
		{"unclosed comment", "mx.example.net; spf=pass (unclosed smtp.mailfrom=x", true, AuthPass},
		{"unclosed quote", `mx.example.net; spf=pass smtp.mailfrom="x; dkim=pass`, true, AuthPass},
		{"empty", "", false, AuthNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := ReadHeader(strings.NewReader("Authentication-Results: " + tc.value + "\r\n\r\n"))
			got := ParseAuthResults(h, AuthTrust{ID: "mx.example.net"})
			if got.Found != tc.found || got.SPF != tc.spf {
				t.Errorf("got %+v, want found %v spf %q", got, tc.found, tc.spf)
			}
		})
	}
}

func TestStripComments(t *testing.T) {
	for in, want := range map[string]string{
		"dkim=pass (2048-bit key; unprotected) header.d=x": "dkim=pass   header.d=x",
		"a (nested (inner; x) y) b":                        "a   b",
		`a "quoted (not a comment); x" b`:                  `a "quoted (not a comment), x" b`,
		`a (escaped \) still comment) b`:                   "a   b",
		"a ) b":                                            "a ) b",
	} {
		if got := stripComments(in); got != want {
			t.Errorf("stripComments(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzAuthResults(f *testing.F) {
	for _, h := range []string{gmailHeader, microsoftHeader, fastmailHeader, openDKIMHeader, rspamdHeader, rfc8601B6Header} {
		f.Add(string(header(f, h)), "mx.google.com")
	}
	f.Add("Authentication-Results: (((;\r\n\r\n", "")
	f.Add("Authentication-Results: x; dkim=pass header.i=\"@\r\n\r\n", "x")
	f.Fuzz(func(t *testing.T, raw, id string) {
		h, _ := ReadHeader(strings.NewReader(raw))
		got := ParseAuthResults(h, AuthTrust{ID: id, WithoutID: id == ""})
		for _, r := range []AuthResult{got.SPF, got.DKIM, got.DMARC} {
			if !slices.Contains(AllAuthResults, r) {
				t.Errorf("result %q outside the fixed set", r)
			}
		}
		if len(got.Signatures) > maxSignatures {
			t.Errorf("%d signatures", len(got.Signatures))
		}
	})
}
