// Package smtptest runs a real SMTP server on 127.0.0.1 for tests and
// benchmarks of outbound mail, the way net/http/httptest does for HTTP.
//
// The server is github.com/emersion/go-smtp on a loopback listener. It accepts
// everything unless told otherwise through Options, keeps the messages it
// accepted in memory (or only counts them, with Options.Discard), and can
// offer STARTTLS, implicit TLS and AUTH PLAIN.
package smtptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// shutdownTimeout bounds how long Close waits for connection handlers.
const shutdownTimeout = 5 * time.Second

// Message is one message the server accepted.
type Message struct {
	From     string
	To       []string
	Data     []byte // exactly as received after dot-unstuffing; nil with Options.Discard
	Received time.Time
	TLS      bool   // the session ran over TLS (STARTTLS or implicit)
	User     string // the AUTH user name, "" without AUTH
}

// Options tweak the server's behaviour. The zero value accepts everything
// over plain SMTP without authentication.
type Options struct {
	// Reject, when set, is called for each RCPT and for DATA (with rcpt == ""
	// then). A non-nil error is returned to the client: a *smtp.SMTPError as
	// is (use it for 4xx and 5xx answers), any other error as a 451.
	Reject func(from, rcpt string) error

	// RejectMail, when set, is called for each MAIL FROM; a non-nil error is
	// returned to the client like Reject's.
	RejectMail func(from string) error

	// TLS, when set, makes the server offer STARTTLS (see LocalCert).
	TLS *tls.Config

	// ImplicitTLS makes the listener speak TLS from the first byte, as on
	// port 465 (smtps). It needs TLS.
	ImplicitTLS bool

	// Auth maps user names to passwords. When set, AUTH PLAIN is offered and
	// required before MAIL. Like real servers, AUTH is only offered over TLS,
	// unless TLS is nil: then it is allowed in the clear.
	Auth map[string]string

	// Discard makes the server count messages without keeping them, for
	// benchmarks: Messages returns nothing, Count still counts.
	Discard bool
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	Addr string // host:port it listens on

	opts     Options
	srv      *smtp.Server
	ln       net.Listener
	serveErr chan error // receives Serve's result once
	errLog   *errorLog

	mu       sync.Mutex
	msgs     []Message
	count    int
	sessions int
	conns    map[*trackedConn]struct{}
	closing  bool
	notify   chan struct{} // closed and cleared on a new message or closed connection; nil without waiters

	closeOnce sync.Once
	closeErr  error
}

// Start starts a server on 127.0.0.1:0. Call Close when done.
func Start(opts Options) (*Server, error) {
	if opts.ImplicitTLS && opts.TLS == nil {
		return nil, errors.New("smtptest: ImplicitTLS needs Options.TLS")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen: %w", err)
	}
	s := &Server{
		Addr:     ln.Addr().String(),
		opts:     opts,
		serveErr: make(chan error, 1),
		errLog:   &errorLog{},
		conns:    make(map[*trackedConn]struct{}),
	}
	var l net.Listener = &listener{Listener: ln, s: s}
	if opts.ImplicitTLS {
		l = tls.NewListener(l, opts.TLS)
	}

	s.srv = smtp.NewServer(&backend{s: s})
	s.srv.Domain = "smtptest.invalid"
	s.srv.TLSConfig = opts.TLS
	s.srv.AllowInsecureAuth = opts.Auth != nil && opts.TLS == nil
	s.srv.ErrorLog = s.errLog
	s.ln = l

	go func() { s.serveErr <- s.srv.Serve(l) }()
	return s, nil
}

// NewServer starts a server for the duration of the test. Cleanup closes it
// and fails the test if serving failed; go-smtp's error log goes to t.Log.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.errLog.setLogf(t.Logf)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("smtptest: %v", err)
		}
	})
	return s
}

// Close stops the server: it stops listening, drops every client connection
// (as a crashing relay would), waits for their handlers and returns the
// error that ended serving, if any. Later calls return the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		conns := s.takeConnsLocked()
		s.mu.Unlock()
		closeAll(conns)

		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		errShutdown := s.srv.Shutdown(ctx)
		if errShutdown != nil {
			errShutdown = fmt.Errorf("smtptest: shutdown: %w", errShutdown)
		}
		// We own the listener: closing it also frees a Serve that had not
		// registered it with go-smtp yet when Shutdown ran.
		_ = s.ln.Close()
		var errServe error
		if err := <-s.serveErr; err != nil {
			errServe = fmt.Errorf("smtptest: serve: %w", err)
		}
		s.errLog.setLogf(nil)
		s.closeErr = errors.Join(errServe, errShutdown)
	})
	return s.closeErr
}

// CloseClientConnections closes every open client connection and keeps
// listening, like a relay that drops idle sessions. Clients see the next
// command fail.
func (s *Server) CloseClientConnections() {
	s.mu.Lock()
	conns := s.takeConnsLocked()
	s.mu.Unlock()
	closeAll(conns)
}

// Messages returns a copy of the list of accepted messages, oldest first.
// The messages share their To and Data with the server: do not modify them.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count returns the number of messages accepted so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Sessions returns the number of TCP connections accepted so far.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Wait blocks until at least n messages were accepted, then returns them as
// Messages does (nothing with Options.Discard). It returns early with an
// error wrapping ctx.Err() when ctx ends.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	var msgs []Message
	err := s.waitFor(ctx, func() bool {
		if s.count < n {
			return false
		}
		msgs = append([]Message(nil), s.msgs...)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("smtptest: waiting for %d messages, have %d: %w", n, s.Count(), err)
	}
	return msgs, nil
}

// OpenConns returns the number of client connections open now.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitOpenConns blocks until at most n client connections are open, for
// example to see a client close its idle connections. It returns early with
// an error wrapping ctx.Err() when ctx ends.
func (s *Server) WaitOpenConns(ctx context.Context, n int) error {
	err := s.waitFor(ctx, func() bool { return len(s.conns) <= n })
	if err != nil {
		return fmt.Errorf("smtptest: waiting for at most %d open connections, have %d: %w", n, s.OpenConns(), err)
	}
	return nil
}

// waitFor blocks until cond, called with s.mu held, returns true.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		if s.notify == nil {
			s.notify = make(chan struct{})
		}
		ch := s.notify
		s.mu.Unlock()

		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// changedLocked wakes the waiters.
func (s *Server) changedLocked() {
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
}

// accept records one message and wakes waiters.
func (s *Server) accept(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if !s.opts.Discard {
		s.msgs = append(s.msgs, m)
	}
	s.changedLocked()
}

func (s *Server) takeConnsLocked() []*trackedConn {
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

func closeAll(conns []*trackedConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// listener counts and tracks the connections it accepts.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &trackedConn{Conn: nc, s: l.s}
	l.s.mu.Lock()
	l.s.sessions++
	closing := l.s.closing
	if !closing {
		l.s.conns[c] = struct{}{}
	}
	l.s.mu.Unlock()
	if closing {
		_ = nc.Close() // accepted while Close runs: go-smtp sees a dead connection
	}
	return c, nil
}

// trackedConn removes itself from the server's set when closed.
type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.changedLocked()
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// errorLog adapts go-smtp's Logger to t.Logf, and drops lines once the test
// is over (a late handler must not log after the test returned).
type errorLog struct {
	mu   sync.Mutex
	logf func(format string, args ...any)
}

func (l *errorLog) setLogf(f func(format string, args ...any)) {
	l.mu.Lock()
	l.logf = f
	l.mu.Unlock()
}

func (l *errorLog) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logf != nil {
		l.logf("smtptest: "+format, v...)
	}
}

func (l *errorLog) Println(v ...any) {
	l.Printf("%s", fmt.Sprintln(v...))
}
