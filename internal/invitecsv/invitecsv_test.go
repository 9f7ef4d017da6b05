package invitecsv

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		withUID bool
		want    string // rows as line:uid/email/name joined by |
		err     string
	}{
		{"header, BOM, CRLF, quotes", "\ufeffuid,email,name\r\nev1,a@x.org,\"Doe, Jane\"\r\nev1, b@x.org ,B\r\n", true, "2:ev1/a@x.org/Doe, Jane|3:ev1/b@x.org/B", ""},
		{"header reorders", "name,email,uid\nAnn,a@x.org,ev2\n", true, "2:ev2/a@x.org/Ann", ""},
		{"no header, three columns", "ev1,a@x.org,Ann\n", true, "1:ev1/a@x.org/Ann", ""},
		{"no header, two columns with uid", "ev1,a@x.org\n", true, "1:ev1/a@x.org/", ""},
		{"no header, two columns without uid", "a@x.org,Ann\n", false, "1:/a@x.org/Ann", ""},
		{"email only", "a@x.org\n\nb@x.org\n", false, "1:/a@x.org/|3:/b@x.org/", ""},
		{"multi-line quoted name", "uid,email,name\nev1,a@x.org,\"two\nlines\"\nev1,b@x.org,B\n", true, "2:ev1/a@x.org/two\nlines|4:ev1/b@x.org/B", ""},
		{"formula kept as data", "ev1,a@x.org,=cmd|' /C calc'!A0\n", true, "1:ev1/a@x.org/=cmd|' /C calc'!A0", ""},
		{"header without uid", "email,name\na@x.org,A\n", true, "", "no uid column"},
		{"header without email", "uid,name\nev1,A\n", true, "", "no email column"},
		{"UTF-16", "\xff\xfeu\x00i\x00d\x00", true, "", "UTF-16"},
		{"Latin-1", "ev1,a@x.org,Jos\xe9\n", true, "", "not UTF-8"},
		{"NUL", "ev1,a@x.org\x00\n", true, "", "not text"},
		{"bare quote", "ev1,\"a@x.org,A\n", true, "", "not valid CSV"},
	}
	for _, c := range cases {
		rows, err := Read([]byte(c.in), 100, c.withUID)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, r := range rows {
			got = append(got, strings.Join([]string{itoa(r.Line) + ":" + r.UID, r.Email, r.Name}, "/"))
		}
		if g := strings.Join(got, "|"); g != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, g, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRead_TooManyRows(t *testing.T) {
	in := strings.Repeat("ev1,a@x.org,A\n", 11)
	if _, err := Read([]byte(in), 10, true); !errors.Is(err, ErrTooManyRows) {
		t.Fatalf("11 rows with a limit of 10: %v", err)
	}
	if rows, err := Read([]byte(in), 11, true); err != nil || len(rows) != 11 {
		t.Fatalf("11 rows with a limit of 11: %d %v", len(rows), err)
	}
}

// FuzzRead: any input gives rows or an error, never a panic, and never
// more rows than allowed.
func FuzzRead(f *testing.F) {
	for _, s := range []string{"uid,email,name\nev1,a@x.org,\"Doe, Jane\"\n", "\ufeffa@x.org\r\n", "\"", "a,b,c,d,e\n\n\n", "\xff\xfe"} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, withUID bool) {
		rows, err := Read(data, 50, withUID)
		if err == nil && len(rows) > 50 {
			t.Fatalf("%d rows over the limit", len(rows))
		}
		for _, r := range rows {
			if r.Line < 1 {
				t.Fatalf("line %d", r.Line)
			}
		}
	})
}
