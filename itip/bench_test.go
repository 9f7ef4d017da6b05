package itip

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// testdataCalendars returns the bytes of every .ics file under testdata/imip.
func testdataCalendars(b *testing.B) [][]byte {
	b.Helper()
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.ics"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no testdata: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkParseCalendar parses every testdata .ics file once per iteration.
func BenchmarkParseCalendar(b *testing.B) {
	cals := testdataCalendars(b)
	var n int64
	for _, c := range cals {
		n += int64(len(c))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cals {
			if _, err := ParseCalendar(bytes.NewReader(c)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncode encodes every parsed testdata .ics file and the tricky
// calendar of the encode tests once per iteration.
func BenchmarkEncode(b *testing.B) {
	var cals []*Calendar
	for _, data := range testdataCalendars(b) {
		c, err := ParseCalendar(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		cals = append(cals, c)
	}
	cals = append(cals, trickyCalendar())
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cals {
			if _, err := Encode(c); err != nil {
				b.Fatal(err)
			}
		}
	}
}
