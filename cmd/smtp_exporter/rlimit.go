package main

// fdReserve is the descriptors kept beyond the probes and web connections:
// listeners, log and config files, DNS, and the few probes of the classes
// that hold more than one (delivery: SMTP and IMAP; domain: several MX
// sessions), which run far fewer at once than the dialog class.
const fdReserve = 256

// fitConcurrency returns the per-class probe concurrency that fits the
// open-files limit nofile (0: unknown) beside webConns web connections,
// and whether want had to be lowered to it. A waiting dialog probe holds
// one descriptor; at its limit the dialog class alone holds concurrency.
func fitConcurrency(want, webConns int, nofile uint64) (int, bool) {
	if nofile == 0 {
		return want, false
	}
	room := int64(nofile) - int64(webConns) - fdReserve
	if int64(want) <= room {
		return want, false
	}
	return int(max(room, 1)), true
}
