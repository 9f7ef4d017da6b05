package smtpd

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"
)

// A Close from another goroutine does not wait behind a write the client
// is not reading: it ends that write.
func TestReplyConn_CloseDoesNotWaitForAStuckWrite(t *testing.T) {
	server, client := net.Pipe() // writes block until the other end reads
	defer client.Close()
	c := &replyConn{Conn: server}
	server.SetWriteDeadline(time.Now().Add(time.Minute))
	wrote := make(chan error, 1)
	go func() {
		// Past maxHeldReplies: written at once, and stuck.
		_, err := c.Write(bytes.Repeat([]byte("x"), maxHeldReplies+1))
		wrote <- err
	}()
	// The write holds the lock once it is under way.
	deadline := time.Now().Add(10 * time.Second)
	for c.mu.TryLock() {
		c.mu.Unlock()
		runtime.Gosched()
		if time.Now().After(deadline) {
			t.Fatal("the write never started")
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the stuck write")
	}
	if err := <-wrote; err == nil {
		t.Error("the stuck write succeeded after Close")
	}
}
