package collector

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: a
// scheduler loop, a probe or a shutdown waiter left behind is a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
