package templates

import (
	"strings"
	"unicode/utf8"
)

// MaxSubject is the most characters (runes) Subject returns.
const MaxSubject = 200

// oneline returns s on one line: every control character (C0 including CR,
// LF and TAB, DEL, C1, and the Unicode line and paragraph separators) becomes
// a space, invalid UTF-8 becomes U+FFFD, runs of spaces collapse to one, and
// leading and trailing spaces are trimmed.
func oneline(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // at the start: drop leading spaces
	for _, r := range s {
		if isControl(r) {
			r = ' '
		}
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteRune(r) // writes U+FFFD for invalid UTF-8, which range yields as RuneError
	}
	return strings.TrimSuffix(b.String(), " ")
}

func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029'
}

// cleanSubject makes s safe and short enough for a Subject header: on one
// line (see oneline) and at most MaxSubject runes, ending in "…" when cut.
func cleanSubject(s string) string {
	s = oneline(s)
	if utf8.RuneCountInString(s) <= MaxSubject {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxSubject-1 {
			return strings.TrimSuffix(s[:i], " ") + "…"
		}
		n++
	}
	return s // not reached: s has more than MaxSubject runes
}
