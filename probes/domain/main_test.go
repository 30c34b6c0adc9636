package domain

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when any test leaves a goroutine behind: a probe
// must not leak one per run, whatever a server or a DNS answer does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
