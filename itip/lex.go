package itip

import (
	"strings"
	"unicode/utf8"
)

// A contentLine is one unfolded iCalendar content line (RFC 5545 section 3.1):
// NAME *(";" param) ":" value.
type contentLine struct {
	name   string // upper-case
	params []param
	value  string
}

// A param is one property parameter; values are unquoted and RFC 6868 decoded.
type param struct {
	name   string // upper-case
	values []string
}

// param returns the first value of the named parameter, or "".
func (l *contentLine) param(name string) string {
	for _, p := range l.params {
		if p.name == name && len(p.values) > 0 {
			return p.values[0]
		}
	}
	return ""
}

// paramJoined returns all values of the named parameter joined by ",", which
// restores an unquoted value such as CN=Doe, John that a client forgot to quote.
func (l *contentLine) paramJoined(name string) string {
	for _, p := range l.params {
		if p.name == name {
			return strings.Join(p.values, ",")
		}
	}
	return ""
}

// unfold splits s into logical lines: CRLF, LF and lone CR all end a line, a
// line starting with a space or tab continues the previous one (RFC 5545
// section 3.1), control characters other than tab are dropped. It stops after
// maxLines logical lines and reports whether it did.
func unfold(s string, maxLines int) (lines []string, truncated bool) {
	var (
		cur     string
		b       strings.Builder
		folding bool // cur has been copied into b
		have    bool
	)
	flush := func() {
		if !have {
			return
		}
		if folding {
			cur = b.String()
			b.Reset()
			folding = false
		}
		lines = append(lines, cleanLine(cur))
		have = false
	}
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		var line string
		if i < 0 {
			line, s = s, ""
		} else {
			line = s[:i]
			if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				s = s[i+2:]
			} else {
				s = s[i+1:]
			}
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !have {
				cur, have = line[1:], true
				continue
			}
			if !folding {
				b.WriteString(cur)
				folding = true
			}
			b.WriteString(line[1:])
			continue
		}
		flush()
		if len(lines) >= maxLines {
			return lines, true
		}
		if line == "" {
			continue
		}
		cur, have = line, true
	}
	flush()
	return lines, false
}

// cleanLine drops ASCII control characters other than tab.
func cleanLine(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if (r < 0x20 && r != '\t') || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// parseContentLine splits one logical line. It works in one pass and never
// fails loudly: ok is false for a line that is not a content line (no name,
// no colon, an unterminated quoted parameter value), which callers skip.
func parseContentLine(s string) (l contentLine, ok bool) {
	i := strings.IndexAny(s, ";:")
	if i <= 0 {
		return l, false
	}
	name := strings.TrimSpace(s[:i])
	if !validName(name) {
		return l, false
	}
	l.name = strings.ToUpper(name)
	s = s[i:]
	for len(s) > 0 && s[0] == ';' {
		s = s[1:]
		// Parameter name up to '='. A parameter without '=' (seen from
		// broken clients) is dropped.
		j := strings.IndexAny(s, "=;:")
		if j < 0 {
			return l, false
		}
		if s[j] != '=' {
			s = s[j:]
			continue
		}
		p := param{name: strings.ToUpper(strings.TrimSpace(s[:j]))}
		s = s[j+1:]
		for {
			var v string
			if len(s) > 0 && s[0] == '"' {
				k := strings.IndexByte(s[1:], '"')
				if k < 0 {
					return l, false
				}
				v, s = s[1:1+k], s[2+k:]
			} else {
				k := strings.IndexAny(s, ";,:")
				if k < 0 {
					return l, false
				}
				v, s = s[:k], s[k:]
			}
			p.values = append(p.values, decodeCaret(v))
			if len(s) > 0 && s[0] == ',' {
				s = s[1:]
				continue
			}
			break
		}
		if p.name != "" {
			l.params = append(l.params, p)
		}
		// Junk between a quoted value and the next delimiter: skip it.
		if len(s) > 0 && s[0] != ';' && s[0] != ':' {
			k := strings.IndexAny(s, ";:")
			if k < 0 {
				return l, false
			}
			s = s[k:]
		}
	}
	if len(s) == 0 || s[0] != ':' {
		return l, false
	}
	l.value = s[1:]
	return l, true
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decodeCaret decodes RFC 6868 parameter value encoding: ^n newline, ^^ caret,
// ^' double quote. Other carets stay.
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

// stripControls removes every ASCII control character (CR and LF included)
// and replaces invalid UTF-8; it is used for values that may not contain
// line breaks at all.
func stripControls(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// cleanText is for decoded TEXT that we hand to callers: valid UTF-8, no
// control characters but tab and newline.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// foldLine writes one content line to b folded at 75 octets (RFC 5545 section
// 3.1), never inside a UTF-8 sequence, followed by CRLF.
func foldLine(b *strings.Builder, line string) {
	const limit = 75
	first := true
	for {
		max := limit
		if !first {
			max = limit - 1 // the leading space counts
			b.WriteByte(' ')
		}
		if len(line) <= max {
			b.WriteString(line)
			b.WriteString("\r\n")
			return
		}
		cut := max
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		if cut == 0 { // cannot happen with valid UTF-8; be safe
			cut = max
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n")
		line = line[cut:]
		first = false
	}
}
