package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRender_EscapesHTMLOnly(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	data := Invite{Kind: "update", Summary: `Q3 <script>alert(1)</script> & "more"`, When: "Mon 2 Mar 2026 10:00 (UTC)",
		Organizer: "Ann <ann@example.com>", Location: "Room 1"}
	text, html, err := s.Render("invite", data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, data.Summary) || !strings.Contains(text, "This event has been updated") {
		t.Errorf("text body:\n%s", text)
	}
	if strings.Contains(html, "<script>") || !strings.Contains(html, "Q3 &lt;script&gt;") || !strings.Contains(html, "Room 1") {
		t.Errorf("HTML body does not escape the summary:\n%s", html)
	}
	if _, _, err := s.Render("nope", data); err == nil {
		t.Error("rendering an unknown template succeeded")
	}
}

func TestNew_DirectoryOverrides(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "invite.txt.tmpl"), []byte("Custom: {{.Summary}}"), 0o600)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, html, err := s.Render("invite", Invite{Kind: "invite", Summary: "Party"})
	if err != nil {
		t.Fatal(err)
	}
	if text != "Custom: Party" || !strings.Contains(html, "You have been invited") {
		t.Errorf("override: text %q, html kept default: %v", text, strings.Contains(html, "invited"))
	}
	os.WriteFile(filepath.Join(dir, "invite.html.tmpl"), []byte("{{.Nope"), 0o600)
	if _, err := New(dir); err == nil {
		t.Error("a broken override was accepted")
	}
}
