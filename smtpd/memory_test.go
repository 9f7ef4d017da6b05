package smtpd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/smtpd"
	"github.com/invited/invited/store"
)

// sendSized sends body to create@, declaring size (SIZE=) unless it is 0.
func sendSized(c *smtp.Client, body string, size int64) (string, error) {
	return trySend(c, "a@example.org", body, size, "create@invite.test")
}

// largeBody is a message of about size bytes, lines of letter.
func largeBody(letter string, size int) string {
	return fmt.Sprintf("From: a@example.org\r\nSubject: %d bytes\r\n\r\n", size) +
		strings.Repeat(strings.Repeat(letter, 70)+"\r\n", size/72)
}

// exactBody is a message of exactly size bytes.
func exactBody(size int) string {
	b := largeBody("e", size-200)
	last := "X-Pad: " + strings.Repeat("p", size-len(b)-len("X-Pad: \r\n")) + "\r\n"
	return strings.Replace(b, "\r\n\r\n", "\r\n"+last+"\r\n", 1)
}

// storedWhole fails unless message id holds body after our trace header.
func storedWhole(t *testing.T, db *store.DB, id, body string) {
	t.Helper()
	var raw []byte
	if err := db.View(func(tx *store.Tx) (err error) { raw, err = tx.Raw(id); return err }); err != nil {
		t.Fatalf("message %q: %v", id, err)
	}
	if !strings.HasPrefix(string(raw), "Received: from ") || !strings.HasSuffix(string(raw), body) || len(raw) > len(body)+300 {
		t.Errorf("message %s stored as %d bytes, sent %d", id, len(raw), len(body))
	}
}

// A message over membudget.Small bytes is read past them only with memory
// from the budget: one that finds none free for MemoryWait is answered
// 451 4.3.1 (its sender retries) and nothing of it is stored, whether its
// size was declared or not. Smaller messages still go, however close to
// the bound, and the large one goes once memory is free.
func TestData_MemoryBudget(t *testing.T) {
	mem := membudget.New(1 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem, MemoryWait: 200 * time.Millisecond}, 0)
	c := dial(t, addr)
	held, _ := mem.Acquire(context.Background(), 1<<20)
	big := largeBody("b", 200<<10)
	for _, size := range []int64{0, int64(len(big))} {
		_, err := sendSized(c, big, size)
		if code(err) != 451 || enhanced(err) != (smtp.EnhancedCode{4, 3, 1}) {
			t.Errorf("a %d-byte message (SIZE=%d) with no memory free: %v, want 451 4.3.1", len(big), size, err)
		}
	}
	small := []string{msg}
	for _, size := range []int{20 << 10, 40 << 10, 60 << 10, membudget.Small - 1, membudget.Small} {
		small = append(small, exactBody(size))
	}
	for _, body := range small {
		for _, size := range []int64{0, int64(len(body))} {
			if id, err := sendSized(c, body, size); err != nil {
				t.Errorf("a %d-byte message (SIZE=%d) with no memory free: %v", len(body), size, err)
			} else {
				storedWhole(t, db, id, body)
			}
		}
	}
	if n := db.QueueLen(pipeline.StageParse); n != int64(2*len(small)) {
		t.Errorf("%d messages queued, want the %d small ones only", n, 2*len(small))
	}
	if s := mem.Stats(); s.Refused != 2 {
		t.Errorf("budget stats %+v, want 2 refused", s)
	}

	mem.Release(held)
	for _, size := range []int64{0, int64(len(big))} {
		id, err := sendSized(c, big, size)
		if err != nil {
			t.Fatalf("a %d-byte message (SIZE=%d) with memory free: %v", len(big), size, err)
		}
		storedWhole(t, db, id, big)
		// Given back before the 250.
		if s := mem.Stats(); s.Held != 0 {
			t.Errorf("budget stats after the 250: %+v", s)
		}
	}
}

// Large messages that do not all fit wait their turn rather than each
// holding part of the budget: many at once all go, and what they hold
// never passes the budget. One that says its size takes about twice it
// (its buffer and the copy committed); one that does not, three times the
// largest allowed, here the whole budget.
func TestData_MemoryBudgetShared(t *testing.T) {
	mem := membudget.New(1 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem, MaxMessageBytes: 400 << 10}, 0)
	type sent struct {
		body, id string
		err      error
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []sent
	)
	for i := range 8 {
		wg.Go(func() {
			body := largeBody(string(rune('a'+i)), (150+20*i)<<10)
			size := int64(0)
			if i%2 == 0 {
				size = int64(len(body)) + 100
			}
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			id, err := sendSized(c, body, size)
			mu.Lock()
			out = append(out, sent{body, id, err})
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, s := range out {
		if s.err != nil {
			t.Errorf("a %d-byte message: %v", len(s.body), s.err)
			continue
		}
		storedWhole(t, db, s.id, s.body)
	}
	if s := mem.Stats(); s.Held != 0 || s.Peak != s.Max || s.Refused != 0 {
		t.Errorf("budget stats %+v: want nothing held, the whole budget taken at the peak, none refused", s)
	}
}

// A message of a declared size takes twice that, not the most allowed.
func TestData_MemoryBudgetDeclared(t *testing.T) {
	mem := membudget.New(10 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem, MaxMessageBytes: 4 << 20}, 0)
	body := largeBody("d", 300<<10)
	id, err := sendSized(dial(t, addr), body, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	storedWhole(t, db, id, body)
	if s := mem.Stats(); s.Peak < 2*int64(len(body)) || s.Peak > 3*int64(len(body)) {
		t.Errorf("a %d-byte message declared took %d at the peak, want about twice its size", len(body), s.Peak)
	}
}

func TestLimits_ConnectionsInAll(t *testing.T) {
	addr, _ := serve(t, smtpd.Config{MaxConns: 2}, 0)
	c1, c2 := dial(t, addr), dial(t, addr)
	for _, c := range []*smtp.Client{c1, c2} {
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
	}
	if b := greeting(t, addr); !strings.HasPrefix(b, "421 4.3.2") {
		t.Errorf("third connection of two allowed got %q, want 421 4.3.2", b)
	}
	c1.Close()
	eventuallyDial(t, addr)
}

// A message that outgrows the size it declared goes on only if the budget
// has the more it needs free at once; else it is answered 451 4.3.1, and
// the refusal is counted.
func TestData_MemoryBudgetUndersized(t *testing.T) {
	mem := membudget.New(1 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem}, 0)
	c := dial(t, addr)
	body := largeBody("u", 300<<10)
	held, _ := mem.Acquire(context.Background(), 512<<10)
	_, err := sendSized(c, body, 100<<10)
	if code(err) != 451 || enhanced(err) != (smtp.EnhancedCode{4, 3, 1}) {
		t.Errorf("a %d-byte message that said SIZE=%d, with too little memory free: %v, want 451 4.3.1", len(body), 100<<10, err)
	}
	if s := mem.Stats(); s.Refused != 1 || s.Held != 512<<10 {
		t.Errorf("budget stats %+v, want 1 refused and only the test's memory held", s)
	}
	mem.Release(held)
	id, err := sendSized(c, body, 100<<10)
	if err != nil {
		t.Fatalf("the same with the memory free: %v", err)
	}
	storedWhole(t, db, id, body)
}

// A client that stops sending a message while it holds memory loses it
// once it falls behind: its connection is closed (whatever it sends after
// is never read as commands), the memory is given back and nothing is
// stored. The same in the middle of a BDAT chunk, which reaches Data
// through a pipe; and after a fast start, which banks no more than
// MemoryStall and a second of silence.
func TestData_MemoryStall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bdat       bool
		sent, size int
	}{
		{"data", false, 80 << 10, 300000},
		{"bdat mid-chunk", true, 80 << 10, 300000},
		{"data after a fast start", false, 600 << 10, 1000000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := membudget.New(1 << 20)
			addr, db := serve(t, smtpd.Config{Memory: mem, MemoryStall: 100 * time.Millisecond}, 0)
			c := dialRaw(t, addr)
			c.replies(1)
			c.send(fmt.Sprintf("EHLO client.example\r\nMAIL FROM:<a@example.org> SIZE=%d\r\nRCPT TO:<create@invite.test>\r\n", tc.size))
			c.replies(3)
			part := largeBody("t", tc.sent) // past membudget.Small, then nothing
			if tc.bdat {
				c.send(fmt.Sprintf("BDAT %d\r\n%s", tc.size, part))
			} else {
				c.send("DATA\r\n")
				c.replies(1)
				c.send(part)
			}
			// Closed (or reset, with bytes unread), with no reply, well
			// before the 18 s that 600 KiB would bank at minRate.
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(c.r); len(b) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("a stalled large message got %q, %v; want the connection closed", b, err)
			}
			eventually(t, "the memory given back", func() bool { return mem.Stats().Held == 0 })
			if s := mem.Stats(); s.Peak == 0 {
				t.Errorf("budget stats %+v: want memory taken, then given back", s)
			}
			if n := db.QueueLen(pipeline.StageParse); n != 0 {
				t.Errorf("%d messages queued", n)
			}
		})
	}
}

// A SIZE smaller than what has come already says nothing: the message
// takes memory as if it had said none.
func TestData_MemoryUnderdeclared(t *testing.T) {
	mem := membudget.New(64 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem, MaxMessageBytes: 1 << 20}, 0)
	body := largeBody("z", 100<<10)
	id, err := sendSized(dial(t, addr), body, 1000)
	if err != nil {
		t.Fatalf("a %d-byte message that said SIZE=1000: %v", len(body), err)
	}
	storedWhole(t, db, id, body)
	if s := mem.Stats(); s.Peak != 3<<20 {
		t.Errorf("took %d at the peak, want three times the largest message allowed", s.Peak)
	}
}

// A client slower than the network but faster than minRate keeps its
// memory to the end: what it may lag by grows with the bytes it sent.
func TestData_MemorySlowClientGoes(t *testing.T) {
	mem := membudget.New(4 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem, MemoryStall: 100 * time.Millisecond}, 0)
	body := largeBody("w", 200<<10)
	c := dialRaw(t, addr)
	c.replies(1)
	c.send(fmt.Sprintf("EHLO client.example\r\nMAIL FROM:<a@example.org> SIZE=%d\r\nRCPT TO:<create@invite.test>\r\nDATA\r\n", len(body)))
	c.replies(4)
	// 8 KiB every 100 ms, 80 KiB a second: past membudget.Small, 1.7 s,
	// longer than MemoryStall and a second.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for rest := body; rest != ""; <-tick.C {
		n := min(len(rest), 8<<10)
		c.send(rest[:n])
		rest = rest[n:]
	}
	c.send(".\r\n")
	line, err := c.r.ReadString('\n')
	_, id, ok := strings.Cut(strings.TrimSpace(line), "queued as ")
	if err != nil || !strings.HasPrefix(line, "250 ") || !ok {
		t.Fatalf("a message sent at 80 KiB/s got %q, %v", line, err)
	}
	storedWhole(t, db, id, body)
}

// A BDAT message given up (RSET) while it waits for memory stops waiting
// at once, instead of holding its place in the budget's queue for
// MemoryWait; nothing of it is stored, and the connection goes on.
func TestData_MemoryWaitGivenUp(t *testing.T) {
	mem := membudget.New(1 << 20)
	addr, db := serve(t, smtpd.Config{Memory: mem, MemoryWait: time.Minute}, 0)
	held, _ := mem.Acquire(context.Background(), 1<<20)
	defer mem.Release(held)
	c := dialRaw(t, addr)
	c.replies(1)
	c.send("EHLO client.test\r\n")
	c.replies(1)
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<create@invite.test>\r\n")
	c.replies(2)
	// One byte more than is read without memory: the whole chunk is read,
	// and the message then waits for the rest of its memory.
	chunk := exactBody(membudget.Small + 1)
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	if got := c.replies(1)[0]; got != "250" {
		t.Fatalf("reply to the chunk: %s", got)
	}
	eventually(t, "waiting for memory", func() bool { return mem.Stats().Waiting == 1 })
	c.send("RSET\r\n")
	if got := c.replies(1)[0]; got != "250" {
		t.Fatalf("reply to RSET: %s", got)
	}
	eventually(t, "done waiting", func() bool { return mem.Stats().Waiting == 0 })
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<create@invite.test>\r\nDATA\r\n")
	c.replies(3)
	c.send(msg + ".\r\n")
	if got := c.replies(1)[0]; got != "250" {
		t.Fatalf("reply to the next message: %s", got)
	}
	if n := countMessages(t, db); n != 1 {
		t.Errorf("%d messages stored, want the last one only", n)
	}
	if s := mem.Stats(); s.Held != 1<<20 || s.Refused != 0 {
		t.Errorf("budget stats %+v, want only the test's hold", s)
	}
}
