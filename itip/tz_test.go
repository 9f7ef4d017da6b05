package itip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadLocation(t *testing.T) {
	tests := map[string]string{
		"Europe/Berlin":                         "Europe/Berlin",
		`"Europe/Berlin"`:                       "Europe/Berlin",
		"US/Pacific":                            "US/Pacific",
		"UTC":                                   "UTC",
		"Romance Standard Time":                 "Europe/Paris",
		"romance standard time":                 "Europe/Paris",
		"FLE Standard Time":                     "Europe/Kiev",
		"W. Europe Standard Time":               "Europe/Berlin",
		"Pacific Standard Time":                 "America/Los_Angeles",
		"Pacific Standard Time (Mexico)":        "America/Tijuana",
		"AUS Eastern Standard Time":             "Australia/Sydney",
		"India Standard Time":                   "Asia/Kolkata",
		"UTC+12":                                "Etc/GMT-12",
		"W. Europe":                             "Europe/Berlin",
		"Romance":                               "Europe/Paris",
		" Eastern ":                             "America/New_York",
		"/mozilla.org/20050126_1/Europe/Berlin": "Europe/Berlin",
		"/softwarestudio.org/Olson_20011030_5/America/New_York":  "America/New_York",
		"/citadel.org/20190914_1/America/Argentina/Buenos_Aires": "America/Argentina/Buenos_Aires",
	}
	for in, want := range tests {
		loc, err := LoadLocation(in)
		if err != nil {
			t.Errorf("LoadLocation(%q): %v", in, err)
			continue
		}
		if loc.String() != want {
			t.Errorf("LoadLocation(%q) = %s, want %s", in, loc, want)
		}
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "../../etc/passwd", "/etc/passwd", "Europe/Berlin\r\nX", "Nowhere Standard Time", strings.Repeat("A/", 200)} {
		if loc, err := LoadLocation(bad); err == nil || !errors.Is(err, ErrUnknownZone) {
			t.Errorf("LoadLocation(%q) = %v, %v; want ErrUnknownZone", bad, loc, err)
		}
	}
}

func TestWindowsZonesAllLoad(t *testing.T) {
	if len(windowsZones) < 100 {
		t.Errorf("only %d Windows zones", len(windowsZones))
	}
	for win, iana := range windowsZones {
		if _, err := time.LoadLocation(iana); err != nil {
			t.Errorf("%s → %s: %v", win, iana, err)
		}
		if _, err := LoadLocation(win); err != nil {
			t.Errorf("LoadLocation(%q): %v", win, err)
		}
	}
}

// sampleInstants returns instants every 5 hours through year plus a minute
// either side of every offset change of loc in it.
func sampleInstants(loc *time.Location, year int) []time.Time {
	start := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	var out []time.Time
	for t := start; t.Before(end); t = t.Add(5 * time.Hour) {
		out = append(out, t)
	}
	for _, tr := range transitions(loc, start, end) {
		out = append(out, tr.at.Add(-time.Minute), tr.at, tr.at.Add(time.Minute))
	}
	return out
}

// evalVTimezone parses VTIMEZONE text with the package's own reader.
func evalVTimezone(t *testing.T, text string) *vtimezone {
	t.Helper()
	root, err := decodeCalendar("BEGIN:VCALENDAR\r\n"+text+"END:VCALENDAR\r\n", "VCALENDAR")
	if err != nil {
		t.Fatalf("generated VTIMEZONE does not parse: %v\n%s", err, text)
	}
	if len(root.Children) != 1 || root.Children[0].Name != "VTIMEZONE" {
		t.Fatalf("want one VTIMEZONE, got %+v", root.Children)
	}
	budget := maxOnsets
	return parseVTimezone(root.Children[0], &budget)
}

func TestVTimezone_MatchesGo(t *testing.T) {
	zones := []string{
		"Europe/Berlin", "America/Los_Angeles", "Australia/Sydney", "Asia/Tokyo",
		"W. Europe Standard Time", "AUS Eastern Standard Time", "America/Sao_Paulo",
		"Pacific/Auckland", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/Dublin",
		"Africa/Casablanca", "Asia/Jerusalem", "America/Santiago", "Asia/Tehran", "UTC",
		"Pacific/Chatham", "America/St_Johns",
	}
	for _, tzid := range zones {
		for _, year := range []int{2015, 2025, 2026} {
			text, ok := VTimezone(tzid, year)
			if !ok {
				t.Errorf("VTimezone(%q, %d) not ok", tzid, year)
				continue
			}
			loc, _ := LoadLocation(tzid)
			tz := evalVTimezone(t, text)
			for _, at := range sampleInstants(loc, year) {
				_, want := at.In(loc).Zone()
				if got := tz.offsetAt(at); got != want {
					t.Errorf("%s %d at %v: offset %d, Go says %d\n%s", tzid, year, at, got, want, text)
					break
				}
			}
			if !strings.Contains(text, "\r\nTZID:"+tzid+"\r\n") {
				t.Errorf("TZID not kept exactly:\n%s", text)
			}
		}
	}
}

func TestVTimezone_Shape(t *testing.T) {
	berlin, _ := VTimezone("Europe/Berlin", 2025)
	for _, want := range []string{
		"BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n",
		"BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n",
		"BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n",
	} {
		if !strings.Contains(berlin, want) {
			t.Errorf("Berlin lacks %q:\n%s", want, berlin)
		}
	}
	if !strings.HasSuffix(berlin, "END:VTIMEZONE\r\n") {
		t.Errorf("no final END")
	}
	la, _ := VTimezone("America/Los_Angeles", 2025)
	for _, want := range []string{"RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU", "TZOFFSETTO:-0700", "TZOFFSETTO:-0800"} {
		if !strings.Contains(la, want) {
			t.Errorf("Los Angeles lacks %q:\n%s", want, la)
		}
	}
	sydney, _ := VTimezone("Australia/Sydney", 2025)
	for _, want := range []string{"BYMONTH=10;BYDAY=1SU", "BYMONTH=4;BYDAY=1SU", "TZOFFSETTO:+1100"} {
		if !strings.Contains(sydney, want) {
			t.Errorf("Sydney lacks %q:\n%s", want, sydney)
		}
	}
	tokyo, _ := VTimezone("Asia/Tokyo", 2025)
	if strings.Count(tokyo, "BEGIN:") != 2 || !strings.Contains(tokyo, "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nTZNAME:JST\r\n") || strings.Contains(tokyo, "RRULE") {
		t.Errorf("Tokyo:\n%s", tokyo)
	}
	win, _ := VTimezone("Romance Standard Time", 2025)
	if !strings.Contains(win, "TZID:Romance Standard Time\r\n") || !strings.Contains(win, "TZNAME:CEST") {
		t.Errorf("Windows name:\n%s", win)
	}
	if _, ok := VTimezone("Mars/Olympus", 2025); ok {
		t.Errorf("unknown zone generated")
	}
	if _, ok := VTimezone("Europe/Berlin", 0); ok {
		t.Errorf("year 0 generated")
	}
}

// TestVTimezone_ClientDefinitions evaluates the VTIMEZONEs real clients sent
// and compares them with Go's zone for the years they describe.
func TestVTimezone_ClientDefinitions(t *testing.T) {
	tests := []struct {
		file, tzid, iana string
		years            []int
		// slack skips instants this close to a change: Lotus puts the
		// autumn change at 02:00 local time instead of 03:00.
		slack time.Duration
	}{
		{"exchange2010-request-uppercase-MAILTO-windows-tzid.ics", "Romance Standard Time", "Europe/Paris", []int{2015, 2024}, 0},
		{"lotus-notes-8.5-request-broken-fold-colon-quoted-tzid.ics", "W. Europe", "Europe/Berlin", []int{2011, 2020}, 90 * time.Minute},
		{"google-request-recurring-weekly-rrule-vtimezone.ics", "America/Los_Angeles", "America/Los_Angeles", []int{2015, 2025}, 0},
		{"icloud-cancel-whole-event.ics", "Europe/Paris", "Europe/Paris", []int{1950, 1990, 2015, 2025}, 0},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join(testdataDir, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		c := mustParse(t, string(data))
		tz := evalVTimezone(t, c.Timezones[tt.tzid])
		loc, _ := time.LoadLocation(tt.iana)
		for _, y := range tt.years {
			for _, at := range sampleInstants(loc, y) {
				if tt.slack > 0 && nearChange(loc, at, tt.slack) {
					continue
				}
				_, want := at.In(loc).Zone()
				if got := tz.offsetAt(at); got != want {
					t.Errorf("%s %d at %v: offset %d, Go says %d", tt.tzid, y, at, got, want)
					break
				}
			}
		}
	}
}

func TestParseOffset(t *testing.T) {
	good := map[string]int{"+0100": 3600, "-0800": -28800, "+0530": 19800, "+005328": 3208, "-0000": 0}
	for in, want := range good {
		if got, ok := parseOffset(in); !ok || got != want {
			t.Errorf("parseOffset(%q) = %d, %v", in, got, ok)
		}
		if want != 0 {
			if back := formatOffset(want); back != in {
				t.Errorf("formatOffset(%d) = %q, want %q", want, back, in)
			}
		}
	}
	for _, bad := range []string{"", "0100", "+1", "+2500", "+01:00", "+0-10", "+0160"} {
		if _, ok := parseOffset(bad); ok {
			t.Errorf("parseOffset(%q) ok", bad)
		}
	}
}

// nearChange reports whether loc changes offset within d of at.
func nearChange(loc *time.Location, at time.Time, d time.Duration) bool {
	return len(transitions(loc, at.Add(-d), at.Add(d))) > 0
}
