package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// server answers just enough SMTP for a STARTTLS probe (and MAIL, RCPT,
// RSET, DATA for modules that go further), one goroutine per connection:
// a goroutine asleep on a slow greeting costs a few KiB, so thousands are
// cheap, and the exporter, not this server, stays the bottleneck.
type server struct {
	hostname    string
	tls         *tls.Config
	bannerDelay time.Duration
	idle        time.Duration

	accepted  atomic.Int64
	completed atomic.Int64 // sessions that ended with QUIT

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func serveCmd(ctx context.Context, fs *flag.FlagSet, stderr io.Writer) func() error {
	listen := fs.String("listen", "127.0.30.1:0", "address to listen on (port 0 picks one)")
	addrFile := fs.String("addr-file", "", "write the address listened on to this file once listening")
	caFile := fs.String("ca-file", "", "write the CA certificate (PEM) that signed the server's certificate to this file")
	hostname := fs.String("hostname", "mx.loadrun.test", "name in the greeting and the certificate")
	delay := fs.Duration("banner-delay", 0, "hold the greeting this long after the first line, as Postfix's postscreen does (postscreen_greet_wait is 6s)")
	idle := fs.Duration("idle-timeout", 30*time.Second, "close a connection silent this long")
	return func() error {
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			return err
		}
		defer l.Close()
		host, _, _ := net.SplitHostPort(l.Addr().String())
		leaf, caPEM, err := newCertificates(*hostname, net.ParseIP(host))
		if err != nil {
			return err
		}
		if *caFile != "" {
			if err := writeFileAtomic(*caFile, caPEM); err != nil {
				return err
			}
		}
		s := &server{
			hostname:    *hostname,
			tls:         &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12},
			bannerDelay: *delay,
			idle:        *idle,
		}
		// The address file is written last: the script waits for it, and
		// the CA file must exist by then.
		if *addrFile != "" {
			if err := writeFileAtomic(*addrFile, []byte(l.Addr().String()+"\n")); err != nil {
				return err
			}
		}
		s.serve(ctx, l)
		fmt.Fprintf(stderr, "smtp-loadserver: %d connections accepted, %d sessions ended with QUIT\n",
			s.accepted.Load(), s.completed.Load())
		return nil
	}
}

// writeFileAtomic renames into place so a reader polling for the file never
// sees it half written.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// serve accepts until ctx ends, then closes every connection and waits for
// their goroutines.
func (s *server) serve(ctx context.Context, l net.Listener) {
	s.conns = make(map[net.Conn]struct{})
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			break
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
	s.wg.Wait()
}

func (s *server) handle(ctx context.Context, c net.Conn) {
	w := bufio.NewWriterSize(c, 512)
	r := bufio.NewReaderSize(c, 512)
	if s.bannerDelay > 0 {
		// postscreen's greet test: the first line of a multi-line greeting
		// at once, the rest after the wait.
		fmt.Fprintf(w, "220-%s ESMTP\r\n", s.hostname)
		if w.Flush() != nil {
			return
		}
		t := time.NewTimer(s.bannerDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	var conn net.Conn = c
	tlsActive := false
	fmt.Fprintf(w, "220 %s ESMTP smtp-loadserver\r\n", s.hostname)
	for {
		if w.Flush() != nil {
			return
		}
		if conn.SetDeadline(time.Now().Add(s.idle)) != nil {
			return
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			fmt.Fprintf(w, "250-%s\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n", s.hostname)
			if !tlsActive {
				w.WriteString("250-STARTTLS\r\n")
			}
			w.WriteString("250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
		case "HELO":
			fmt.Fprintf(w, "250 %s\r\n", s.hostname)
		case "STARTTLS":
			if tlsActive {
				w.WriteString("503 5.5.1 Error: TLS already active\r\n")
				continue
			}
			w.WriteString("220 2.0.0 Ready to start TLS\r\n")
			if w.Flush() != nil {
				return
			}
			tc := tls.Server(c, s.tls)
			if tc.HandshakeContext(ctx) != nil {
				return
			}
			conn, tlsActive = tc, true
			r.Reset(tc)
			w.Reset(tc)
		case "MAIL", "RCPT", "RSET", "NOOP":
			w.WriteString("250 2.0.0 Ok\r\n")
		case "DATA":
			w.WriteString("354 End data with <CR><LF>.<CR><LF>\r\n")
			if w.Flush() != nil {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
			}
			w.WriteString("250 2.0.0 Ok: queued\r\n")
		case "QUIT":
			w.WriteString("221 2.0.0 Bye\r\n")
			w.Flush()
			s.completed.Add(1)
			return
		default:
			w.WriteString("502 5.5.2 Error: command not recognized\r\n")
		}
	}
}

func freeportCmd(fs *flag.FlagSet, stdout io.Writer) func() error {
	host := fs.String("host", "127.0.30.1", "address to find a free TCP port on")
	return func() error {
		l, err := net.Listen("tcp", net.JoinHostPort(*host, "0"))
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		fmt.Fprintln(stdout, port)
		return nil
	}
}
