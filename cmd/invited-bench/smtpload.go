package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// requestTemplate is a real Gmail invitation (testdata/imip) made into a
// template: each message gets its own UID and Message-ID, the organizer
// is chosen per load, and the text part is padded to the wanted size.
type requestTemplate struct{ slots }

// slots is a message with holes (NUL bytes in the text it was made
// from), which fill fills in order.
type slots [][]byte

func newSlots(s string) slots {
	var t slots
	for _, p := range strings.Split(s, "\x00") {
		t = append(t, []byte(p))
	}
	return t
}

// fill returns the message with vals in its holes.
func (t slots) fill(vals ...string) []byte {
	n := 0
	for _, p := range t {
		n += len(p)
	}
	for _, v := range vals {
		n += len(v)
	}
	out := make([]byte, 0, n)
	for i, p := range t {
		out = append(out, p...)
		if i < len(vals) {
			out = append(out, vals[i]...)
		}
	}
	return out
}

const (
	templateFile = "google-request-inline-textcalendar.eml"
	templateUID  = "69d4c40b4a274636bf23517938df9673@example.org"
	templateOrg  = "alice@example.org"
	templateMsg  = "<imip-testing-1234@example.org>"
	templateText = "SW1pcCBUZXN0aW5nICh0ZXh0L3BsYWluKQo="
)

// readCRLF reads file of dir with CRLF line ends, checking that it holds
// each of must.
func readCRLF(dir, file string, must ...string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "", err
	}
	s := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")
	for _, m := range must {
		if !strings.Contains(s, m) {
			return "", fmt.Errorf("%s: no %q in it", file, m)
		}
	}
	return s, nil
}

// loadTemplate reads the request from dir and sizes it to about size bytes
// with organizer as the ORGANIZER and From.
func loadTemplate(dir, organizer string, size int) (*requestTemplate, error) {
	s, err := readCRLF(dir, templateFile, templateUID, templateOrg, templateMsg, templateText)
	if err != nil {
		return nil, err
	}
	s = strings.ReplaceAll(s, templateOrg, organizer)
	s = strings.Replace(s, templateMsg, "<\x00>", 1)
	s = strings.Replace(s, templateUID, "\x00", 1)
	uidLen := len("bench-000000-0000000@example.org")
	s = padText(s, size, uidLen+len(".msg")+uidLen)
	return &requestTemplate{newSlots(s)}, nil
}

// padText pads the base64 text/plain part of s (templateText) so that s
// is about size bytes once its holes hold filled bytes: the size of a
// real client's invitation comes mostly from its text and HTML bodies.
func padText(s string, size, filled int) string {
	base := len(s) - len(templateText) - strings.Count(s, "\x00") + filled
	const text = "Imip Testing (text/plain)\n"
	const line = "Benchmark padding line, as long as a line of an invitation's text part.\n"
	// The fewest lines that make it size: from an estimate a little short
	// (base64 is 4 bytes for 3, plus a CRLF for each 76), one at a time.
	encoded := func(lines int) int {
		n := 4 * ((len(text) + lines*len(line) + 2) / 3)
		return n + 2*((n-1)/76)
	}
	lines := max(0, ((size-base)*3/4*76/78-len(text))/len(line)-1)
	for base+encoded(lines) < size {
		lines++
	}
	enc := wrap76(base64.StdEncoding.EncodeToString([]byte(text + strings.Repeat(line, lines))))
	return strings.Replace(s, templateText, enc, 1)
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76])
		b.WriteString("\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// message returns the message with calendar UID uid.
func (t *requestTemplate) message(uid string) []byte {
	// The Message-ID comes before the UID in the file.
	return t.fill(uid+".msg", uid)
}

// uidSource hands out calendar UIDs unique to this run.
type uidSource struct {
	prefix string
	n      atomic.Int64
}

func newUIDSource(run, phase string) *uidSource {
	return &uidSource{prefix: "bench-" + run + "-" + phase + "-"}
}

func (u *uidSource) next() string {
	return fmt.Sprintf("%s%07d@example.org", u.prefix, u.n.Add(1))
}

// loadResult sums up a closed-loop SMTP run.
type loadResult struct {
	Sessions  int
	Elapsed   time.Duration
	OK        int64
	Deferred  int64
	Errors    int64
	FirstErr  error
	Latencies []time.Duration // of the messages answered 250
	IDs       []string
}

// Rate is messages answered 250 per second.
func (r loadResult) Rate() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// mergeLoads sums up runs at one session count as if they were one.
func mergeLoads(rs []loadResult) loadResult {
	var m loadResult
	for _, r := range rs {
		m.Sessions = r.Sessions
		m.Elapsed += r.Elapsed
		m.OK += r.OK
		m.Deferred += r.Deferred
		m.Errors += r.Errors
		if m.FirstErr == nil {
			m.FirstErr = r.FirstErr
		}
		m.Latencies = append(m.Latencies, r.Latencies...)
		m.IDs = append(m.IDs, r.IDs...)
	}
	return m
}

// closedLoop sends messages as fast as possible over sessions concurrent
// SMTP sessions, each a copy of proto, for d (after a short warm-up that
// opens the sessions), each session waiting for one answer before sending
// the next message.
func closedLoop(ctx context.Context, proto sender, sessions int, d time.Duration,
	msg func() []byte, keepIDs bool) loadResult {
	var (
		mu      sync.Mutex
		res     = loadResult{Sessions: sessions}
		ready   sync.WaitGroup
		startCh = make(chan struct{})
		wg      sync.WaitGroup
	)
	var deadline time.Time
	ready.Add(sessions)
	for range sessions {
		wg.Go(func() {
			s := proto
			defer s.close()
			// Warm-up: open the session with one message not counted.
			s.send(msg())
			ready.Done()
			<-startCh
			var lats []time.Duration
			var ids []string
			var ok, deferred, failed int64
			var firstErr error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				r := s.send(msg())
				switch {
				case r.Err == nil:
					ok++
					lats = append(lats, r.Latency)
					if keepIDs {
						ids = append(ids, r.ID)
					}
				case r.Deferred:
					deferred++
				default:
					failed++
					if firstErr == nil {
						firstErr = r.Err
					}
					if failed > 100 {
						return
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.OK += ok
			res.Deferred += deferred
			res.Errors += failed
			if res.FirstErr == nil {
				res.FirstErr = firstErr
			}
			res.Latencies = append(res.Latencies, lats...)
			res.IDs = append(res.IDs, ids...)
		})
	}
	ready.Wait()
	start := time.Now()
	deadline = start.Add(d)
	close(startCh)
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}
