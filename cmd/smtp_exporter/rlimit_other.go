//go:build !unix

package main

// openFilesLimit: no limit to check on this platform.
func openFilesLimit() uint64 { return 0 }
