// Package delivery holds the delivery prober's pieces (issue 9): the
// receive leg's IMAP mailbox (Dial, Folders, Find, Wait, Delete, Cleanup),
// and the parsers of what arrives: Authentication-Results from the
// configured authserv-id, delivery status notifications classified like
// live replies, spam verdict headers and the Received chain's hops. The
// send leg is probes/smtp's Send. The prober that joins them, its module
// settings and its metrics are not wired yet: no module can name it.
package delivery
