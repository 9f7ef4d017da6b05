package smtpd_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/smtpd"
	"github.com/invited/invited/store"
)

// writeCounter counts the writes made on the connections it accepts.
type writeCounter struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// rawClient speaks SMTP over a bare connection, to send commands in
// groups as a pipelining client does.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// replies reads n replies and returns the code of each (the first three
// characters of its last line).
func (c *rawClient) replies(n int) []string {
	c.t.Helper()
	var codes []string
	for len(codes) < n {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("after replies %v: %v", codes, err)
		}
		if len(line) < 4 {
			c.t.Fatalf("short reply line %q", line)
		}
		if line[3] == ' ' {
			codes = append(codes, line[:3])
		}
	}
	return codes
}

func TestPipelining_RepliesToAGroupInOneWrite(t *testing.T) {
	wc := &writeCounter{}
	addr, db := serveOn(t, smtpd.Config{}, 0, func(ln net.Listener) net.Listener {
		wc.Listener = ln
		return wc
	})
	c := dialRaw(t, addr)
	c.replies(1) // greeting
	c.send("EHLO client.example\r\n")
	c.replies(1)

	before := wc.writes.Load()
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<create@invite.test>\r\nDATA\r\n")
	if got := strings.Join(c.replies(3), " "); got != "250 250 354" {
		t.Fatalf("replies to MAIL, RCPT, DATA: %s", got)
	}
	if n := wc.writes.Load() - before; n != 1 {
		t.Errorf("the replies to one group took %d writes, want 1", n)
	}
	c.send(msg + ".\r\n")
	if got := c.replies(1)[0]; got != "250" {
		t.Fatalf("reply to the message: %s", got)
	}
	// The reply to QUIT is sent before the connection closes.
	c.send("QUIT\r\n")
	if got := c.replies(1)[0]; got != "221" {
		t.Fatalf("reply to QUIT: %s", got)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("after QUIT: %v, want EOF", err)
	}
	if n := countMessages(t, db); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// A client that does not wait for the 354 before the message, nor for
// anything after, still gets every reply, in order.
func TestPipelining_EverythingAtOnce(t *testing.T) {
	addr, db := serve(t, smtpd.Config{}, 0)
	c := dialRaw(t, addr)
	var all strings.Builder
	all.WriteString("EHLO client.example\r\n")
	for range 3 {
		all.WriteString("MAIL FROM:<a@example.org>\r\nRCPT TO:<create@invite.test>\r\nRCPT TO:<nobody@invite.test>\r\nDATA\r\n" + msg + ".\r\n")
	}
	all.WriteString("QUIT\r\n")
	c.send(all.String())
	want := "220 250" + strings.Repeat(" 250 250 550 354 250", 3) + " 221"
	if got := strings.Join(c.replies(2+5*3+1), " "); got != want {
		t.Fatalf("replies:\n got %s\nwant %s", got, want)
	}
	if n := countMessages(t, db); n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
}

func countMessages(t *testing.T, db *store.DB) int {
	t.Helper()
	return int(db.QueueLen(pipeline.StageParse))
}

// TestShutdown_ClosesSessionsLeftOpen: a client idling between messages
// is disconnected once Shutdown runs out of time, not left until its
// idle timeout.
func TestShutdown_ClosesSessionsLeftOpen(t *testing.T) {
	s, addr, _ := start(t, smtpd.Config{}, 0, nil)
	c := dialRaw(t, addr)
	c.replies(1)
	c.send("EHLO client.example\r\n")
	c.replies(1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the idle timeout is 2 minutes
	if _, err := io.ReadAll(c.r); err != nil {
		t.Fatalf("the idle session was not closed: %v", err)
	}
}

// TestShutdown_EndsSessionsLeftOpen: a session still at work on a message
// when Shutdown runs out of time is ended (its context), not only
// disconnected, so that the message, whose 250 could not reach its
// sender, is not then stored on the way out (the sender sends it again).
func TestShutdown_EndsSessionsLeftOpen(t *testing.T) {
	inSPF, ended := make(chan struct{}), make(chan error, 1)
	cfg := smtpd.Config{CheckSPF: func(ctx context.Context, ip net.IP, helo, from string) (string, string) {
		close(inSPF)
		<-ctx.Done() // a DNS lookup that does not answer
		ended <- ctx.Err()
		return "temperror", ""
	}}
	s, addr, _ := start(t, cfg, 0, nil)
	c := dialRaw(t, addr)
	c.replies(1)
	c.send("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<create@invite.test>\r\nDATA\r\n")
	c.replies(3)
	c.send(msg + ".\r\n")
	<-inSPF
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err != context.Canceled {
			t.Errorf("the session's context ended with %v", err)
		}
	case <-time.After(10 * time.Second): // the SPF check's own limit is 30 s
		t.Fatal("the session went on after Shutdown closed its connection")
	}
}
