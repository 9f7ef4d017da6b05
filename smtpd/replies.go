package smtpd

import (
	"net"
	"sync"
	"time"
)

// maxHeldReplies bounds the replies a replyConn holds back: past it they
// go out at once.
const maxHeldReplies = 4 << 10

// replyConn holds back what the session writes until it next reads from
// the connection, the moment it has nothing left to do but wait for the
// client. A client that pipelines (RFC 2920: MAIL, RCPT and DATA in one
// go, as Gmail, Exchange and Postfix do) thus gets the replies to the
// group in one segment, and the daemon makes one write for them rather
// than one per reply. A client that waits for each reply sees no change:
// go-smtp reads right after it replies. Close sends what is held.
type replyConn struct {
	net.Conn

	mu   sync.Mutex
	held []byte
	err  error // of the last write of held replies
}

func (c *replyConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.held)+len(p) > maxHeldReplies {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxHeldReplies {
			return c.Conn.Write(p)
		}
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

func (c *replyConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// closeFlushTimeout bounds the write of the replies held at Close.
const closeFlushTimeout = time.Second

// Close sends the replies held (a 221, a 421) and closes. The write gets
// its own deadline: over TLS, tls.Conn.Close has just set the deadline to
// now, after handing its close_notify to Write. A Close from another
// goroutine while a write is under way (a client not reading) does not
// wait for it: closing the connection is what ends that write.
func (c *replyConn) Close() error {
	if c.mu.TryLock() {
		c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		c.flushLocked()
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

func (c *replyConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *replyConn) flushLocked() error {
	if len(c.held) == 0 || c.err != nil {
		return c.err
	}
	_, c.err = c.Conn.Write(c.held)
	c.held = c.held[:0]
	return c.err
}
