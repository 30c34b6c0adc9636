package collector

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

func historyGet(h http.Handler, url string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	return rec
}

func historyResult(target, module string, success bool) *probes.Result {
	r := &probes.Result{Target: target, Module: module, Start: time.Unix(1700000000, 0), Success: success, Reason: probes.ReasonOK}
	if !success {
		r.FailedPhase, r.Reason, r.Temporary = probes.PhaseEHLO, probes.ReasonTimeout, true
		r.Err = errors.New("no reply to EHLO within 5s")
	}
	return r
}

// A failure without a reply (connect, timeout) shows its reason, its
// error and what to do first, in the list and on its page.
func TestHistoryHandler_FailureWithoutReply(t *testing.T) {
	h := NewHistory(10)
	h.Add("schedule", historyResult("mx1", "smtp", false))
	hh := HistoryHandler(h)
	advice := probes.ReasonTimeout.Advice()

	list := historyGet(hh, "/history").Body.String()
	for _, want := range []string{"<td>timeout</td>", "no reply to EHLO within 5s", html.EscapeString(advice)} {
		if !strings.Contains(list, want) {
			t.Errorf("the list lacks %q:\n%s", want, list)
		}
	}
	id := h.List()[0].ID
	page := historyGet(hh, fmt.Sprintf("/history?id=%d", id)).Body.String()
	for _, want := range []string{
		"Result: FAILED in phase ehlo after 0.000s: reason=timeout (temporary)\n",
		"  error: no reply to EHLO within 5s\n",
		"What to do first: " + advice + "\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page of %d lacks %q:\n%s", id, want, page)
		}
	}
}

// A failure with a reply quotes it once in the list row, with its code,
// and not again as the error.
func TestHistoryHandler_FailureWithReply(t *testing.T) {
	h := NewHistory(10)
	r := historyResult("mx1", "smtp", false)
	r.FailedPhase, r.Reason, r.Temporary = probes.PhaseRcpt, probes.ReasonMailboxUnavailable, false
	r.Code, r.EnhancedCode, r.ReplyText = 550, "5.1.1", "5.1.1 user unknown"
	r.Err = errors.New("RCPT: server replied 550 5.1.1 user unknown")
	h.Add("schedule", r)
	list := historyGet(HistoryHandler(h), "/history").Body.String()
	if n := strings.Count(list, "user unknown"); n != 1 {
		t.Errorf("the reply is in the list %d times, want once:\n%s", n, list)
	}
	if !strings.Contains(list, html.EscapeString(probes.ReasonMailboxUnavailable.Advice())) {
		t.Errorf("the list lacks the advice:\n%s", list)
	}
}

func fillHistory(t *testing.T) (*History, map[string]uint64) {
	t.Helper()
	h := NewHistory(10)
	ids := map[string]uint64{}
	for _, e := range []struct {
		name, target, module string
		success              bool
	}{
		{"a/m old failure", "a", "m", false},
		{"a/m failure", "a", "m", false},
		{"a/m success", "a", "m", true},
		{"b/m failure", "b", "m", false},
		{"a/n failure", "a", "n", false},
		{"a/n success", "a", "n", true},
	} {
		h.Add("schedule", historyResult(e.target, e.module, e.success))
		ids[e.name] = h.List()[0].ID
	}
	return h, ids
}

// ?target=T&module=M&last=failure leads to the newest failed run of that
// target and module the history keeps, even after a success.
func TestHistoryHandler_LastFailure(t *testing.T) {
	h, ids := fillHistory(t)
	hh := HistoryHandler(h)
	for _, tc := range []struct {
		query string
		want  uint64
	}{
		{"target=a&module=m", ids["a/m failure"]},
		{"target=b&module=m", ids["b/m failure"]},
		{"target=a&module=n", ids["a/n failure"]},
		{"target=a", ids["a/n failure"]},
	} {
		rec := historyGet(hh, "/history?"+tc.query+"&last=failure")
		if rec.Code != http.StatusFound {
			t.Errorf("%s: status %d, want 302: %s", tc.query, rec.Code, rec.Body)
			continue
		}
		if got, want := rec.Header().Get("Location"), fmt.Sprintf("/history?id=%d", tc.want); got != want {
			t.Errorf("%s: Location %q, want %q", tc.query, got, want)
		}
	}
	for _, tc := range []struct{ query, want string }{
		{"target=c&module=m", "no failed run of c/m is kept"},
		{"target=b&module=n", "no failed run of b/n is kept"},
	} {
		rec := historyGet(hh, "/history?"+tc.query+"&last=failure")
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %q, want 404 %q", tc.query, rec.Code, rec.Body, tc.want)
		}
	}
	if rec := historyGet(hh, "/history?last=failure"); rec.Code != http.StatusBadRequest {
		t.Errorf("last=failure without a target: status %d, want 400", rec.Code)
	}
	if rec := historyGet(hh, "/history?target=a&last=success"); rec.Code != http.StatusBadRequest {
		t.Errorf("last=success: status %d, want 400", rec.Code)
	}
}

// ?target= (and module=) filter the list.
func TestHistoryHandler_FilterList(t *testing.T) {
	h, ids := fillHistory(t)
	hh := HistoryHandler(h)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"target=a", []string{"a/m old failure", "a/m failure", "a/m success", "a/n failure", "a/n success"}},
		{"target=a&module=m", []string{"a/m old failure", "a/m failure", "a/m success"}},
		{"module=m", []string{"a/m old failure", "a/m failure", "a/m success", "b/m failure"}},
		{"target=zzz", nil},
	} {
		body := historyGet(hh, "/history?"+tc.query).Body.String()
		for name, id := range ids {
			listed := strings.Contains(body, fmt.Sprintf(`href="?id=%d"`, id))
			want := false
			for _, w := range tc.want {
				want = want || w == name
			}
			if listed != want {
				t.Errorf("%s: %s (id %d) listed %t, want %t", tc.query, name, id, listed, want)
			}
		}
	}
}
