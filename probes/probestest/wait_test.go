package probestest

import "testing"

func TestSameWait(t *testing.T) {
	for _, c := range []struct {
		got, want string
		same      bool
	}{
		{"no banner within 300ms", "no banner within 300ms", true},
		{"no banner within 290ms", "no banner within 300ms", true},  // counted a little later
		{"no banner within 270ms", "no banner within 300ms", false}, // too short
		{"no banner within 310ms", "no banner within 300ms", false}, // longer than set
		{"no reply within 300ms", "no banner within 300ms", false},
		{"no banner within 300ms (2 tries)", "no banner within 300ms", false},
		{"refused", "refused", true},
		{"refused", "reset", false},
	} {
		if got := SameWait(c.got, c.want); got != c.same {
			t.Errorf("SameWait(%q, %q) = %v, want %v", c.got, c.want, got, c.same)
		}
	}
}
