// Package delivery holds the delivery prober (issue 9). Probe sends a
// probe message with probes/smtp's Send and waits for it in the receive
// leg's IMAP mailbox (Dial, Folders, Find, Wait, FindBounces, Delete,
// Cleanup); the parsers read what arrives: Authentication-Results from the
// configured authserv-id, spam verdict headers, the Received chain's hops,
// and bounces classified like live replies.
package delivery
