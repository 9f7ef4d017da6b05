package store

import (
	"encoding/csv"
	"io"
	"strings"
)

// ReportHeader is the first line of the attendee report.
var ReportHeader = []string{"email", "name", "status", "origin", "prodid"}

// WriteAttendeeCSV writes event uid's attendee report as CSV, header
// first. Cells a spreadsheet would run as a formula are defused.
func (tx *Tx) WriteAttendeeCSV(w io.Writer, uid string) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(ReportHeader); err != nil {
		return err
	}
	err := tx.Attendees(uid, "", func(a *Attendee) (bool, error) {
		err := cw.Write([]string{SafeCell(a.Email), SafeCell(a.Name), a.Status, SafeCell(a.Origin), SafeCell(a.ProdID)})
		return err == nil, err
	})
	cw.Flush()
	if err != nil {
		return err
	}
	return cw.Error()
}

// SafeCell defuses a CSV cell that a spreadsheet would read as a formula
// (it starts with = + - @, a tab or a carriage return) by prefixing a
// quote, as OWASP advises against CSV injection.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
