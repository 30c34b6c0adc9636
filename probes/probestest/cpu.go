package probestest

import (
	"syscall"
	"testing"
	"time"
)

// MeasureCPU runs op in b.Loop and reports the process's CPU time per op
// (user and system, garbage collection included) as cpu-ns/op beside the
// wall time: with the server in another process, that is the client's
// alone.
func MeasureCPU(b *testing.B, op func()) {
	b.ReportAllocs()
	start := ProcessCPU(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64((ProcessCPU(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// ProcessCPU is the CPU time this process has used so far.
func ProcessCPU(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
