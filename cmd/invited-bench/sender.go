package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// lockstep makes every sender wait for each reply before the next
// command, as Postfix's smtp-source does, rather than pipeline.
var lockstep bool

// sender is one SMTP session reused for many messages. When the server
// offers PIPELINING it sends MAIL, RCPT and DATA in one write and reads
// their three replies after, as Gmail, Exchange and Postfix do (RFC
// 2920); with lockstep, or without the extension, it waits for each.
type sender struct {
	addr string
	from string
	rcpt string
	// declareSize has MAIL FROM say the message's size (SIZE=, RFC 1870),
	// as MTAs do.
	declareSize bool

	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	pipeline bool
}

// sendResult is the outcome of one message.
type sendResult struct {
	ID       string        // queue id from the 250 answer, if any
	Latency  time.Duration // MAIL to the answer of DATA
	Done     time.Time     // when the 250 arrived
	Deferred bool          // a 4xx answer
	Err      error         // any failure, including Deferred
}

// send delivers msg, redialing once if the session broke.
func (s *sender) send(msg []byte) sendResult {
	start := time.Now()
	id, err := s.try(msg)
	var se *smtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		// A broken connection: start a new session and try once more.
		s.close()
		start = time.Now()
		id, err = s.try(msg)
	}
	r := sendResult{ID: id, Latency: time.Since(start), Done: time.Now(), Err: err}
	if errors.As(err, &se) && se.Code/100 == 4 {
		r.Deferred = true
	}
	if err != nil && !errors.As(err, &se) {
		s.close()
	}
	return r
}

func (s *sender) try(msg []byte) (string, error) {
	if s.conn == nil {
		if err := s.dial(); err != nil {
			return "", err
		}
	}
	// A server that stops answering fails the message, not the run.
	s.conn.SetDeadline(time.Now().Add(sendTimeout))
	mail := "MAIL FROM:<" + s.from + ">"
	if s.declareSize {
		mail += " SIZE=" + strconv.Itoa(len(msg))
	}
	cmds := []string{mail, "RCPT TO:<" + s.rcpt + ">", "DATA"}
	ok := []func(code int) bool{is2xx, is2xx, func(code int) bool { return code == 354 }}
	var refused error
	for i, cmd := range cmds {
		s.w.WriteString(cmd + "\r\n")
		if !s.pipeline || i == len(cmds)-1 {
			if err := s.w.Flush(); err != nil {
				return "", err
			}
			// Read the replies to what was sent since the last flush.
			first := 0
			if !s.pipeline {
				first = i
			}
			var code int
			for j := first; j <= i; j++ {
				var text string
				var err error
				if code, text, err = s.reply(); err != nil {
					return "", err
				}
				if !ok[j](code) && refused == nil {
					refused = &smtp.SMTPError{Code: code, Message: text}
				}
			}
			if refused != nil {
				if code == 354 {
					// The server took DATA although it refused MAIL or
					// the one RCPT: end the message there, empty.
					s.w.WriteString(".\r\n")
					if err := s.w.Flush(); err != nil {
						return "", err
					}
					if _, _, err := s.reply(); err != nil {
						return "", err
					}
				}
				return "", s.reset(refused)
			}
		}
	}
	s.w.Write(dotStuff(msg))
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		s.w.WriteString("\r\n")
	}
	s.w.WriteString(".\r\n")
	if err := s.w.Flush(); err != nil {
		return "", err
	}
	code, text, err := s.reply()
	if err != nil {
		return "", err
	}
	if !is2xx(code) {
		return "", &smtp.SMTPError{Code: code, Message: text}
	}
	_, id, _ := strings.Cut(text, "queued as ")
	return strings.TrimSpace(id), nil
}

// dial opens the session: greeting, EHLO, and whether it may pipeline.
func (s *sender) dial() error {
	c, err := net.DialTimeout("tcp", s.addr, sendTimeout)
	if err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(sendTimeout))
	s.conn, s.r, s.w = c, bufio.NewReader(c), bufio.NewWriterSize(c, 8<<10)
	if code, text, err := s.reply(); err != nil || code != 220 {
		s.close()
		return fmt.Errorf("greeting: %d %s %v", code, text, err)
	}
	s.w.WriteString("EHLO bench.example\r\n")
	if err := s.w.Flush(); err != nil {
		s.close()
		return err
	}
	code, text, err := s.reply()
	if err != nil || code != 250 {
		s.close()
		return fmt.Errorf("EHLO: %d %s %v", code, text, err)
	}
	s.pipeline = !lockstep && strings.Contains(strings.ToUpper(text), "\nPIPELINING")
	return nil
}

// reply reads one reply, its lines joined by newlines.
func (s *sender) reply() (int, string, error) {
	var text strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, "", fmt.Errorf("short reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, "", fmt.Errorf("reply line %q: %v", line, err)
		}
		if text.Len() > 0 {
			text.WriteByte('\n')
		}
		if len(line) > 4 {
			text.WriteString(line[4:])
		}
		if len(line) == 3 || line[3] != '-' {
			return code, text.String(), nil
		}
	}
}

// reset ends a refused transaction, keeping the session, and returns err.
func (s *sender) reset(err error) error {
	s.w.WriteString("RSET\r\n")
	if ferr := s.w.Flush(); ferr != nil {
		return ferr
	}
	if _, _, rerr := s.reply(); rerr != nil {
		return rerr
	}
	return err
}

func (s *sender) close() {
	if s.conn != nil {
		s.w.WriteString("QUIT\r\n")
		s.w.Flush()
		s.conn.Close()
		s.conn = nil
	}
}

// sendTimeout bounds one message's conversation.
const sendTimeout = time.Minute

func is2xx(code int) bool { return code/100 == 2 }

// dotStuff doubles the dot that begins a line (RFC 5321 section 4.5.2).
func dotStuff(msg []byte) []byte {
	if !bytes.HasPrefix(msg, []byte(".")) && !bytes.Contains(msg, []byte("\n.")) {
		return msg
	}
	out := bytes.ReplaceAll(msg, []byte("\n."), []byte("\n.."))
	if bytes.HasPrefix(out, []byte(".")) {
		out = append([]byte("."), out...)
	}
	return out
}
