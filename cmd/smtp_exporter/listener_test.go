package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A connection beyond the cap closes the one idle the longest, rather than
// waiting behind clients that do nothing.
func TestConnLimiter_ClosesLongestIdleForNew(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimiter(2)
	idle := make(chan struct{}, 8)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, s http.ConnState) {
			lim.track(c, s)
			if s == http.StateIdle {
				idle <- struct{}{}
			}
		},
	}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(lim.listener(l)) }()
	defer func() { srv.Close(); <-served }()

	get := func(c net.Conn, r *bufio.Reader) {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("GET on %s: %v", c.LocalAddr(), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var conns []net.Conn
	var readers []*bufio.Reader
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		conns, readers = append(conns, c), append(readers, bufio.NewReader(c))
		get(c, readers[len(readers)-1])
		<-idle
	}
	// The first was idle the longest: closed for the third.
	if _, err := readers[0].ReadByte(); err != io.EOF {
		t.Errorf("the longest idle connection: read err = %v, want EOF", err)
	}
	get(conns[1], readers[1])
}
