package delivery

import (
	"strings"
	"testing"
	"time"
)

// Received chains as MTAs write them, each naming its source; hosts
// anonymised.
const (
	// A kernel list message delivered through freedesktop.org's Postfix
	// to lfdr.de's Postfix and its LMTP (2026): four dated hops, in
	// three time zones' notation.
	listChain = `
Received: from mail.lfdr.example
	by mail.lfdr.example with LMTP
	id mCOzCRDjFmpIvAcAu9opvQ
	(envelope-from <list-bounces@lists.example.org>)
	for <lists@lfdr.example>; Wed, 27 May 2026 14:26:56 +0200
Received: from gabe.example.org (gabe.example.org [192.0.2.177])
	by mail.lfdr.example (Postfix) with ESMTPS id 879CF5E4287
	for <lists@lfdr.example>; Wed, 27 May 2026 14:26:54 +0200 (CEST)
Received: from gabe.example.org (localhost [127.0.0.1])
	by gabe.example.org (Postfix) with ESMTP id 20A8B10E7A9;
	Wed, 27 May 2026 12:26:53 +0000 (UTC)
Received: from mgamail.example.com (mgamail.example.com [192.0.2.10])
 by gabe.example.org (Postfix) with ESMTPS id A674110E1E6;
 Wed, 27 May 2026 12:26:51 +0000 (UTC)
Subject: x`

	// Gmail's delivery of a message from a Postfix and Proofpoint
	// relay (linux-mm archive, 2019): an internal Gmail hop, PDT and GMT
	// dates, and one undated field.
	gmailChain = `
Received: by 2002:a05:6a10:1234:b0:5a1:2b3c:4d5e with SMTP id e20csp123456pxb;
        Wed, 12 Jun 2019 15:32:09 -0700 (PDT)
Received: from mail.example.com (mail.example.com. [192.0.2.86])
        by mx.google.com with ESMTPS id d71si833482jab.10.2019.06.12.15.32.08
        for <probe@gmail.com>
        (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128);
        Wed, 12 Jun 2019 15:32:08 -0700 (PDT)
Received: from pps.filterd (mail.example.com [127.0.0.1])
	by mail.example.com (8.16.0.27/8.16.0.27) with SMTP id x5CMTs85064050;
	Wed, 12 Jun 2019 22:31:48 GMT
Received: from localhost by pps.filterd with LMTP
Subject: x`

	// qmail's own trace lines (a qmail-send bounce, 2020): no weekday,
	// the "-0000" zone of an unknown local offset, and one date that
	// does not parse.
	qmailChain = `
Received: (qmail 8515 invoked for bounce); 1 Dec 2020 19:31:50 -0000
Received: (qmail 8513 invoked from network); 1 Dec 2020 19:31:46 -0000
Received: from client by mail.example.com; yesterday at noon
Subject: x`

	// A hop whose clock runs 40 s behind the one before it.
	skewedChain = `
Received: from b by c; Mon, 8 Jan 2024 10:00:30 +0000
Received: from a by b; Mon, 8 Jan 2024 09:59:50 +0000
Received: from client by a; Mon, 8 Jan 2024 10:00:00 +0000
Subject: x`
)

func TestParseHops(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, chain string
		arrival     time.Time
		want        HopFacts
	}{
		// 12:26:51 → :53 → :54 → :56 UTC: the first gap is the largest.
		{"list", listChain, time.Time{}, HopFacts{Hops: 4, Dated: 4, Total: 5 * time.Second, Largest: 2 * time.Second, LargestHop: 1}},
		// The arrival ends the total; it is no hop.
		{"list, arrival", listChain, at("2026-05-27T12:27:26Z"), HopFacts{Hops: 4, Dated: 4, Total: 35 * time.Second, Largest: 2 * time.Second, LargestHop: 1}},
		// 22:31:48 GMT → 22:32:08 → 22:32:09 UTC; the undated field counts
		// as a hop only.
		{"gmail", gmailChain, time.Time{}, HopFacts{Hops: 4, Dated: 3, Total: 21 * time.Second, Largest: 20 * time.Second, LargestHop: 1}},
		{"qmail", qmailChain, time.Time{}, HopFacts{Hops: 3, Dated: 2, Total: 4 * time.Second, Largest: 4 * time.Second, LargestHop: 1}},
		// 10:00:00 → 09:59:50 (−10 s, counted 0) → 10:00:30 (+40 s).
		{"skewed", skewedChain, time.Time{}, HopFacts{Hops: 3, Dated: 3, Total: 30 * time.Second, Largest: 40 * time.Second, LargestHop: 2}},
		// An arrival before the oldest date (the mailbox's clock behind):
		// the total is 0, not negative.
		{"arrival before", skewedChain, at("2024-01-08T09:00:00Z"), HopFacts{Hops: 3, Dated: 3, Total: 0, Largest: 40 * time.Second, LargestHop: 2}},
		{"none", "\nSubject: x", time.Time{}, HopFacts{}},
		{"one", "\nReceived: from a by b; Mon, 8 Jan 2024 10:00:00 +0000", time.Time{}, HopFacts{Hops: 1, Dated: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(strings.NewReader(string(header(t, tc.chain))))
			if err != nil {
				t.Fatal(err)
			}
			if got := ParseHops(h, tc.arrival); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestParseHopsBounded: a looping message's endless chain is read only up
// to the hop count at which MTAs give up.
func TestParseHopsBounded(t *testing.T) {
	var b strings.Builder
	for range 5 * maxHops {
		b.WriteString("Received: from a by b; Mon, 8 Jan 2024 10:00:00 +0000\r\n")
	}
	b.WriteString("\r\n")
	h, _ := ReadHeader(strings.NewReader(b.String()))
	if got := ParseHops(h, time.Time{}); got.Hops != maxHops {
		t.Errorf("%d hops read, bound is %d", got.Hops, maxHops)
	}
}

func FuzzParseHops(f *testing.F) {
	f.Add(string(header(f, listChain)), int64(0))
	f.Add(string(header(f, skewedChain)), int64(1704708000))
	f.Fuzz(func(t *testing.T, raw string, arrival int64) {
		h, _ := ReadHeader(strings.NewReader(raw))
		var at time.Time
		if arrival != 0 {
			at = time.Unix(arrival, 0)
		}
		got := ParseHops(h, at)
		if got.Total < 0 || got.Largest < 0 || got.Dated > got.Hops || got.Hops > maxHops {
			t.Errorf("got %+v", got)
		}
	})
}
