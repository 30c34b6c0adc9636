//go:build unix

package main

import "syscall"

// openFilesLimit is the soft limit on open descriptors, which the Go
// runtime raised to the hard limit at start; 0 when unknown or unlimited.
func openFilesLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<40 {
		return 0
	}
	return rl.Cur
}
