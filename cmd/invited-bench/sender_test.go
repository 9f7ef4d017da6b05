package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/smtptest"
)

func TestSender(t *testing.T) {
	refuse := &smtp.SMTPError{Code: 450, Message: "mailbox busy"}
	srv := smtptest.NewServer(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if rcpt == "busy@example.net" {
			return refuse
		}
		return nil
	}})
	// Lines that begin with a dot, first and inside, go through stuffed.
	msgs := []string{
		"Subject: one\r\n\r\nhello\r\n",
		".Subject: dot first\r\n\r\n.\r\n..two\r\n",
		"Subject: no line end at the end\r\n\r\nthree",
	}
	for _, step := range []bool{false, true} {
		lockstep = step
		t.Cleanup(func() { lockstep = false })
		s := &sender{addr: srv.Addr, from: "a@example.org", rcpt: "b@example.net"}
		for _, m := range msgs {
			if r := s.send([]byte(m)); r.Err != nil {
				t.Fatalf("lockstep %v: %v", step, r.Err)
			}
		}
		if s.pipeline == step {
			t.Errorf("lockstep %v: pipelining %v", step, s.pipeline)
		}
		// A refused recipient is a 4xx for this message only: the session
		// goes on with the next.
		busy := &sender{addr: srv.Addr, from: "a@example.org", rcpt: "busy@example.net", conn: s.conn, r: s.r, w: s.w, pipeline: s.pipeline}
		r := busy.send([]byte(msgs[0]))
		var se *smtp.SMTPError
		if !r.Deferred || !errors.As(r.Err, &se) || se.Code != 450 {
			t.Errorf("lockstep %v: refused recipient: %+v", step, r)
		}
		if r := s.send([]byte(msgs[0])); r.Err != nil {
			t.Fatalf("lockstep %v: after a refusal: %v", step, r.Err)
		}
		s.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := srv.Wait(ctx, 2*(len(msgs)+1))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		want := msgs[i%(len(msgs)+1)%len(msgs)]
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
		}
		if string(m.Data) != want {
			t.Errorf("message %d:\n got %q\nwant %q", i, m.Data, want)
		}
	}
	if n := srv.Sessions(); n != 2 {
		t.Errorf("%d sessions, want 2 (one per client, kept after the refusal)", n)
	}
}

// TestMain makes the test binary the sink, as main does the bench's.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == sinkArg {
		if err := runSink(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSmtpCeiling_SinkInItsOwnProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := func() []byte { return []byte("Subject: x\r\n\r\nbody\r\n") }
	var samples []smtpSample
	for range 2 {
		s, err := smtpCeiling(ctx, 2, 200*time.Millisecond, msg)
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, s)
	}
	f := smtpFigureOf(samples)
	if f.Rounds != 2 || f.Messages != samples[0].load.OK+samples[1].load.OK || f.Latency.N != int(f.Messages) {
		t.Errorf("two rounds summed up as %+v", f)
	}
	if f.Messages == 0 || f.PerSecond <= 0 {
		t.Errorf("nothing measured: %+v", f)
	}
	// The sink's CPU is its own, measured apart from this process's.
	if f.CPUPerMsgUS <= 0 {
		t.Errorf("no CPU measured for the sink: %+v", f)
	}
}

func TestSender_Replies(t *testing.T) {
	s := &sender{r: bufio.NewReader(strings.NewReader("250\r\n250-first\r\n250 second\r\n251 will forward\r\nxyz\r\n"))}
	for _, want := range []struct {
		code int
		text string
	}{{250, ""}, {250, "first\nsecond"}, {251, "will forward"}} {
		code, text, err := s.reply()
		if err != nil || code != want.code || text != want.text {
			t.Errorf("reply: %d %q %v, want %d %q", code, text, err, want.code, want.text)
		}
	}
	if _, _, err := s.reply(); err == nil {
		t.Error("a line with no code read as a reply")
	}
}
