package probestest

import (
	"net"
	"net/textproto"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestScriptServer_RecordsLinesAndConnections(t *testing.T) {
	s := NewScriptServer(t, func(c *Conn) {
		c.Send("220 hello")
		for {
			line, ok := c.Expect("ehlo ")
			if line == "" && !ok {
				return
			}
			if ok {
				c.Send("250 matched")
			} else {
				c.Send("500 unmatched")
			}
		}
	})
	for range 2 {
		c := dialRaw(t, s.Addr)
		c.expectReply(220, "hello")
		c.expect("EHLO client.test", 250, "matched")
		c.expect("NOOP", 500, "unmatched")
		c.conn.Close()
	}
	want := []string{"EHLO client.test", "NOOP", "EHLO client.test", "NOOP"}
	if got := s.Received(); !slices.Equal(got, want) {
		t.Errorf("Received() = %q, want %q", got, want)
	}
	if got := s.Connections(); got != 2 {
		t.Errorf("Connections() = %d, want 2", got)
	}
}

func TestScriptServer_SendRawAndPartialLine(t *testing.T) {
	s := NewScriptServer(t, func(c *Conn) {
		c.SendRaw([]byte("220-first\n220 second\r\n"))
		c.ReadLine()
	})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "first\nsecond")
	// A line cut off by the client's close is still recorded, since a
	// probe that dies mid-command is what some tests look for.
	c.conn.Write([]byte("MAIL FROM:<trunc"))
	c.conn.Close()
	waitFor(t, func() bool { return slices.Equal(s.Received(), []string{"MAIL FROM:<trunc"}) })
}

// TestScriptServer_CleanupLeavesNoGoroutines runs the server in a subtest so
// that its cleanup has finished when goleak looks. The client ends stay
// open throughout: only the server's own close may unblock the handlers.
func TestScriptServer_CleanupLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	sleepCompleted := make(chan bool, 1)
	var slowHandlerFinished atomic.Bool
	var clients []net.Conn
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})

	t.Run("server", func(t *testing.T) {
		s := NewScriptServer(t, func(c *Conn) {
			mode, _ := c.ReadLine()
			c.Send("250 " + mode)
			switch mode {
			case "read":
				c.ReadLine()
			case "sleep":
				sleepCompleted <- c.Sleep(time.Hour)
			case "done":
				<-c.Done()
				// Finishing late proves cleanup waits rather than
				// relying on goleak's retries to paper over it.
				time.Sleep(50 * time.Millisecond)
				slowHandlerFinished.Store(true)
			case "trickle":
				for c.Sleep(10 * time.Millisecond) {
					c.SendRaw([]byte("2"))
				}
			}
		})
		for _, mode := range []string{"read", "sleep", "done", "trickle"} {
			conn, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, conn)
			c := &rawClient{t: t, conn: conn, text: textproto.NewConn(conn)}
			c.expect(mode, 250, mode)
		}
	})

	if !slowHandlerFinished.Load() {
		t.Error("cleanup returned before the handlers did")
	}
	if completed := <-sleepCompleted; completed {
		t.Error("Sleep(1h) returned true, want false on shutdown")
	}
	goleak.VerifyNone(t, ignore)
}

func TestConn_StartTLSRefusesPipelinedPlaintext(t *testing.T) {
	cfg := ServerTLSConfig(NewCA(t).Valid(t))
	result := make(chan error, 1)
	s := NewScriptServer(t, func(c *Conn) {
		c.ReadLine()
		result <- c.StartTLS(cfg)
	})
	c := dialRaw(t, s.Addr)
	c.conn.Write([]byte("STARTTLS\r\nEHLO injected\r\n"))
	if err := <-result; err == nil {
		t.Fatal("StartTLS succeeded with plaintext pipelined behind STARTTLS")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
