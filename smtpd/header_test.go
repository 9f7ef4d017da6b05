package smtpd

import (
	"strings"
	"testing"
)

func TestHeaderLen(t *testing.T) {
	body := strings.Repeat("x", 200) + "\r\n\r\nmore\r\n"
	for _, c := range []struct {
		name, data  string
		limit, want int
	}{
		{"CRLF", "A: 1\r\nB: 2\r\n\r\nbody\r\n", 100, 12},
		{"bare LF, a CRLF blank line later in the body", "A: 1\nB: 2\n\n" + body, 100, 10},
		{"no body", "A: 1\r\nB: 2\r\n", 100, 12},
		{"past the limit", strings.Repeat("A: 1\r\n", 40) + "\r\n", 100, 101},
		{"at the limit", "A: 1\r\n\r\n", 6, 6},
	} {
		if got := headerLen([]byte(c.data), c.limit); got != c.want {
			t.Errorf("%s: headerLen = %d, want %d", c.name, got, c.want)
		}
	}
}
