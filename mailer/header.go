package mailer

import (
	"bytes"
	"strings"
)

// messageID returns the value of msg's Message-ID header field without the
// angle brackets, or "" when the header has none. It reads only the header
// section and unfolds continuation lines.
func messageID(msg []byte) string {
	rest := msg
	for len(rest) > 0 {
		var line []byte
		line, rest = cutLine(rest)
		if len(line) == 0 {
			return "" // end of the header section
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("Message-ID")) {
			continue
		}
		v := string(value)
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			line, rest = cutLine(rest)
			v += string(line)
		}
		v = strings.TrimSpace(v)
		v = strings.TrimPrefix(v, "<")
		v, _, _ = strings.Cut(v, ">")
		return strings.TrimSpace(v)
	}
	return ""
}

// cutLine splits b after its first line, dropping the CRLF or LF.
func cutLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}
