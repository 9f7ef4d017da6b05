package smtptest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/smtptest"
)

const body = "From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServer_AcceptsMessage(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	c := dial(t, s.Addr)
	if err := c.SendMail("a@example.org", []string{"b@example.net", "c@example.net"}, strings.NewReader(body)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	msgs, err := s.Wait(testCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.From != "a@example.org" || strings.Join(m.To, ",") != "b@example.net,c@example.net" {
		t.Errorf("envelope = %q %q", m.From, m.To)
	}
	if string(m.Data) != body {
		t.Errorf("data = %q, want %q", m.Data, body)
	}
	if m.TLS || m.User != "" || m.Received.IsZero() {
		t.Errorf("TLS = %v, User = %q, Received = %v", m.TLS, m.User, m.Received)
	}
	if s.Count() != 1 || s.Sessions() != 1 {
		t.Errorf("Count = %d, Sessions = %d, want 1, 1", s.Count(), s.Sessions())
	}
}

func TestServer_Reject(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{
		Reject: func(from, rcpt string) error {
			switch {
			case rcpt == "bad@example.net":
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case rcpt == "" && from == "slow@example.org":
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
			}
			return nil
		},
	})
	c := dial(t, s.Addr)

	err := c.SendMail("a@example.org", []string{"bad@example.net"}, strings.NewReader(body))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("RCPT = %v, want 550", err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	err = c.SendMail("slow@example.org", []string{"b@example.net"}, strings.NewReader(body))
	if !errors.As(err, &se) || se.Code != 451 {
		t.Fatalf("DATA = %v, want 451", err)
	}
	if n := s.Count(); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
}

func TestServer_StartTLS(t *testing.T) {
	cfg, pool := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cfg})
	c, err := smtp.DialStartTLS(s.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"b@example.net"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v, want one over TLS", msgs)
	}
}

func TestServer_ImplicitTLS(t *testing.T) {
	cfg, pool := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cfg, ImplicitTLS: true})
	c, err := smtp.DialTLS(s.Addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"b@example.net"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v, want one over TLS", msgs)
	}
}

func TestServer_ImplicitTLSNeedsConfig(t *testing.T) {
	if _, err := smtptest.Start(smtptest.Options{ImplicitTLS: true}); err == nil {
		t.Fatal("Start without TLS config succeeded")
	}
}

func TestServer_Auth(t *testing.T) {
	cfg, pool := smtptest.NewLocalCert(t)
	s := smtptest.NewServer(t, smtptest.Options{TLS: cfg, Auth: map[string]string{"alice": "secret"}})
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	c, err := smtp.DialStartTLS(s.Addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *smtp.SMTPError
	if err := c.Mail("a@example.org", nil); !errors.As(err, &se) || se.Code != 502 {
		t.Fatalf("MAIL before AUTH = %v, want 502", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong")); !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("AUTH with a wrong password = %v, want 535", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.SendMail("a@example.org", []string{"b@example.net"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].User != "alice" {
		t.Fatalf("messages = %+v, want one from alice", msgs)
	}
}

func TestServer_Wait(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	errc := make(chan error, 1)
	go func() {
		c, err := smtp.Dial(s.Addr)
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		for range 3 {
			if err := c.SendMail("a@example.org", []string{"b@example.net"}, strings.NewReader(body)); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.Quit()
	}()
	msgs, err := s.Wait(testCtx(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Errorf("Wait returned %d messages, want 3", len(msgs))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Wait(ctx, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestServer_Discard(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{Discard: true})
	c := dial(t, s.Addr)
	for range 2 {
		if err := c.SendMail("a@example.org", []string{"b@example.net"}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.Wait(testCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 || s.Count() != 2 {
		t.Fatalf("got %d messages, Count = %d; want 0, 2", len(msgs), s.Count())
	}
}

func TestServer_CloseClientConnections(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	c := dial(t, s.Addr)
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	s.CloseClientConnections()
	if err := c.Noop(); err == nil {
		t.Fatal("NOOP on a dropped connection succeeded")
	}
	c2 := dial(t, s.Addr)
	if err := c2.SendMail("a@example.org", []string{"b@example.net"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if n := s.Sessions(); n != 2 {
		t.Errorf("Sessions = %d, want 2", n)
	}
}

func TestServer_CloseWithOpenClient(t *testing.T) {
	s, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr)
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // must not wait for the idle client
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestServer_CloseRightAfterStart(t *testing.T) {
	s, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestServer_WaitOpenConns(t *testing.T) {
	s := smtptest.NewServer(t, smtptest.Options{})
	c := dial(t, s.Addr)
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if n := s.OpenConns(); n != 1 {
		t.Fatalf("OpenConns = %d, want 1", n)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitOpenConns(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
}
