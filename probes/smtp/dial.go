package smtp

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/pires/go-proxyproto"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// dial connects to addr from the module's source_ip_address, if any, and
// sends the PROXY protocol header the module asks for before anything
// else: a server behind HAProxy reads it before it greets.
func (s *session) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := probes.DialTCP(ctx, addr, s.m.SourceIPAddress)
	if err != nil {
		return nil, err
	}
	s.note("connected to %s from %s", addr, conn.LocalAddr())
	if s.m.SMTP.ProxyProtocol == "" {
		return conn, nil
	}
	if err := s.sendProxyHeader(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// sendProxyHeader writes the PROXY header of the module's version. It
// names the connection as it is, the probe's own address as the source and
// the target's as the destination: what a proxy in front of the server
// would have seen, so that the server judges the probe as it would judge
// the probe's address.
func (s *session) sendProxyHeader(conn net.Conn) error {
	version := byte(1)
	if s.m.SMTP.ProxyProtocol == probes.ProxyProtocolV2 {
		version = 2
	}
	h := proxyproto.HeaderProxyFromAddrs(version, conn.LocalAddr(), conn.RemoteAddr())
	b, err := h.Format()
	if err != nil {
		return &stepError{probes.ReasonOther, "PROXY header: " + err.Error()}
	}
	// The dialog's deadline is set once connect is done; this write comes
	// before it.
	_ = conn.SetWriteDeadline(s.deadline)
	if _, err := conn.Write(b); err != nil {
		return err
	}
	if version == 1 {
		s.record(probes.DirSend, strings.TrimRight(string(b), "\r\n"))
	} else {
		s.record(probes.DirSend, fmt.Sprintf("<PROXY v2 header, %d bytes: %s to %s>", len(b), h.SourceAddr, h.DestinationAddr))
	}
	return nil
}
