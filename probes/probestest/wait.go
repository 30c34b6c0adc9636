package probestest

import (
	"regexp"
	"time"
)

// withinRE finds the deadline an error names ("within 300ms").
var withinRE = regexp.MustCompile(`within ([0-9.]+m?s)`)

// SameWait reports whether got says what want says, the deadline it names
// ("within 300ms") up to 25 ms short: a probe counts it from when its wait
// began, a little after the test set it.
func SameWait(got, want string) bool {
	g, w := withinRE.FindStringSubmatchIndex(got), withinRE.FindStringSubmatchIndex(want)
	if g == nil || w == nil {
		return got == want
	}
	gd, err1 := time.ParseDuration(got[g[2]:g[3]])
	wd, err2 := time.ParseDuration(want[w[2]:w[3]])
	return err1 == nil && err2 == nil && gd <= wd && gd > wd-25*time.Millisecond &&
		got[:g[2]] == want[:w[2]] && got[g[3]:] == want[w[3]:]
}
