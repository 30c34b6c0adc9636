package probestest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
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

// StartChild runs the test named test of this test binary in a child
// process, with env (KEY=VALUE) added to its environment, and returns its
// stdin and stdout; the child ends when b does (its stdin is closed and it
// is waited for). Benchmarks serve from a child so that the process's CPU
// time is the client's alone.
func StartChild(b testing.TB, test, env string) (io.WriteCloser, *bufio.Reader) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	return stdin, bufio.NewReader(out)
}
