package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderInvite_Cache: the cached rendering is always what Render
// gives; the attendee's name matters only to templates that can see it.
func TestRenderInvite_Cache(t *testing.T) {
	check := func(s *Set, data Invite) string {
		t.Helper()
		text, html, err := s.RenderInvite(data)
		if err != nil {
			t.Fatal(err)
		}
		wt, wh, err := s.Render("invite", data)
		if err != nil {
			t.Fatal(err)
		}
		if text != wt || html != wh {
			t.Fatalf("RenderInvite differs from Render for %+v:\ntext %q\nwant %q", data, text, wt)
		}
		return text
	}
	base := Invite{Kind: "invite", Summary: "Party", When: "Mon 2 Mar 2026 10:00 (UTC)", Organizer: "Ann"}
	withName := func(name string) Invite { d := base; d.AttendeeName = name; return d }

	def, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if def.invitesNamed {
		t.Error("the default invite templates do not show the attendee's name, yet it is part of the key")
	}
	for _, d := range []Invite{withName("Bob"), withName("Carol"), base, {Kind: "cancel", Summary: "Party", Occurrence: "Tue"}} {
		check(def, d)
	}
	if n := def.invites.Len(); n != 2 {
		t.Errorf("%d renderings kept for one invite to three people and a cancel, want 2", n)
	}

	overrides := map[string]string{
		"field":    "Dear {{.AttendeeName}}: {{.Summary}}",
		"dot":      "{{printf \"%v\" .}}",
		"root":     "{{$.AttendeeName}}",
		"variable": "{{$d := .}}{{$d.AttendeeName}}",
		"with":     "{{with .AttendeeName}}Hi {{.}}{{end}}",
		"dollar":   "{{$}}",
	}
	for name, src := range overrides {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "invite.txt.tmpl"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := New(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !s.invitesNamed {
			t.Errorf("%s: template %q can show the name, yet it is not part of the key", name, src)
		}
		if check(s, withName("Bob")) == check(s, withName("Carol")) {
			t.Errorf("%s: Bob and Carol got the same text", name)
		}
	}
	// Handing the data to another template is not reading it.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "invite.txt.tmpl"), []byte(`{{define "x"}}{{.Summary}}{{end}}{{template "x" .}}`), 0o600)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.invitesNamed {
		t.Error(`{{template "x" .}} counted as reading the name`)
	}
}

// A kept rendering counts its key's strings against the byte budget too:
// the description is held once in the key besides its rendered copies.
func TestRenderInvite_CacheCountsKey(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	desc := strings.Repeat("agenda ", 2000)
	text, html, err := s.RenderInvite(Invite{Kind: "invite", Summary: "Planning", Description: desc, Organizer: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	if held, rendered := s.invites.Held(), len(text)+len(html); held-rendered < len(desc) {
		t.Errorf("the cache counts %d bytes for %d rendered and a %d-byte description in its key", held, rendered, len(desc))
	}
}
