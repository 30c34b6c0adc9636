// Package delivery holds the delivery prober (issue 9). Probe sends a
// probe message with probes/smtp's Send and waits for it in the receive
// leg's IMAP mailbox (Dial, Folders, Find, Wait, Delete, Cleanup); the
// parsers read what arrives: Authentication-Results from the configured
// authserv-id, spam verdict headers and the Received chain's hops, and
// delivery status notifications classified like live replies, which
// Probe does not look for yet.
package delivery
