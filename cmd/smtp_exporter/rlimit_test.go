package main

import "testing"

func TestFitConcurrency(t *testing.T) {
	for _, c := range []struct {
		want, webConns int
		nofile         uint64
		got            int
		lowered        bool
	}{
		{2048, 512, 0, 2048, false},       // unknown limit
		{2048, 512, 1 << 20, 2048, false}, // a systemd or container default
		{2048, 512, 2048 + 512 + 256, 2048, false},
		{2048, 512, 2048, 2048 - 512 - 256, true},
		{2048, 512, 1024, 1024 - 512 - 256, true},
		{64, 512, 512, 1, true}, // nothing left: one probe at a time
	} {
		got, lowered := fitConcurrency(c.want, c.webConns, c.nofile)
		if got != c.got || lowered != c.lowered {
			t.Errorf("fitConcurrency(%d, %d, %d) = %d, %v; want %d, %v", c.want, c.webConns, c.nofile, got, lowered, c.got, c.lowered)
		}
	}
	if openFilesLimit() == 0 {
		t.Log("no open-files limit known here")
	}
}
