// Package templates renders the bodies of the messages invited sends.
//
// Each message is a pair of files, NAME.txt.tmpl (text/template) and
// NAME.html.tmpl (html/template, which escapes everything it inserts). The
// defaults are embedded; a directory given to New overrides any of them
// file by file.
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
)

//go:embed *.tmpl
var defaults embed.FS

// Set is a parsed set of templates. It is safe for concurrent use.
type Set struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// New parses the embedded templates, each replaced by the file of the same
// name in dir when dir is not empty and has one.
func New(dir string) (*Set, error) {
	names, err := fs.Glob(defaults, "*.tmpl")
	if err != nil {
		return nil, err
	}
	s := &Set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
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
		if err := s.add(file, string(src)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Set) add(file, src string) error {
	if name, ok := strings.CutSuffix(file, ".txt.tmpl"); ok {
		t, err := texttemplate.New(file).Option("missingkey=error").Parse(src)
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		s.text[name] = t
	} else if name, ok := strings.CutSuffix(file, ".html.tmpl"); ok {
		t, err := htmltemplate.New(file).Option("missingkey=error").Parse(src)
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		s.html[name] = t
	}
	return nil
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
