package templates

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanSubject(t *testing.T) {
	long := strings.Repeat("日", 300)
	tests := []struct{ in, want string }{
		{"", ""},
		{"  Hello  ", "Hello"},
		{"Hi\r\nBcc: x@y", "Hi Bcc: x@y"},
		{"a\t\tb \x00\x1f\x7f c", "a b c"},
		{"\u0085NEL\u2028LS\u2029PS", "NEL LS PS"},
		{"a\xffb", "a\uFFFDb"},
		{"événement 日本語", "événement 日本語"},
		{strings.Repeat("é", MaxSubject), strings.Repeat("é", MaxSubject)},
		{strings.Repeat("é", MaxSubject+1), strings.Repeat("é", MaxSubject-1) + "…"},
		{long, strings.Repeat("日", MaxSubject-1) + "…"},
		{strings.Repeat("a", MaxSubject-2) + " \n b", strings.Repeat("a", MaxSubject-2) + " b"},
		{strings.Repeat("a", MaxSubject-2) + " \n bc", strings.Repeat("a", MaxSubject-2) + "…"},
	}
	for _, tt := range tests {
		if got := cleanSubject(tt.in); got != tt.want {
			t.Errorf("cleanSubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCleanSubject(f *testing.F) {
	for _, s := range []string{"", "Hi\r\nBcc: x@y", "a\xffb\u2028", strings.Repeat("日本 ", 120), "\t é \x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := cleanSubject(in)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxSubject {
			t.Fatalf("cleanSubject(%q) = %q: invalid or too long", in, got)
		}
		if strings.Contains(got, "  ") || strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") {
			t.Fatalf("cleanSubject(%q) = %q: stray spaces", in, got)
		}
		if strings.ContainsFunc(got, isControl) {
			t.Fatalf("cleanSubject(%q) = %q: control character", in, got)
		}
		if again := cleanSubject(got); again != got && !strings.HasSuffix(got, "…") {
			t.Fatalf("cleanSubject is not idempotent: %q, then %q", got, again)
		}
	})
}
