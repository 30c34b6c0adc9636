package delivery

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when any test leaves a goroutine behind: a
// mailbox must not leak one per run, whatever the server does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
