package templates

import (
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	texttemplate "text/template"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

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

// notifications maps the name of every notification to the zero value of
// its data type. Adding a notification means adding it here and to tricky.
var notifications = map[string]any{
	"event_created":   EventCreated{},
	"event_failed":    EventFailed{},
	"event_limit":     EventLimit{},
	"enrollment":      Enrollment{},
	"attendee_report": AttendeeReport{},
	"bulk_report":     BulkReport{},
}

// Strings that break careless templates: HTML metacharacters, UTF-8, a
// header injection attempt and a summary far longer than a subject.
const (
	evil  = `<script>alert("x")</script> & 'single' "double"`
	utf   = "événement 日本語"
	crlf  = "Hi\r\nBcc: x@y"
	event = "evt-7f3a9c"
)

// long is a 1000-character summary of multi-byte runes, so a subject cut
// anywhere but on a rune boundary shows.
var long = func() string {
	r := []rune(strings.Repeat("Réunion 日本語 "+evil+" ", 30))
	return string(r[:1000])
}()

// tricky is the fixed data of each golden file.
var tricky = map[string]any{
	"invite": Invite{
		Kind: "update", Summary: crlf + " " + evil, When: "Mon 2 Mar 2026 10:00 – 11:00 (Europe/Paris)",
		Location: utf + " <b>room</b>", Description: "Agenda:\n1. " + evil + "\n2. " + utf,
		Organizer: "Zoë O'Brien", AttendeeName: "Jane",
	},
	"event_created": EventCreated{
		Organizer: "Zoë <script>O'Brien</script>", Mailto: "zoe@example.com",
		Summary: crlf + " " + evil + " " + utf, UID: event,
		OriginalUID: "040000008200E00074C5B7101A82E008@outlook.com",
		When:        "Mon 2 Mar 2026 10:00 – 11:00 (Europe/Paris)",
		InviteURL:   "https://invited.example.com/event/" + event + "/invite",
		ButtonSnippet: `<a href="https://invited.example.com/event/` + event + `/invite?email={{email}}&amp;name={{name}}&amp;origin=emailcta"` +
			"\n   style=\"padding:8px;background:#1e40af;color:#fff\">RSVP</a><script>alert(1)</script>",
		BulkAddress: "bulk@invited.example.com",
		CSVExample:  "uid,email,name\n" + event + ",jane@example.com,Jane Doe",
	},
	"event_failed": EventFailed{
		Organizer: utf, Mailto: "zoe@example.com", Summary: utf + " " + evil,
		Subject: crlf + " " + evil, Reason: "the calendar is not valid: line 3: <BEGIN:VEVENT> & \"more\"",
		CreateAddress: "create@invited.example.com",
	},
	"event_limit": EventLimit{
		Organizer: evil, Mailto: "zoe@example.com", Summary: long, Limit: 250, Count: 263,
		UpgradeURL: "https://shop.example.com/products/invited?ref=limit&x=<y>",
	},
	"enrollment": Enrollment{
		Organizer: utf, Mailto: "zoe@example.com", Product: "invited Pro – 1 year <b>" + utf + "</b>",
		OrderNumber: "#1001 & \"co\"\r\n",
	},
	"attendee_report": AttendeeReport{
		Organizer: "Zoë", Mailto: "zoe@example.com", Summary: long, UID: event, Attendees: 1234,
		Counts: AttendeeCounts{Accepted: 701, Declined: 302, Tentative: 131, Pending: 100},
	},
	"bulk_report": BulkReport{
		Organizer: "Zoë", Mailto: "zoe@example.com", Filename: `guests "final" <v2>.csv`, UID: event,
		Summary: crlf + " " + utf, Total: 57, Queued: 43, Rejected: 14, Truncated: 11,
		Rows: []BulkRow{
			{Line: 3, Email: "not-an-email", Name: evil, Reason: "not an email address"},
			{Line: 9, Email: "jane@example.com", Name: `Jane "JD" Doe`, Reason: "already invited"},
			{Line: 12, Email: "bob@example.com", Name: "Bob\r\nBcc: x@y", Reason: "uid evt-other is not this event"},
		},
	},
}

func newSet(t *testing.T) *Set {
	t.Helper()
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGolden renders every template with tricky data and compares the
// result with testdata/golden/NAME.{txt,html,subject}; -update rewrites them.
func TestGolden(t *testing.T) {
	s := newSet(t)
	for name, data := range tricky {
		t.Run(name, func(t *testing.T) {
			text, html, err := s.Render(name, data)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".txt", text)
			golden(t, name+".html", html)
			if _, ok := notifications[name]; ok {
				subject, err := s.Subject(name, data)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, name+".subject", subject+"\n")
			}
		})
	}
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", file)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test ./templates -update and review the diff):\n%s", path, got)
	}
}

// TestNotifications_Tricky checks what the golden files must never show,
// so a careless -update cannot bless it.
func TestNotifications_Tricky(t *testing.T) {
	s := newSet(t)
	for name := range notifications {
		data, ok := tricky[name]
		if !ok {
			t.Fatalf("no tricky data for %s", name)
		}
		t.Run(name, func(t *testing.T) {
			text, html, err := s.Render(name, data)
			if err != nil {
				t.Fatal(err)
			}
			subject, err := s.Subject(name, data)
			if err != nil {
				t.Fatal(err)
			}
			checkHTML(t, html)
			checkSubject(t, subject)
			for _, f := range fields(reflect.ValueOf(data), reflect.TypeOf(data).Name()) {
				if !strings.Contains(text, f.value) && !strings.Contains(text, oneline(f.value)) {
					t.Errorf("text body lacks %s %q", f.name, f.value)
				}
				esc := texttemplate.HTMLEscapeString
				if !strings.Contains(html, esc(f.value)) && !strings.Contains(html, esc(oneline(f.value))) {
					t.Errorf("HTML body lacks %s %q, escaped", f.name, f.value)
				}
			}
			if strings.Contains(text, "\r") {
				t.Error("text body has a CR")
			}
			for _, s := range []string{"<no value>", "Calendar Snack", "%!"} {
				if strings.Contains(text, s) || strings.Contains(html, s) {
					t.Errorf("output has %q", s)
				}
			}
		})
	}
}

// TestNotifications_Zero renders every notification with the zero value of
// its data.
func TestNotifications_Zero(t *testing.T) {
	s := newSet(t)
	for name, data := range notifications {
		t.Run(name, func(t *testing.T) {
			_, html, err := s.Render(name, data)
			if err != nil {
				t.Fatal(err)
			}
			checkHTML(t, html)
			subject, err := s.Subject(name, data)
			if err != nil {
				t.Fatal(err)
			}
			checkSubject(t, subject)
		})
	}
}

// checkHTML fails unless html is well-formed XML (as XHTML must be) with
// no element that user data could have smuggled in.
func checkHTML(t *testing.T, html string) {
	t.Helper()
	lower := strings.ToLower(html)
	for _, bad := range []string{"<script", "<img", "<iframe", "<style", "<link", "javascript:", " onclick", " onerror"} {
		if strings.Contains(lower, bad) {
			t.Errorf("HTML body has %q", bad)
		}
	}
	d := xml.NewDecoder(strings.NewReader(html))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("HTML body is not well-formed XHTML: %v\n%s", err, html)
			break
		}
	}
}

func checkSubject(t *testing.T, subject string) {
	t.Helper()
	if subject == "" || strings.ContainsAny(subject, "\r\n\t") || !utf8.ValidString(subject) ||
		utf8.RuneCountInString(subject) > MaxSubject {
		t.Errorf("bad subject (%d runes): %q", utf8.RuneCountInString(subject), subject)
	}
}

type field struct{ name, value string }

// fields lists the strings and numbers in v, struct fields and slice
// elements included, formatted as the templates show them.
func fields(v reflect.Value, name string) []field {
	switch v.Kind() {
	case reflect.String:
		return []field{{name, v.String()}}
	case reflect.Int:
		return []field{{name, strconv.FormatInt(v.Int(), 10)}}
	case reflect.Struct:
		var fs []field
		for i := range v.NumField() {
			fs = append(fs, fields(v.Field(i), name+"."+v.Type().Field(i).Name)...)
		}
		return fs
	case reflect.Slice:
		var fs []field
		for i := range v.Len() {
			fs = append(fs, fields(v.Index(i), fmt.Sprintf("%s[%d]", name, i))...)
		}
		return fs
	}
	panic("fields: unexpected kind " + v.Kind().String())
}

// TestDefaults_Complete checks that every embedded template name has its
// text and HTML parts, and every notification its subject too, so that no
// name can lack a part whatever an override directory holds.
func TestDefaults_Complete(t *testing.T) {
	files, err := fs.Glob(defaults, "*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]string{}
	for _, f := range files {
		if strings.HasSuffix(f, partialSuffix) {
			continue
		}
		name, part, ok := strings.Cut(strings.TrimSuffix(f, ".tmpl"), ".")
		if !ok {
			t.Errorf("embedded template %s is not NAME.PART.tmpl", f)
			continue
		}
		parts[name] = append(parts[name], part)
	}
	for name := range notifications {
		if _, ok := parts[name]; !ok {
			t.Errorf("notification %s has no embedded templates", name)
		}
	}
	for name, got := range parts {
		want := []string{"html", "txt"}
		if _, ok := notifications[name]; ok {
			want = []string{"html", "subject", "txt"}
		} else if name != "invite" {
			t.Errorf("embedded template %s is neither invite nor in notifications", name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s has parts %v, want %v", name, got, want)
		}
		if _, ok := tricky[name]; !ok {
			t.Errorf("%s has no tricky data, so no golden files", name)
		}
	}
}

func TestSubject_OverrideAndErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "enrollment.subject.tmpl"), []byte("\t Paid:\n{{.Product}}  !\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Subject("enrollment", Enrollment{Product: "Pro\r\n"}); err != nil || got != "Paid: Pro !" {
		t.Errorf("Subject = %q, %v; want %q", got, err, "Paid: Pro !")
	}
	if _, err := s.Subject("invite", Invite{}); err == nil {
		t.Error("invite has a subject template")
	}
	if _, err := s.Subject("enrollment", EventLimit{}); err == nil {
		t.Error("a subject rendered with the wrong data type")
	}
	if err := os.WriteFile(filepath.Join(dir, "enrollment.subject.tmpl"), []byte("{{.Product"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err == nil {
		t.Error("a broken subject override was accepted")
	}
}

func TestEventLimit_UnsafeUpgradeURL(t *testing.T) {
	_, html, err := newSet(t).Render("event_limit", EventLimit{UpgradeURL: "javascript:alert(1)"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, `href="javascript:`) || !strings.Contains(html, `href="#ZgotmplZ"`) {
		t.Errorf("unsafe URL in a link:\n%s", html)
	}
}

func TestRender_Concurrent(t *testing.T) {
	s := newSet(t)
	done := make(chan error)
	for name, data := range tricky {
		go func() {
			_, _, err := s.Render(name, data)
			if err == nil {
				if _, ok := notifications[name]; ok {
					_, err = s.Subject(name, data)
				}
			}
			done <- err
		}()
	}
	for range tricky {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	// The invite cache is shared: renderings from many goroutines, of the
	// same event and of others, each get their own right text.
	results := make(chan error)
	for i := range 32 {
		go func() {
			data := Invite{Kind: "invite", Summary: fmt.Sprintf("Event %d", i%4), When: "Mon", Organizer: "Ann", AttendeeName: fmt.Sprint(i)}
			text, _, err := s.RenderInvite(data)
			if err == nil && !strings.Contains(text, data.Summary) {
				err = fmt.Errorf("invite for %q rendered %q", data.Summary, text)
			}
			results <- err
		}()
	}
	for range 32 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
}

// TestPartial_OverrideRebrandsEveryNotice: one file in the templates
// directory changes the frame of every notification's HTML.
func TestPartial_OverrideRebrandsEveryNotice(t *testing.T) {
	dir := t.TempDir()
	src, err := defaults.ReadFile("layout" + partialSuffix)
	if err != nil {
		t.Fatal(err)
	}
	branded := strings.Replace(string(src), ">invited</td>", ">Acme Events</td>", 1)
	if branded == string(src) {
		t.Fatal("the partial has no brand cell to replace")
	}
	os.WriteFile(filepath.Join(dir, "layout"+partialSuffix), []byte(branded), 0o600)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range notifications {
		_, html, err := s.Render(name, data)
		if err != nil || !strings.Contains(html, ">Acme Events</td>") {
			t.Errorf("%s: %v, brand not replaced", name, err)
		}
	}
}
