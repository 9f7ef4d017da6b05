package itip

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"
)

// go-ical leaves TEXT values (RFC 5545 section 3.3.11) to its Text and
// SetText methods, which are too strict for what clients send (Text refuses
// "\r" and splits at every unescaped comma) and too lax for what we send
// (SetText keeps CR and control characters). These helpers do that part.

// unescapeText decodes a TEXT value (RFC 5545 section 3.3.11) tolerantly:
// \n and \N are newlines, \\ \; \, are literal, the "\r\n" that some clients
// (Thunderbird, OBM) write becomes one newline, and any other escaped
// character stands for itself.
func unescapeText(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'n', 'N':
			b.WriteByte('\n')
		case 'r', 'R':
			if i+2 < len(s) && s[i+1] == '\\' && (s[i+2] == 'n' || s[i+2] == 'N') {
				i += 2
			}
			b.WriteByte('\n')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeText encodes s as a TEXT value: backslash, semicolon and comma are
// escaped, any line break becomes \n, other control characters but tab are
// dropped, and invalid UTF-8 is replaced.
func escapeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', ';', ',':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString(`\n`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteByte(c)
		default:
			if c < 0x20 || c == 0x7f {
				continue
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// decodeCaret decodes RFC 6868 parameter value encoding, which go-ical does
// not: ^n newline, ^^ caret, ^' double quote. Other carets stay.
func decodeCaret(s string) string {
	if strings.IndexByte(s, '^') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '^' && i+1 < len(s) {
			switch s[i+1] {
			case 'n', 'N':
				b.WriteByte('\n')
				i++
				continue
			case '^':
				b.WriteByte('^')
				i++
				continue
			case '\'':
				b.WriteByte('"')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// paramText makes s safe as a parameter value for go-ical's encoder, which
// quotes values holding ':' ';' or ',' itself but refuses '"': no control
// characters, '"' replaced by an apostrophe, and a caret that RFC 6868 would
// read as an escape doubled.
func paramText(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(stripControls(s), `"`, "'"))
	if strings.IndexByte(s, '^') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '^' && i+1 < len(s) && strings.IndexByte("nN'^", s[i+1]) >= 0 {
			b.WriteByte('^')
		}
	}
	return b.String()
}

// stripControls removes every ASCII control character (CR and LF included)
// and replaces invalid UTF-8; it is used for values that may not contain
// line breaks at all.
func stripControls(s string) string {
	return dropControls(strings.ToValidUTF8(s, "\uFFFD"), "")
}

// cleanText is for decoded TEXT that we hand to callers: valid UTF-8, no
// control characters but tab and newline.
func cleanText(s string) string {
	return dropControls(strings.ToValidUTF8(s, "\uFFFD"), "\t\n")
}

// dropControls drops the ASCII control characters and DEL of s but those
// in keep, returning s itself when it has none to drop.
func dropControls(s, keep string) string {
	drop := func(c byte) bool { return (c < 0x20 || c == 0x7f) && strings.IndexByte(keep, c) < 0 }
	for i := 0; i < len(s); i++ { // bytes: every control character is one
		if drop(s[i]) {
			return strings.Map(func(r rune) rune {
				if r < 0x80 && drop(byte(r)) {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// foldLimit is the longest line, in octets without CRLF, RFC 5545 section
// 3.1 allows.
const foldLimit = 75

// A foldWriter folds the CRLF-terminated content lines written to it at
// foldLimit octets, never inside a UTF-8 sequence (RFC 5545 section 3.1),
// which go-ical's encoder does not do. Bytes after the last CRLF wait for
// the next Write.
type foldWriter struct {
	w       io.Writer
	pending []byte
	buf     []byte // the folded line being written
}

func newFoldWriter(w io.Writer) *foldWriter { return &foldWriter{w: w} }

func (f *foldWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(f.pending) > 0 {
		f.pending = append(f.pending, p...)
		p, f.pending = f.pending, nil
	}
	for {
		i := bytes.Index(p, []byte("\r\n"))
		if i < 0 {
			break
		}
		if err := f.fold(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+2:]
	}
	f.pending = append(f.pending[:0], p...)
	return n, nil
}

// line writes s as one content line.
func (f *foldWriter) line(s string) error {
	_, err := io.WriteString(f, s+"\r\n")
	return err
}

// fold writes one content line, folded, and its CRLF.
func (f *foldWriter) fold(line []byte) error {
	b := f.buf[:0]
	for first := true; ; first = false {
		max := foldLimit
		if !first {
			max-- // the leading space counts
			b = append(b, ' ')
		}
		if len(line) <= max {
			b = append(b, line...)
			b = append(b, "\r\n"...)
			break
		}
		cut := max
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		if cut == 0 { // not UTF-8; cut anyway
			cut = max
		}
		b = append(b, line[:cut]...)
		b = append(b, "\r\n"...)
		line = line[cut:]
	}
	f.buf = b
	_, err := f.w.Write(b)
	return err
}
