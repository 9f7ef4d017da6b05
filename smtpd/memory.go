package smtpd

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/invited/invited/internal/membudget"
)

// minRate is how fast, at the least, a message holding memory must keep
// arriving, after MemoryStall's grace.
const minRate = 32 << 10 // bytes a second: 10 MiB in 5 minutes

// readChunk is the most one read past membudget.Small asks for: a second's
// worth at minRate.
const readChunk = minRate

// messageReader reads a message's DATA (or BDAT chunks) into a buffer.
// Its first membudget.Small bytes it reads as they come (the connection
// limit bounds what those hold). Past them it takes memory from the budget
// for the whole message, in one go: twice the size the client declared
// (SIZE, as MTAs do; the buffer is made that size at once, and the queue
// commits a copy), else three times the largest allowed (a buffer that
// doubles as it grows may end twice as large as the message). Taken bit
// by bit, messages could each hold part of the budget and wait for more
// that only the others could give back. A message that outgrows what it
// took goes on only if the budget has the more free at once.
//
// Memory held is not left to a client that stalls: past a grace of
// MemoryStall the message must keep arriving at minRate on average, and
// no read (of readChunk bytes) may wait longer than MemoryStall and a
// second. A client that falls behind has its connection closed (a
// deadline would not do: BDAT chunks reach Data through a pipe that
// go-smtp feeds, and a reply to a message cut short would leave the rest
// of it to be read as commands). The timer that closes it and the reader
// settle which of them ends the read with one compare-and-swap: a message
// whose read the timer ended is never stored, and one the reader
// finished is never cut off.
type messageReader struct {
	r        io.Reader
	conn     net.Conn
	b        *membudget.Budget
	declared int64 // SIZE=, or 0
	largest  int64 // the largest message allowed
	wait     time.Duration
	stall    time.Duration
	ctx      context.Context

	first    io.LimitedReader // the first membudget.Small bytes (a field: no allocation of its own)
	n        int64            // bytes read
	held     int64
	taken    time.Time // when the memory was taken
	n0       int64     // bytes read by then
	progress time.Time // when a read last returned bytes
	drop     *time.Timer
	state    atomic.Int32 // reading, finished or dropped
}

// messageReader states, past membudget.Small bytes.
const (
	reading int32 = iota
	finished
	dropped
)

// readInto reads the message into buf, after what buf holds.
func (mr *messageReader) readInto(buf *bytes.Buffer) error {
	mr.first = io.LimitedReader{R: mr.r, N: membudget.Small + 1}
	n, err := buf.ReadFrom(&mr.first)
	mr.n = n
	if err != nil || mr.first.N > 0 { // an error, or the whole message
		return err
	}
	if mr.b == nil {
		_, err := buf.ReadFrom(mr.r)
		return err
	}
	declared := mr.declared > mr.n // a SIZE below what came already says nothing
	want := 3 * mr.largest
	room := mr.declared + mr.declared/16 + 4<<10
	if declared {
		want = 2 * room
	}
	ctx, cancel := context.WithTimeout(mr.ctx, mr.wait)
	defer cancel()
	if mr.held, err = mr.b.Acquire(ctx, want); err != nil {
		return errNoMemory
	}
	if g := int(room) - buf.Len(); declared && g > 0 {
		buf.Grow(g)
	}
	mr.taken, mr.n0, mr.progress = time.Now(), mr.n, time.Now()
	mr.drop = time.AfterFunc(mr.stall, func() {
		if mr.state.CompareAndSwap(reading, dropped) {
			mr.conn.Close()
		}
	})
	_, err = buf.ReadFrom(mr)
	mr.drop.Stop()
	if !mr.state.CompareAndSwap(reading, finished) {
		// Dropped: closed before Data returns, whatever the timer has
		// done yet, so the client hears nothing more, and the message,
		// whole or not, is not stored.
		mr.conn.Close()
		return errTooSlow
	}
	return err
}

// Read reads on past the first membudget.Small bytes, at most readChunk
// at a time (go-smtp's reader fills all it is given before it returns).
func (mr *messageReader) Read(p []byte) (int, error) {
	if mr.state.Load() != reading {
		return 0, errTooSlow
	}
	if len(p) > readChunk {
		p = p[:readChunk]
	}
	// The buffer is what has been read plus the room being read into; the
	// copy committed, what has been read.
	if need := 2*mr.n + int64(len(p)); need > mr.held && mr.held < mr.b.Max() {
		got, ok := mr.b.TryAcquire(min(need, mr.b.Max()) - mr.held)
		if !ok {
			return 0, errNoMemory
		}
		mr.held += got
	}
	due := mr.taken.Add(mr.stall + time.Duration(mr.n-mr.n0+int64(len(p)))*(time.Second/minRate))
	if last := mr.progress.Add(mr.stall + time.Second); last.Before(due) {
		due = last
	}
	mr.drop.Reset(time.Until(due))
	n, err := mr.r.Read(p)
	if n > 0 {
		mr.n += int64(n)
		mr.progress = time.Now()
	}
	return n, err
}

// release gives back the memory taken.
func (mr *messageReader) release() {
	mr.b.Release(mr.held)
	mr.held = 0
}
