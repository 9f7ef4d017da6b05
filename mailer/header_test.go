package mailer

import (
	"regexp"
	"strings"
	"testing"
)

func TestMessageID(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{"Message-ID: <a@b>\r\n\r\nbody", "a@b"},
		{"Subject: x\r\nmessage-id:<a@b>\r\n\r\n", "a@b"},
		{"Message-Id:\r\n  <folded@b>\r\nSubject: x\r\n\r\n", "folded@b"},
		{"Message-ID: <lf@b>\n\n", "lf@b"},
		{"Message-ID: bare@b\r\n\r\n", "bare@b"},
		{"Message-ID : <obs@b>\r\n\r\n", "obs@b"},
		{"X-Message-ID: <no@b>\r\n\r\n", ""},
		{"Subject: x\r\n\r\nMessage-ID: <body@b>\r\n", ""},
		{"", ""},
		{"Message-ID: <a@b> (comment)\r\n\r\n", "a@b"},
	}
	for _, tt := range tests {
		if got := messageID([]byte(tt.msg)); got != tt.want {
			t.Errorf("messageID(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestFileName(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{"Message-ID: <20260101.abc-1@invited.example>\r\n\r\n", "20260101.abc-1_invited.example.eml"},
		{"Message-ID: <../../etc/passwd>\r\n\r\n", "_.._etc_passwd.eml"},
		{"Message-ID: <.hidden@x>\r\n\r\n", "hidden_x.eml"},
		{"Message-ID: <ünï@x>\r\n\r\n", "_n__x.eml"},
	}
	for _, tt := range tests {
		if got := fileName([]byte(tt.msg)); got != tt.want {
			t.Errorf("fileName(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
	long := "Message-ID: <" + strings.Repeat("x", 300) + "@y>\r\n\r\n"
	if got := fileName([]byte(long)); len(got) != maxNameLen+len(".eml") {
		t.Errorf("fileName of a long ID = %q (%d bytes)", got, len(got))
	}
	if fileName([]byte(long)) == fileName([]byte(strings.Replace(long, "@y", "@z", 1))) {
		t.Error("long IDs differing at the end share a file name")
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*\.eml$`)

func FuzzFileName(f *testing.F) {
	f.Add([]byte("Message-ID: <a@b>\r\n\r\nbody"))
	f.Add([]byte("Message-Id:\r\n <x/../y>\r\n\r\n"))
	f.Add([]byte("Subject: none\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		name := fileName(msg)
		if !validName.MatchString(name) || len(name) > maxNameLen+len(".eml") {
			t.Fatalf("fileName(%q) = %q", msg, name)
		}
	})
}
