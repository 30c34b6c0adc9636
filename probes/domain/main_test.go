package domain

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when any test leaves a goroutine behind: a check
// must not leak one per run, whatever DNS answers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
