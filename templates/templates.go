// Package templates renders the messages invited sends: their bodies and,
// for notifications, their subjects.
//
// Each message is a pair of files, NAME.txt.tmpl (text/template) and
// NAME.html.tmpl (html/template, which escapes everything it inserts), with
// an optional third, NAME.subject.tmpl (text/template, one line), for the
// Subject header. The defaults are embedded; a directory given to New
// overrides any of them file by file.
//
// Every template may call oneline, which turns control characters (CR, LF,
// TAB and the rest) into spaces and collapses runs of spaces: use it for
// fields that must stay on one line, such as an event summary.
//
// The notifications mailed to organizers are event_created, event_failed,
// event_limit, enrollment, attendee_report and bulk_report; each takes the
// data type of the same name (EventCreated, EventFailed, ...).
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"

	"github.com/invited/invited/internal/memo"
)

//go:embed *.tmpl
var defaults embed.FS

// Set is a parsed set of templates. It is safe for concurrent use.
type Set struct {
	text    map[string]*texttemplate.Template
	html    map[string]*htmltemplate.Template
	subject map[string]*texttemplate.Template
	// partials are the *.partial.tmpl files, in name order.
	partials []string

	// invites keeps rendered invites (see RenderInvite); invitesNamed: the
	// invite templates can see AttendeeName, so nothing is kept.
	invites      memo.Cache[Invite, rendered]
	invitesNamed bool
}

// funcs are the functions every template may call.
var funcs = map[string]any{"oneline": oneline}

// New parses the embedded templates, each replaced by the file of the same
// name in dir when dir is not empty and has one.
func New(dir string) (*Set, error) {
	names, err := fs.Glob(defaults, "*.tmpl")
	if err != nil {
		return nil, err
	}
	s := &Set{
		text:    map[string]*texttemplate.Template{},
		html:    map[string]*htmltemplate.Template{},
		subject: map[string]*texttemplate.Template{},
	}
	srcs := make(map[string]string, len(names))
	for _, file := range names {
		src, err := defaults.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, file))
			switch {
			case err == nil:
				src = b
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("templates: %w", err)
			}
		}
		srcs[file] = string(src)
		if strings.HasSuffix(file, partialSuffix) {
			s.partials = append(s.partials, file)
		}
	}
	for _, file := range names {
		if !strings.HasSuffix(file, partialSuffix) {
			if err := s.add(file, srcs); err != nil {
				return nil, err
			}
		}
	}
	s.initInviteCache()
	return s, nil
}

// partialSuffix names files of shared definitions ({{define}} blocks only),
// parsed into every HTML template before its own file.
const partialSuffix = ".partial.tmpl"

func (s *Set) add(file string, srcs map[string]string) error {
	src := srcs[file]
	if name, ok := strings.CutSuffix(file, ".txt.tmpl"); ok {
		t, err := parseText(file, src)
		if err != nil {
			return err
		}
		s.text[name] = t
	} else if name, ok := strings.CutSuffix(file, ".subject.tmpl"); ok {
		t, err := parseText(file, src)
		if err != nil {
			return err
		}
		s.subject[name] = t
	} else if name, ok := strings.CutSuffix(file, ".html.tmpl"); ok {
		t := htmltemplate.New(file).Option("missingkey=error").Funcs(funcs)
		for _, p := range s.partials {
			if _, err := t.Parse(srcs[p]); err != nil {
				return fmt.Errorf("templates: %s: %w", p, err)
			}
		}
		if _, err := t.Parse(src); err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		s.html[name] = t
	}
	return nil
}

func parseText(file, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(file).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return t, nil
}

// Render executes the text and HTML templates called name with data.
func (s *Set) Render(name string, data any) (text, html string, err error) {
	tt, ok1 := s.text[name]
	ht, ok2 := s.html[name]
	if !ok1 || !ok2 {
		return "", "", fmt.Errorf("templates: no template pair %q", name)
	}
	var tb, hb bytes.Buffer
	if err := tt.Execute(&tb, data); err != nil {
		return "", "", fmt.Errorf("templates: %s text: %w", name, err)
	}
	if err := ht.Execute(&hb, data); err != nil {
		return "", "", fmt.Errorf("templates: %s html: %w", name, err)
	}
	return tb.String(), hb.String(), nil
}

// Subject executes the subject template called name with data and returns
// a value safe for a Subject header: trimmed, every control character
// replaced by a space, runs of spaces collapsed, and at most MaxSubject
// characters long (cut on a rune boundary, ending in "…" when cut).
func (s *Set) Subject(name string, data any) (string, error) {
	t, ok := s.subject[name]
	if !ok {
		return "", fmt.Errorf("templates: no subject template %q", name)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("templates: %s subject: %w", name, err)
	}
	return cleanSubject(b.String()), nil
}

// Invite is the data of the invite, update and cancel templates.
type Invite struct {
	Kind         string // "invite", "update" or "cancel"
	Summary      string
	When         string
	Location     string
	Description  string
	Organizer    string // organizer's name, or address when nameless
	AttendeeName string
	Occurrence   string // for a cancelled occurrence: which one
}
