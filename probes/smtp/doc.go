// Package smtp is the SMTP and LMTP prober: one dialog (banner, EHLO or
// LHLO, STARTTLS or implicit TLS, AUTH, MAIL, RCPT, a real test message)
// that records every reply and every phase's duration, bounds whatever a
// server sends, redacts credentials from the raw bytes up, and always
// leaves with QUIT when the stream allows it (ARCHITECTURE.md §8). The
// dialog is ours rather than a client library's because a probe needs
// every reply, every deadline and every failure told apart.
//
// Probe is the prober; Send and Handshake are the steps other probers
// reuse.
package smtp
