// Package invitecsv reads the CSV files people send to invite attendees:
// uid,email,name rows, as spreadsheets export them.
package invitecsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Row is one data row.
type Row struct {
	Line             int // line in the file, the first being 1
	UID, Email, Name string
}

// ErrTooManyRows is returned for a file with more rows than allowed.
var ErrTooManyRows = errors.New("too many rows")

// Read reads a CSV of invites. A header line is optional; when present it
// names the columns (uid, email, name, in any order). Without one, a row
// of three fields is uid,email,name; of two, email,name when withUID is
// false (else uid,email); of one, an email. The file must be UTF-8, with
// or without a BOM, CRLF or LF, fields quoted or not. A file that is not
// UTF-8 text, is not valid CSV, or has more than maxRows rows is refused
// whole, with an error that says why in words for people.
func Read(data []byte, maxRows int, withUID bool) ([]Row, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}), bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		return nil, errors.New("the file is UTF-16 text; save it as \"CSV UTF-8\"")
	case bytes.IndexByte(data, 0) >= 0:
		return nil, errors.New("the file is not text (it holds NUL bytes); send a CSV file")
	case !utf8.Valid(data):
		return nil, errors.New("the file is not UTF-8 text; save it as \"CSV UTF-8\"")
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	var cols map[string]int
	var rows []Row
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the file is not valid CSV: %v", err)
		}
		if first && isHeader(rec) {
			cols = map[string]int{}
			for i, h := range rec {
				cols[strings.ToLower(strings.TrimSpace(h))] = i
			}
			if _, ok := cols["email"]; !ok {
				return nil, errors.New("the header has no email column")
			}
			if _, ok := cols["uid"]; !ok && withUID {
				return nil, errors.New("the header has no uid column")
			}
			continue
		}
		if len(rows) == maxRows {
			return nil, fmt.Errorf("%w: the file has more than %d rows; split it into smaller files", ErrTooManyRows, maxRows)
		}
		line, _ := r.FieldPos(0)
		c := cols
		if c == nil {
			c = positional(len(rec), withUID)
		}
		field := func(name string) string {
			if i, ok := c[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		rows = append(rows, Row{Line: line, UID: field("uid"), Email: field("email"), Name: field("name")})
	}
}

// positional is where the columns of a row of n fields without a header
// are; the maps are shared: read them only.
func positional(n int, withUID bool) map[string]int {
	switch {
	case n >= 3:
		return uidEmailName
	case n == 2 && withUID:
		return uidEmail
	case n == 2:
		return emailName
	}
	return emailOnly
}

var (
	uidEmailName = map[string]int{"uid": 0, "email": 1, "name": 2}
	uidEmail     = map[string]int{"uid": 0, "email": 1}
	emailName    = map[string]int{"email": 0, "name": 1}
	emailOnly    = map[string]int{"email": 0}
)

func isHeader(rec []string) bool {
	for _, f := range rec {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "uid", "email":
			return true
		}
	}
	return false
}
