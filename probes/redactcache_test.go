package probes

import (
	"maps"
	"slices"
	"sync"
	"testing"
)

// A Redactor given a secret with AddSecret knows exactly what one given
// it with Add knows, and the copies it hands out are each their own: a
// probe adding its SASL responses must not reach another probe's.
func TestRedactor_AddSecretIsAdd(t *testing.T) {
	for _, secret := range []string{"pw", "s3cret!", "hunter2-hunter2", `quo"te\back<>&`, "pässwörd\u2028", "\xff\xfeinvalid"} {
		var want, got Redactor
		want.Add(secret)
		got.AddSecret(secret)
		if !maps.Equal(got.grams, want.grams) || !slices.Equal(got.words, want.words) {
			t.Errorf("%q: AddSecret registered other forms than Add", secret)
		}
		var again Redactor
		again.AddSecret(secret)
		again.AddResponse([]byte("\x00user\x00" + secret))
		again.Add("another-secret")
		if !maps.Equal(got.grams, want.grams) || !slices.Equal(got.words, want.words) {
			t.Errorf("%q: adding to one copy changed another", secret)
		}
	}
	// A second secret goes the usual way, on top of the first.
	var want, got Redactor
	want.Add("first-secret")
	want.Add("second-secret")
	got.AddSecret("first-secret")
	got.AddSecret("second-secret")
	if !maps.Equal(got.grams, want.grams) {
		t.Error("a second AddSecret lost a secret")
	}
}

// TestRedactor_AddSecretConcurrent is for -race: probes of one module
// copy its credential's Redactor at once and add their own responses.
func TestRedactor_AddSecretConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				var r Redactor
				r.AddSecret("concurrent-secret")
				r.AddResponse([]byte{byte(i)})
				if got := r.Redact("x concurrent-secret y"); got != "x "+Redacted+" y" {
					t.Errorf("Redact = %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
