package probes

import "context"

// Progress events a prober reports while it runs, for what a result
// cannot tell until the run ends.
const (
	// EventAwaiting: a server accepted the probe message, which the run
	// now waits for (the delivery prober's wait).
	EventAwaiting = "awaiting"
	// EventSettled: that wait ended, the message found or not.
	EventSettled = "settled"
)

type progressKey struct{}

// WithProgress returns a context in which a prober's Report calls reach
// report. The scheduler uses it for the pending messages of its targets.
func WithProgress(ctx context.Context, report func(event string)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// Report tells the context's listener of event; without one it does
// nothing.
func Report(ctx context.Context, event string) {
	if report, ok := ctx.Value(progressKey{}).(func(string)); ok && report != nil {
		report(event)
	}
}
