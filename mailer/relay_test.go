package mailer_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/mailer"
)

var (
	_ mailer.Sender = (*mailer.Relay)(nil)
	_ mailer.Sender = (*mailer.Outbox)(nil)
)

const from = "rsvp+abc@invited.test"

// testMessage is a CRLF message whose body has lines that need dot-stuffing.
func testMessage(i int) []byte {
	return fmt.Appendf(nil, "Message-ID: <msg-%d@invited.test>\r\n"+
		"From: Invited <rsvp+abc@invited.test>\r\n"+
		"To: attendee@example.net\r\n"+
		"Subject: Invitation %d\r\n"+
		"\r\n"+
		".a line starting with a dot\r\n"+
		"..two dots\r\n"+
		".\r\n"+
		"\tlast line of %d, no stuffing needed\r\n", i, i, i)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newRelay(t *testing.T, cfg mailer.Config) *mailer.Relay {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.HELO == "" {
		cfg.HELO = "invited.test"
	}
	r, err := mailer.NewRelay(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func smtpURL(s *smtptest.Server) string { return "smtp://" + s.Addr }

func rejectRcpt(code int, enhanced smtp.EnhancedCode, rcpts ...string) func(from, rcpt string) error {
	return func(_, rcpt string) error {
		if slices.Contains(rcpts, rcpt) {
			return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: "go away"}
		}
		return nil
	}
}

func TestRelay_ConcurrentSendsArriveIntact(t *testing.T) {
	const n, workers, conns = 200, 16, 4
	s := smtptest.NewServer(t, smtptest.Options{})
	r, err := mailer.NewRelay(mailer.Config{URL: smtpURL(s), Conns: conns, HELO: "invited.test"},
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	ctx := testCtx(t)
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				to := fmt.Sprintf("attendee%d@example.net", i)
				if err := r.Send(ctx, from, []string{to}, testMessage(i)); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	msgs, err := s.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("server got %d messages, want %d", len(msgs), n)
	}
	seen := make(map[string]bool)
	for _, m := range msgs {
		var i int
		if _, err := fmt.Sscanf(m.To[0], "attendee%d@example.net", &i); err != nil {
			t.Fatalf("unexpected recipient %q", m.To)
		}
		if want := testMessage(i); string(m.Data) != string(want) {
			t.Errorf("message %d arrived as\n%q\nwant\n%q", i, m.Data, want)
		}
		if m.From != from || len(m.To) != 1 || seen[m.To[0]] {
			t.Errorf("message %d: envelope %q → %q (duplicate: %v)", i, m.From, m.To, seen[m.To[0]])
		}
		seen[m.To[0]] = true
	}
	if got := s.Sessions(); got > conns {
		t.Errorf("server saw %d connections, want at most %d", got, conns)
	}
}

func TestRelay_LineEndings(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	ctx := testCtx(t)
	if err := r.Send(ctx, from, []string{"a@example.net"}, []byte("Subject: bare LF\n\n.body\nno final newline")); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(msgs[0].Data), "Subject: bare LF\r\n\r\n.body\r\nno final newline\r\n"; got != want {
		t.Errorf("received %q, want %q", got, want)
	}
}

func TestRelay_RejectedRecipientIsPermanent(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{Reject: rejectRcpt(550, smtp.EnhancedCode{5, 1, 1}, "nobody@example.net")})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	ctx := testCtx(t)

	err := r.Send(ctx, from, []string{"nobody@example.net"}, testMessage(1))
	var pe *mailer.PermanentError
	if !errors.As(err, &pe) || !mailer.IsPermanent(err) {
		t.Fatalf("Send = %v, want a PermanentError", err)
	}
	if pe.Code != 550 || !strings.Contains(pe.Message, "5.1.1") || !slices.Equal(pe.Recipients, []string{"nobody@example.net"}) {
		t.Errorf("PermanentError = %+v, want 550 5.1.1 for nobody@example.net", pe)
	}
	if !strings.Contains(err.Error(), "nobody@example.net") || !strings.HasPrefix(err.Error(), "mailer: ") {
		t.Errorf("Error() = %q", err)
	}

	// The connection survives a refusal.
	if err := r.Send(ctx, from, []string{"somebody@example.net"}, testMessage(2)); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 || s.Sessions() != 1 {
		t.Errorf("Count = %d, Sessions = %d; want 1, 1", s.Count(), s.Sessions())
	}
}

func TestRelay_TemporaryRefusalIsNotPermanent(t *testing.T) {
	tests := []struct {
		name   string
		reject func(from, rcpt string) error
	}{
		{"RCPT", rejectRcpt(451, smtp.EnhancedCode{4, 3, 0}, "busy@example.net")},
		{"DATA", rejectRcpt(452, smtp.EnhancedCode{4, 3, 1}, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smtptest.NewServer(t, smtptest.Options{Reject: tt.reject})
			r := newRelay(t, mailer.Config{URL: smtpURL(s)})
			err := r.Send(testCtx(t), from, []string{"busy@example.net"}, testMessage(1))
			if err == nil || mailer.IsPermanent(err) || !strings.Contains(err.Error(), "4.3.") {
				t.Fatalf("Send = %v, want a temporary 4xx error", err)
			}
			if s.Count() != 0 {
				t.Errorf("server accepted %d messages", s.Count())
			}
		})
	}
}

func TestRelay_PermanentRefusalAtData(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{Reject: rejectRcpt(554, smtp.EnhancedCode{5, 6, 0}, "")})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	var pe *mailer.PermanentError
	if !errors.As(err, &pe) || pe.Code != 554 || pe.Recipients != nil {
		t.Fatalf("Send = %#v, want a PermanentError 554 for the message", err)
	}
}

// A relay refusing our sender refuses its configuration, not the message:
// the error must stay temporary so messages wait for the fix.
func TestRelay_SenderRefusedIsTemporary(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{RejectMail: func(string) error {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender address not verified"}
	}})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	if err == nil || mailer.IsPermanent(err) || !strings.Contains(err.Error(), "554") {
		t.Fatalf("Send = %v, want a temporary error naming the 554", err)
	}
}

func TestRelay_SomeRecipientsRefused(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{Reject: rejectRcpt(550, smtp.EnhancedCode{5, 1, 1}, "gone@example.net")})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	ctx := testCtx(t)

	to := []string{"a@example.net", "gone@example.net", "b@example.net"}
	err := r.Send(ctx, from, to, testMessage(1))
	var pe *mailer.PermanentError
	if !errors.As(err, &pe) || pe.Code != 550 || !slices.Equal(pe.Recipients, []string{"gone@example.net"}) {
		t.Fatalf("Send = %v, want a PermanentError naming gone@example.net", err)
	}
	msgs, err := s.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := msgs[0].To; !slices.Equal(got, []string{"a@example.net", "b@example.net"}) {
		t.Errorf("delivered to %q, want the two accepted recipients", got)
	}
}

func TestRelay_TemporaryRecipientHoldsMessage(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{Reject: func(_, rcpt string) error {
		switch rcpt {
		case "gone@example.net":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "gone"}
		case "full@example.net":
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	to := []string{"a@example.net", "gone@example.net", "full@example.net"}
	err := r.Send(testCtx(t), from, to, testMessage(1))
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
	if s.Count() != 0 {
		t.Errorf("server accepted %d messages, want none", s.Count())
	}
}

func TestRelay_ServerDownIsTemporary(t *testing.T) {
	s, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, mailer.Config{URL: smtpURL(s)})
	err = r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
}

func TestRelay_UsesSTARTTLS(t *testing.T) {
	cert, pool := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cert})
	r := newRelay(t, mailer.Config{URL: smtpURL(s), TLSConfig: &tls.Config{RootCAs: pool}})
	if err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v, want one over TLS", msgs)
	}
}

func TestRelay_UntrustedCertificateFails(t *testing.T) {
	cert, _ := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cert})
	r := newRelay(t, mailer.Config{URL: smtpURL(s)}) // system roots: our certificate is unknown
	err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
	if s.Count() != 0 {
		t.Error("message was sent in the clear after the TLS handshake failed")
	}
}

func TestRelay_ImplicitTLS(t *testing.T) {
	cert, pool := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cert, ImplicitTLS: true})
	r := newRelay(t, mailer.Config{URL: "smtps://" + s.Addr, TLSConfig: &tls.Config{RootCAs: pool}})
	if err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v, want one over TLS", msgs)
	}
}

func TestRelay_Auth(t *testing.T) {
	const user, pass = "relay-user@invited.test", "p@ss:w/rd %"
	cert, pool := smtptest.NewLocalCert(t)
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicitTLS=%v", implicit), func(t *testing.T) {
			s := smtptest.NewServer(t, smtptest.Options{TLS: cert, ImplicitTLS: implicit, Auth: map[string]string{user: pass}})
			scheme := "smtp"
			if implicit {
				scheme = "smtps"
			}
			u := url.URL{Scheme: scheme, User: url.UserPassword(user, pass), Host: s.Addr}
			r := newRelay(t, mailer.Config{URL: u.String(), TLSConfig: &tls.Config{RootCAs: pool}})
			if err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1)); err != nil {
				t.Fatal(err)
			}
			if msgs := s.Messages(); len(msgs) != 1 || msgs[0].User != user {
				t.Fatalf("messages = %+v, want one sent as %s", msgs, user)
			}
		})
	}
}

func TestRelay_AuthWrongPasswordIsTemporary(t *testing.T) {
	cert, pool := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: map[string]string{"alice": "secret"}})
	r := newRelay(t, mailer.Config{URL: "smtp://alice:wrong@" + s.Addr, TLSConfig: &tls.Config{RootCAs: pool}})
	err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	// The relay refused the connection, not the message: the message must
	// wait for the configuration to be fixed, not be dropped.
	if err == nil || mailer.IsPermanent(err) || !strings.Contains(err.Error(), "535") {
		t.Fatalf("Send = %v, want a temporary error naming the 535", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q shows the password", err)
	}
	if err := s.WaitOpenConns(testCtx(t), 0); err != nil {
		t.Errorf("the failed connection stays open: %v", err)
	}
}

func TestRelay_ReplacesDeadConnection(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	r := newRelay(t, mailer.Config{URL: smtpURL(s), Conns: 1})
	ctx := testCtx(t)
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatal(err)
	}
	s.CloseClientConnections() // the relay drops our idle session
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(2)); err != nil {
		t.Fatalf("Send on a dead pooled connection: %v", err)
	}
	if s.Count() != 2 || s.Sessions() != 2 {
		t.Errorf("Count = %d, Sessions = %d; want 2, 2", s.Count(), s.Sessions())
	}
}

func TestRelay_ClosesIdleConnections(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	r := newRelay(t, mailer.Config{URL: smtpURL(s), IdleTimeout: 10 * time.Millisecond})
	ctx := testCtx(t)
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitOpenConns(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(2)); err != nil {
		t.Fatal(err)
	}
	if s.Sessions() != 2 {
		t.Errorf("Sessions = %d, want 2", s.Sessions())
	}
}

func TestRelay_CancelAborts(t *testing.T) {
	inData := make(chan struct{}, 1)
	release := make(chan struct{})
	s := smtptest.NewServer(t, smtptest.Options{Reject: func(_, rcpt string) error {
		if rcpt == "" {
			inData <- struct{}{}
			<-release
		}
		return nil
	}})
	t.Cleanup(func() { close(release) }) // before the server's cleanup
	r := newRelay(t, mailer.Config{URL: smtpURL(s), Conns: 1})

	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-inData
		cancel()
	}()
	err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(1))
	if !errors.Is(err, context.Canceled) || mailer.IsPermanent(err) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}

	// The only slot is free again, and a cancelled context stops Send early.
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context = %v", err)
	}
}

func TestRelay_WaitsForAFreeConnection(t *testing.T) {
	inData := make(chan struct{}, 1)
	release := make(chan struct{})
	s := smtptest.NewServer(t, smtptest.Options{Reject: func(_, rcpt string) error {
		if rcpt == "" {
			inData <- struct{}{}
			<-release
		}
		return nil
	}})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's cleanup, even when the test fails early
	r := newRelay(t, mailer.Config{URL: smtpURL(s), Conns: 1})
	ctx := testCtx(t)

	first := make(chan error, 1)
	go func() { first <- r.Send(ctx, from, []string{"a@example.net"}, testMessage(1)) }()
	<-inData // the first Send holds the only connection

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := r.Send(short, from, []string{"b@example.net"}, testMessage(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Send = %v, want context.DeadlineExceeded", err)
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatalf("first Send: %v", err)
	}
	if s.Sessions() != 1 {
		t.Errorf("Sessions = %d, want 1", s.Sessions())
	}
}

func TestRelay_Close(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	r, err := mailer.NewRelay(mailer.Config{URL: smtpURL(s), HELO: "invited.test"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitOpenConns(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(ctx, from, []string{"a@example.net"}, testMessage(2)); !errors.Is(err, mailer.ErrClosed) || mailer.IsPermanent(err) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRelay_BadEnvelopeIsPermanent(t *testing.T) {
	r := newRelay(t, mailer.Config{URL: "smtp://127.0.0.1:1"}) // never dialled
	tests := []struct {
		from string
		to   []string
	}{
		{from, nil},
		{from, []string{""}},
		{from, []string{"a@example.net\r\nRCPT TO:<b@example.net>"}},
		{"<a@example.org>", []string{"a@example.net"}},
	}
	for _, tt := range tests {
		if err := r.Send(testCtx(t), tt.from, tt.to, testMessage(1)); !mailer.IsPermanent(err) {
			t.Errorf("Send(%q, %q) = %v, want a PermanentError", tt.from, tt.to, err)
		}
	}
}

func TestNewRelay_BadConfig(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"", "empty"},
		{"http://relay.example.org", `scheme "http"`},
		{"relay.example.org:25", "scheme"},
		{"smtp://", "no host"},
		{"smtp:relay.example.org", "no host"},
		{"smtp://:25", "no host"},
		{"smtp://relay.example.org:0", "bad port"},
		{"smtp://relay.example.org:70000", "bad port"},
		{"smtp://user:secret@relay.example.org:x", "port"},
		{"smtp://relay.example.org/inbox", "path"},
		{"smtp://relay.example.org?tls=1", "query"},
		{"smtp://:secret@relay.example.org", "user name"},
	}
	for _, tt := range tests {
		_, err := mailer.NewRelay(mailer.Config{URL: tt.url}, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "mailer: ") {
			t.Errorf("NewRelay(%q) = %v, want an error about %s", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("NewRelay(%q) error %q shows the password", tt.url, err)
		}
	}
}

func TestNewRelay_GoodConfig(t *testing.T) {
	for _, u := range []string{
		"smtp://relay.example.org",
		"SMTP://relay.example.org:587/",
		"smtps://user:p%40ss@relay.example.org",
		"smtp://[::1]:2525",
	} {
		r, err := mailer.NewRelay(mailer.Config{URL: u}, nil)
		if err != nil {
			t.Errorf("NewRelay(%q): %v", u, err)
			continue
		}
		r.Close()
	}
}
