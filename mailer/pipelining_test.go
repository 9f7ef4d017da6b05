package mailer_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/mailer"
)

// startScripted is a relay that answers by a script rather than by the
// rules go-smtp follows, to show how the client orders its commands and
// copes with a relay that breaks them. It serves one connection: greets,
// answers EHLO with the keywords, and hands the rest to serve, whose
// result (the lines it saw, or what was wrong) arrives on the channel.
func startScripted(t *testing.T, keywords []string, serve func(br *bufio.Reader, w io.Writer) ([]string, error)) (addr string, done <-chan scriptResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan scriptResult, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			ch <- scriptResult{err: err}
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(nc)
		ehlo := "250-scripted\r\n"
		for i, k := range keywords {
			sep := "-"
			if i == len(keywords)-1 {
				sep = " "
			}
			ehlo += "250" + sep + k + "\r\n"
		}
		if _, err := io.WriteString(nc, "220 scripted ESMTP\r\n"); err != nil {
			ch <- scriptResult{err: err}
			return
		}
		if line, err := readLine(br); err != nil || !strings.HasPrefix(line, "EHLO ") {
			ch <- scriptResult{err: fmt.Errorf("first command %q, %v; want EHLO", line, err)}
			return
		}
		if _, err := io.WriteString(nc, ehlo); err != nil {
			ch <- scriptResult{err: err}
			return
		}
		lines, err := serve(br, nc)
		ch <- scriptResult{lines, err}
	}()
	return ln.Addr().String(), ch
}

type scriptResult struct {
	lines []string
	err   error
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// readLines reads n lines.
func readLines(br *bufio.Reader, n int) ([]string, error) {
	var lines []string
	for range n {
		line, err := readLine(br)
		if err != nil {
			return lines, err
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// readMessage reads the data up to the lone dot, which it leaves out.
func readMessage(br *bufio.Reader) ([]string, error) {
	var lines []string
	for {
		line, err := readLine(br)
		if err != nil || line == "." {
			return lines, err
		}
		lines = append(lines, line)
	}
}

// takeMessage reads the message that follows a 354, adds its lines to
// lines, and queues it.
func takeMessage(br *bufio.Reader, w io.Writer, lines []string) ([]string, error) {
	msg, err := readMessage(br)
	lines = append(lines, msg...)
	if err != nil {
		return lines, err
	}
	_, err = io.WriteString(w, "250 2.0.0 queued\r\n")
	return lines, err
}

func scriptResultOf(t *testing.T, done <-chan scriptResult) []string {
	t.Helper()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("relay saw %q, then: %v", r.lines, r.err)
		}
		return r.lines
	case <-time.After(10 * time.Second):
		t.Fatal("the scripted relay did not finish")
		return nil
	}
}

// A relay offering PIPELINING gets MAIL, RCPT and DATA before it answers
// any of them, MAIL with the parameters go-mail gives it unpipelined. This one waits for all three: a client waiting for the
// reply to MAIL first would time out.
func TestRelay_PipelinesOneRecipient(t *testing.T) {
	addr, done := startScripted(t, []string{"PIPELINING", "8BITMIME", "SMTPUTF8"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
		lines, err := readLines(br, 3)
		if err != nil {
			return lines, err
		}
		if _, err := io.WriteString(w, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"); err != nil {
			return lines, err
		}
		return takeMessage(br, w, lines)
	})
	r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: 2 * time.Second})
	if err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	lines := scriptResultOf(t, done)
	want := []string{"MAIL FROM:<" + from + "> BODY=8BITMIME SMTPUTF8", "RCPT TO:<a@example.net>", "DATA", "Message-ID: <msg-1@invited.test>"}
	if len(lines) < len(want) || !slices.Equal(lines[:len(want)], want) {
		t.Errorf("relay received %q, want it to start with %q", lines, want)
	}
	if got, want := lines[len(lines)-2:], []string{"..", "\tlast line of 1, no stuffing needed"}; !slices.Equal(got, want) {
		t.Errorf("message ends %q, want %q (dot-stuffed)", got, want)
	}
}

// Without the keyword, each command waits for its reply.
func TestRelay_NoPipeliningUnlessOffered(t *testing.T) {
	addr, done := startScripted(t, []string{"8BITMIME"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
		var lines []string
		for _, reply := range []string{"250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead"} {
			line, err := readLine(br)
			if err != nil {
				return lines, err
			}
			lines = append(lines, line)
			if br.Buffered() > 0 {
				return lines, fmt.Errorf("more came after %q before its reply", line)
			}
			if _, err := io.WriteString(w, reply+"\r\n"); err != nil {
				return lines, err
			}
		}
		if _, err := readMessage(br); err != nil {
			return lines, err
		}
		_, err := io.WriteString(w, "250 2.0.0 queued\r\n")
		return lines, err
	})
	r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: 2 * time.Second})
	if err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if lines := scriptResultOf(t, done); len(lines) != 3 || lines[2] != "DATA" {
		t.Errorf("relay received %q, want MAIL, RCPT, DATA", lines)
	}
}

// A relay that refuses the recipient and still answers DATA with 354 gets
// no message: the client closes the connection instead, and the refusal
// is permanent.
func TestRelay_DataOpenedAfterRefusalSendsNothing(t *testing.T) {
	addr, done := startScripted(t, []string{"PIPELINING"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
		if _, err := readLines(br, 3); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"); err != nil {
			return nil, err
		}
		after, err := readMessage(br)
		if len(after) > 0 || !errors.Is(err, io.EOF) {
			return after, fmt.Errorf("after the 354: %v, want the connection closed with nothing sent", err)
		}
		return nil, nil
	})
	r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: 2 * time.Second})
	err := r.Send(testCtx(t), from, []string{"gone@example.net"}, testMessage(1))
	var pe *mailer.PermanentError
	if !errors.As(err, &pe) || pe.Code != 550 || !slices.Equal(pe.Recipients, []string{"gone@example.net"}) {
		t.Fatalf("Send = %v, want a PermanentError 550 for gone@example.net", err)
	}
	scriptResultOf(t, done)
}

// A reply code outside 2xx-5xx to RCPT is a broken relay, not a refusal:
// a temporary error, like any protocol error, and never a nil one.
func TestRelay_PipelinedOddReplyCode(t *testing.T) {
	addr, done := startScripted(t, []string{"PIPELINING"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
		lines, err := readLines(br, 3)
		if err != nil {
			return lines, err
		}
		_, err = io.WriteString(w, "250 ok\r\n650 what\r\n503 no recipients\r\n")
		return lines, err
	})
	r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: 2 * time.Second})
	err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	if err == nil || mailer.IsPermanent(err) || !strings.Contains(err.Error(), "650") {
		t.Fatalf("Send = %v, want a temporary error naming the 650", err)
	}
	scriptResultOf(t, done)
}

// A relay without PIPELINING that refuses the one recipient: the refusal
// is classified as with go-smtp's (which always offers PIPELINING), and
// the transaction is reset, not the message sent.
func TestRelay_UnpipelinedRefusals(t *testing.T) {
	for _, tt := range []struct {
		reply     string
		permanent bool
	}{
		{"550 5.1.1 no such user", true},
		{"451 4.3.0 try later", false},
	} {
		t.Run(tt.reply[:3], func(t *testing.T) {
			addr, done := startScripted(t, []string{"8BITMIME"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
				var lines []string
				for _, reply := range []string{"250 2.1.0 ok", tt.reply, "250 2.0.0 reset"} {
					line, err := readLine(br)
					if err != nil {
						return lines, err
					}
					lines = append(lines, line)
					if _, err := io.WriteString(w, reply+"\r\n"); err != nil {
						return lines, err
					}
				}
				return lines, nil
			})
			r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: 2 * time.Second})
			err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
			if err == nil || mailer.IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.reply[:3]) {
				t.Fatalf("Send = %v, want permanent %v naming %s", err, tt.permanent, tt.reply[:3])
			}
			if lines := scriptResultOf(t, done); len(lines) != 3 || lines[2] != "RSET" {
				t.Errorf("relay received %q, want MAIL, RCPT, RSET", lines)
			}
		})
	}
}

// Pipelined, each of the three replies still gets the whole timeout, as
// unpipelined: a relay slow to answer every command (here 600 ms each,
// against a timeout of 1 s) is not cut off for being slow in all.
func TestRelay_PipelinedRepliesEachGetTheTimeout(t *testing.T) {
	const timeout, pause = time.Second, 600 * time.Millisecond
	addr, done := startScripted(t, []string{"PIPELINING"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
		lines, err := readLines(br, 3)
		if err != nil {
			return lines, err
		}
		for _, reply := range []string{"250 2.1.0 ok\r\n", "250 2.1.5 ok\r\n", "354 go ahead\r\n"} {
			time.Sleep(pause) // a slow relay, not a wait for our own work
			if _, err := io.WriteString(w, reply); err != nil {
				return lines, err
			}
		}
		return takeMessage(br, w, lines)
	})
	r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: timeout})
	if err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1)); err != nil {
		t.Fatalf("Send to a relay answering each command within the timeout: %v", err)
	}
	if lines := scriptResultOf(t, done); len(lines) < 4 || lines[2] != "DATA" {
		t.Errorf("relay received %q", lines)
	}
}

// A relay that takes the pipelined commands and never answers fails the
// send for now (to be retried), after the timeout rather than never.
func TestRelay_PipelinedSilentRelayTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr, done := startScripted(t, []string{"PIPELINING"}, func(br *bufio.Reader, w io.Writer) ([]string, error) {
		lines, err := readLines(br, 3)
		if err != nil {
			return lines, err
		}
		// Silent until the client gives up and closes the connection.
		_, err = br.ReadString('\n')
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return lines, err
	})
	r := newRelay(t, mailer.Config{URL: "smtp://" + addr, Timeout: timeout})
	start := time.Now()
	err := r.Send(testCtx(t), from, []string{"a@example.net"}, testMessage(1))
	took := time.Since(start)
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("Send to a silent relay = %v, want an error for now", err)
	}
	if took < timeout || took > 10*timeout {
		t.Errorf("Send gave up after %v, want about the timeout (%v) or a retry's twice that", took, timeout)
	}
	if lines := scriptResultOf(t, done); len(lines) != 3 || lines[2] != "DATA" {
		t.Errorf("relay received %q, want MAIL, RCPT and DATA", lines)
	}
}
