package smtpd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/smtpd"
	"github.com/invited/invited/store"
)

// queue adapts the real pipeline to smtpd.Queue, as cmd/invited does.
type queue struct{ p *pipeline.Pipeline }

func (q queue) Accept(ctx context.Context, env smtpd.Envelope, data []byte) (string, error) {
	return q.p.Accept(ctx, pipeline.Envelope(env), data)
}
func (q queue) Busy() bool { return q.p.Busy() }

// serve starts the listener over a real store and pipeline (not running:
// messages stay queued, so tests can look at them and fill the queue).
func serve(t *testing.T, cfg smtpd.Config, maxInbound int64) (addr string, db *store.DB) {
	t.Helper()
	return serveOn(t, cfg, maxInbound, nil)
}

// serveOn is serve with the listener wrapped by wrap, if not nil.
func serveOn(t *testing.T, cfg smtpd.Config, maxInbound int64, wrap func(net.Listener) net.Listener) (addr string, db *store.DB) {
	t.Helper()
	_, addr, db = start(t, cfg, maxInbound, wrap)
	return addr, db
}

// start is serveOn that also returns the server.
func start(t *testing.T, cfg smtpd.Config, maxInbound int64, wrap func(net.Listener) net.Listener) (s *smtpd.Server, addr string, db *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := pipeline.New(pipeline.Config{Domain: "invite.test", MaxInbound: maxInbound, Auth: &senderauth.Checker{Policy: senderauth.PolicyNone}}, db, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Domain = "invite.test"
	cfg.Mailboxes = []string{"create", "bulk"}
	cfg.Tagged = []string{"rsvp"}
	s, err = smtpd.New(cfg, queue{p}, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return s, addr, db
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func enhanced(err error) smtp.EnhancedCode {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.EnhancedCode
	}
	return smtp.EnhancedCode{}
}

const msg = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

func TestRcpt_OnlyOurMailboxes(t *testing.T) {
	addr, _ := serve(t, smtpd.Config{}, 0)
	c := dial(t, addr)
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rcpt string
		code int
		enh  smtp.EnhancedCode
	}{
		{"create@invite.test", 0, smtp.EnhancedCode{}},
		{"CREATE@Invite.Test", 0, smtp.EnhancedCode{}},
		{"rsvp@invite.test", 0, smtp.EnhancedCode{}},
		{"rsvp+k3x9a@invite.test", 0, smtp.EnhancedCode{}},
		{"bulk@invite.test", 0, smtp.EnhancedCode{}},
		{"postmaster@invite.test", 550, smtp.EnhancedCode{5, 1, 1}},
		{"create+x@invite.test", 550, smtp.EnhancedCode{5, 1, 1}},
		{"rsvp+bad/tag@invite.test", 550, smtp.EnhancedCode{5, 1, 1}},
		{"create@example.com", 550, smtp.EnhancedCode{5, 7, 1}},
		{"create@invite.test.evil.example", 550, smtp.EnhancedCode{5, 7, 1}},
	}
	for _, tc := range cases {
		err := c.Rcpt(tc.rcpt, nil)
		if code(err) != tc.code || (tc.code != 0 && enhanced(err) != tc.enh) {
			t.Errorf("RCPT %s: %v, want %d %v", tc.rcpt, err, tc.code, tc.enh)
		}
	}
}

// send sends msg from from to rcpts on c and returns the id its 250 names.
func send(t *testing.T, c *smtp.Client, from string, rcpts ...string) string {
	t.Helper()
	return sendBody(t, c, from, msg, rcpts...)
}

// sendBody sends body and returns the id the 250 names.
func sendBody(t *testing.T, c *smtp.Client, from, body string, rcpts ...string) string {
	t.Helper()
	id, err := trySend(c, from, body, 0, rcpts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// trySend sends body, declaring size (SIZE=) unless it is 0, and returns
// the id the 250 names or the error.
func trySend(c *smtp.Client, from, body string, size int64, rcpts ...string) (string, error) {
	var opts *smtp.MailOptions
	if size > 0 {
		opts = &smtp.MailOptions{Size: size}
	}
	if err := c.Mail(from, opts); err != nil {
		return "", err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	io.WriteString(w, body)
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	_, id, ok := strings.Cut(resp.StatusText, "queued as ")
	if !ok {
		return "", fmt.Errorf("250 text %q", resp.StatusText)
	}
	return id, nil
}

// stored reads message id from db.
func stored(t *testing.T, db *store.DB, id string) *store.Message {
	t.Helper()
	var m *store.Message
	if err := db.View(func(tx *store.Tx) (err error) { m, err = tx.Message(id); return err }); err != nil {
		t.Fatalf("message %q: %v", id, err)
	}
	return m
}

func TestData_DurableBefore250(t *testing.T) {
	addr, db := serve(t, smtpd.Config{}, 0)
	id := send(t, dial(t, addr), "a@example.org", "create@invite.test", "rsvp+abc@invite.test")
	// The 250 promised it: the message and its envelope are on disk now.
	m := stored(t, db, id)
	var raw []byte
	if err := db.View(func(tx *store.Tx) (err error) { raw, err = tx.Raw(id); return err }); err != nil {
		t.Fatal(err)
	}
	if m.MailFrom != "a@example.org" || len(m.RcptTo) != 2 || !strings.HasPrefix(m.Remote, "127.0.0.1:") || m.HELO == "" {
		t.Errorf("envelope %+v", m)
	}
	if !strings.HasPrefix(string(raw), "Received: from ") || !strings.HasSuffix(string(raw), msg) {
		t.Errorf("raw message:\n%s", raw)
	}
	if n := db.QueueLen(pipeline.StageParse); n != 1 {
		t.Errorf("parse queue %d, want 1", n)
	}
}

// Message buffers are used again from one message to the next (Data):
// each message must still be stored whole and alone, whatever the size
// of the one before it.
func TestData_EachMessageStoredWhole(t *testing.T) {
	addr, db := serve(t, smtpd.Config{}, 0)
	c := dial(t, addr)
	for i, size := range []int{20 << 10, 100, 70 << 10, 10, 9 << 10} {
		body := fmt.Sprintf("From: a@example.org\r\nSubject: %d\r\n\r\n%s", i, strings.Repeat(strings.Repeat(string(rune('a'+i)), 68)+"\r\n", size/70+1))
		id := sendBody(t, c, "a@example.org", body, "create@invite.test")
		var raw []byte
		if err := db.View(func(tx *store.Tx) (err error) { raw, err = tx.Raw(id); return err }); err != nil {
			t.Fatal(err)
		}
		_, got, ok := strings.Cut(string(raw), "\r\nFrom: ")
		if !ok || !strings.HasPrefix(string(raw), "Received: from ") || "From: "+got != body {
			t.Errorf("message %d (%d bytes) stored as %d bytes: %.80q…", i, len(body), len(raw), raw)
		}
	}
}

func TestMail_BusyQueueDefers(t *testing.T) {
	addr, _ := serve(t, smtpd.Config{}, 2)
	c := dial(t, addr)
	for i := range 2 {
		if err := c.SendMail("a@example.org", []string{"create@invite.test"}, strings.NewReader(msg)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	err := c.Mail("a@example.org", nil)
	if code(err) != 451 || enhanced(err) != (smtp.EnhancedCode{4, 3, 2}) {
		t.Fatalf("MAIL past the high-water mark: %v, want 451 4.3.2", err)
	}
}

func TestLimits_SizeAndRecipients(t *testing.T) {
	addr, db := serve(t, smtpd.Config{MaxMessageBytes: 2048, MaxRecipients: 2}, 0)
	c := dial(t, addr)
	big := msg + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 60)
	err := c.SendMail("a@example.org", []string{"create@invite.test"}, strings.NewReader(big))
	if code(err) != 552 {
		t.Errorf("oversized message: %v, want 552", err)
	}
	long := msg + strings.Repeat("y", 3000) + "\r\n"
	if err := c.SendMail("a@example.org", []string{"create@invite.test"}, strings.NewReader(long)); code(err) != 554 {
		t.Errorf("line of 3000 octets: %v, want 554", err)
	}
	c = dial(t, addr) // go-smtp closes the connection after a line that long
	c.Mail("a@example.org", nil)
	c.Rcpt("create@invite.test", nil)
	c.Rcpt("rsvp@invite.test", nil)
	if err := c.Rcpt("bulk@invite.test", nil); code(err) != 452 {
		t.Errorf("third recipient: %v, want 452", err)
	}
	if n := db.QueueLen(pipeline.StageParse); n != 0 {
		t.Errorf("refused messages were queued: %d", n)
	}
}

func TestStartTLS(t *testing.T) {
	srvTLS, pool := smtptest.NewLocalCert(t)
	addr, db := serve(t, smtpd.Config{TLS: srvTLS}, 0)
	c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := stored(t, db, send(t, c, "a@example.org", "create@invite.test")); !m.TLS {
		t.Errorf("message over STARTTLS recorded as %+v", m)
	}
	// The last reply before the close is sent too (the listener holds
	// replies back, and tls.Conn.Close leaves an expired write deadline).
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT over STARTTLS: %v, want its 221", err)
	}
}

func TestIdleTimeout_OverTLS(t *testing.T) {
	srvTLS, pool := smtptest.NewLocalCert(t)
	addr, _ := serve(t, smtpd.Config{TLS: srvTLS, ReadTimeout: 200 * time.Millisecond}, 0)
	c := dialRaw(t, addr)
	c.replies(1)
	c.send("EHLO client.example\r\n")
	c.replies(1)
	c.send("STARTTLS\r\n")
	if got := c.replies(1)[0]; got != "220" {
		t.Fatalf("STARTTLS: %s", got)
	}
	tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tc) // the server's goodbye, then its close_notify
	if !strings.HasPrefix(string(b), "421") {
		t.Fatalf("idle TLS session got %q, want a 421 and a close", b)
	}
}

func TestIdleTimeout(t *testing.T) {
	addr, _ := serve(t, smtpd.Config{ReadTimeout: 200 * time.Millisecond}, 0)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn) // greeting, then the server's goodbye and close
	if !strings.Contains(string(b), "421") {
		t.Fatalf("idle connection got %q, want a 421 and a close", b)
	}
}

func TestLimits_ConnectionsMessagesHeader(t *testing.T) {
	addr, _ := serve(t, smtpd.Config{MaxConnsPerIP: 2, MaxMessagesPerConn: 2, MaxHeaderBytes: 1024}, 0)
	c1, c2 := dial(t, addr), dial(t, addr)
	if b := greeting(t, addr); !strings.HasPrefix(b, "421 4.7.0") {
		t.Errorf("third connection from one address got %q, want 421 4.7.0", b)
	}
	for i := range 2 {
		if err := c1.SendMail("a@example.org", []string{"create@invite.test"}, strings.NewReader(msg)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := c1.Mail("a@example.org", nil); code(err) != 451 || enhanced(err) != (smtp.EnhancedCode{4, 7, 0}) {
		t.Errorf("third message on a connection: %v, want 451 4.7.0", err)
	}
	big := strings.Repeat("X-Junk: "+strings.Repeat("j", 90)+"\r\n", 20) + msg
	if err := c2.SendMail("a@example.org", []string{"create@invite.test"}, strings.NewReader(big)); code(err) != 552 {
		t.Errorf("2 KB header with a 1 KB limit: %v, want 552", err)
	}
	c1.Close()
	c2.Close()
	// Slots are given back on close.
	eventuallyDial(t, addr)
}

// greeting is all a new connection to addr is sent before it is closed
// (or 5 s pass): a refusal.
func greeting(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

// eventually polls cond until it holds, failing the test after 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// eventuallyDial waits until a connection is let in (the server notices
// closed connections asynchronously).
func eventuallyDial(t *testing.T, addr string) {
	t.Helper()
	var err error
	eventually(t, "a connection let in after the others closed", func() bool {
		var c *smtp.Client
		if c, err = smtp.Dial(addr); err != nil {
			return false
		}
		defer c.Close()
		err = c.Hello("client.test")
		return err == nil
	})
}

func TestDataTimeout(t *testing.T) {
	addr, db := serve(t, smtpd.Config{DataTimeout: 200 * time.Millisecond}, 0)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<create@invite.test>\r\nDATA\r\nSubject: slow\r\n")
	// The server gives up on the DATA and answers 4xx.
	r := bufio.NewReader(conn)
	var got []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stalled DATA got %q and %v, want a 4xx", got, err)
		}
		got = append(got, line)
		if strings.HasPrefix(line, "451 ") || strings.HasPrefix(line, "421 ") {
			break
		}
	}
	if n := db.QueueLen(pipeline.StageParse); n != 0 {
		t.Errorf("a message cut short was queued")
	}
}

// TestData_SPFStoredWithEnvelope: the SPF check at DATA (real SPF records
// from a test resolver) is stored with the message it was made for.
func TestData_SPFStoredWithEnvelope(t *testing.T) {
	dns := dnstest.NewResolver()
	dns.Domain("example.org", "", "127.0.0.1")
	checker := &senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyAligned}
	addr, db := serve(t, smtpd.Config{CheckSPF: checker.SPFAtData}, 0)
	for from, want := range map[string]string{"a@example.org": "pass", "b@nospf.example": "none"} {
		m := stored(t, db, send(t, dial(t, addr), from, "create@invite.test"))
		_, domain, _ := strings.Cut(from, "@")
		if m.SPF != want || m.SPFDomain != domain {
			t.Errorf("MAIL FROM %s: stored SPF %q for %q, want %q for %q", from, m.SPF, m.SPFDomain, want, domain)
		}
	}
}

// TestData_BDAT: the listener offers CHUNKING (RFC 3030), which Exchange
// uses when offered; a message sent in BDAT chunks is stored byte for byte
// (no dot-unstuffing, a lone dot line is data) like one sent with DATA.
func TestData_BDAT(t *testing.T) {
	addr, db := serve(t, smtpd.Config{}, 0)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	// reply reads one reply, all its lines.
	reply := func() string {
		t.Helper()
		var all string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reply so far %q: %v", all, err)
			}
			all += line
			if len(line) < 4 || line[3] != '-' {
				return all
			}
		}
	}
	expect := func(cmd, want string) string {
		t.Helper()
		if cmd != "" {
			io.WriteString(conn, cmd)
		}
		got := reply()
		if !strings.HasPrefix(got, want) {
			t.Fatalf("after %q: %q, want %s", cmd, got, want)
		}
		return got
	}
	expect("", "220")
	if caps := expect("EHLO client.test\r\n", "250"); !strings.Contains(caps, "CHUNKING") {
		t.Fatalf("EHLO: %q does not offer CHUNKING", caps)
	}
	expect("MAIL FROM:<a@example.org>\r\n", "250")
	expect("RCPT TO:<create@invite.test>\r\n", "250")
	part1 := "From: a@example.org\r\nSubject: chunked\r\n\r\n.a dot line, not stuffed\r\n"
	part2 := ".\r\nafter a lone dot\r\n"
	expect(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1), "250")
	last := expect(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2), "250")
	_, id, ok := strings.Cut(strings.TrimSpace(last), "queued as ")
	if !ok {
		t.Fatalf("last chunk: %q", last)
	}
	var raw []byte
	if err := db.View(func(tx *store.Tx) (err error) { raw, err = tx.Raw(id); return err }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "Received: from ") || !strings.HasSuffix(string(raw), part1+part2) {
		t.Errorf("raw message:\n%q", raw)
	}
	if n := db.QueueLen(pipeline.StageParse); n != 1 {
		t.Errorf("parse queue %d, want 1", n)
	}

	// A client that ends its chunks with RSET aborts the message, not the
	// session: the next one goes on the same connection. (With DATA: a
	// BDAT straight after races, inside go-smtp 0.25.1, with the aborted
	// message's reader on the connection's dataResult.)
	expect("MAIL FROM:<a@example.org>\r\n", "250")
	expect("RCPT TO:<create@invite.test>\r\n", "250")
	expect(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1), "250")
	expect("RSET\r\n", "250")
	expect("MAIL FROM:<a@example.org>\r\n", "250")
	expect("RCPT TO:<create@invite.test>\r\n", "250")
	expect("DATA\r\n", "354")
	expect(part1+".\r\n", "250")
	if n := db.QueueLen(pipeline.StageParse); n != 2 {
		t.Errorf("parse queue %d, want 2", n)
	}
}
