package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

const testDomain = "invite.test"

// startApp runs the real daemon on 127.0.0.1:0 ports with a temp data
// directory; cleanup shuts it down and waits for it.
func startApp(t *testing.T, mod func(*Config)) *App {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.Domain = testDomain
	cfg.SMTP = "127.0.0.1:0"
	cfg.HTTP = "127.0.0.1:0"
	cfg.AdminKey = "test-admin-key"
	cfg.resolver = dnstest.Loopback()
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	app, err := Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := app.Wait(); err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return app
}

// sendMail delivers raw to the app over SMTP. It returns the queue id
// from the 250 answer, or the SMTP error.
func sendMail(t *testing.T, addr, from string, to []string, raw []byte) (string, error) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(raw); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	c.Quit()
	_, id, ok := strings.Cut(resp.StatusText, "OK: queued as ")
	if !ok {
		t.Fatalf("250 answer %q names no queue id", resp.StatusText)
	}
	return id, nil
}

// mustSend is sendMail that fails the test unless the message got a 250;
// it returns the message's queue id.
func mustSend(t *testing.T, addr, from string, to []string, raw []byte) string {
	t.Helper()
	id, err := sendMail(t, addr, from, to, raw)
	if err != nil {
		t.Fatalf("SMTP from %s to %v: %v", from, to, err)
	}
	return id
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// target is a daemon the API helpers talk to: an in-process *App or a
// child process.
type target interface {
	HTTPAddr() string
	AdminKey() string
}

// api calls the HTTP API with the admin key and decodes a JSON answer.
func api(t *testing.T, app target, method, path string, body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+app.HTTPAddr()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", app.AdminKey())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// scrapeMetrics reads /metrics with the admin key.
func scrapeMetrics(t *testing.T, app target) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+app.HTTPAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+app.AdminKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// metricValue is the value of the sample name (with its labels) in text,
// a scrape of /metrics.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s in:\n%s", name, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// apiCSV posts a CSV of invites for event uid.
func apiCSV(t *testing.T, app target, uid, csv string) int {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+app.HTTPAddr()+"/event/"+uid+"/invites", strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", app.AdminKey())
	req.Header.Set("Content-Type", "text/csv; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// httpGet makes an unauthenticated GET and returns the status.
func httpGet(u string) (int, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

type statsResp struct {
	EventID       string `json:"event_id"`
	AttendeeCount int64  `json:"attendee_count"`
	InvitesSent   int64  `json:"invites_sent"`
	Confirmed     int64  `json:"rsvp_confirmed"`
	Declined      int64  `json:"rsvp_declined"`
	Tentative     int64  `json:"rsvp_tentative"`
	Pending       int64  `json:"rsvp_pending"`
	UpdatesSent   int64  `json:"updates_sent"`
	CancelsSent   int64  `json:"cancels_sent"`
}

func stats(t *testing.T, app target, uid string) statsResp {
	t.Helper()
	var s statsResp
	if code := api(t, app, "GET", "/event/"+uid+"/statistics", nil, &s); code != 200 {
		t.Fatalf("statistics: HTTP %d", code)
	}
	return s
}

type eventsResp struct {
	Events []struct {
		UID         string `json:"uid"`
		OriginalUID string `json:"original_uid"`
		Status      string `json:"status"`
		Sequence    int    `json:"sequence"`
		Summary     string `json:"summary"`
	} `json:"events"`
	Next string `json:"next"`
}

// eventUID waits for the organizer's event with original UID orig and
// returns our UID for it.
func eventUID(t *testing.T, app target, organizer, orig string) string {
	t.Helper()
	var uid string
	eventually(t, "event "+orig+" registered", func() bool {
		var r eventsResp
		api(t, app, "GET", "/organizer/"+organizer+"/events?limit=100", nil, &r)
		for _, e := range r.Events {
			if e.OriginalUID == orig {
				uid = e.UID
				return true
			}
		}
		return false
	})
	return uid
}

// messageNotes waits until message id has a note and returns its record.
func messageRecord(t *testing.T, app *App, id string) *store.Message {
	t.Helper()
	var m *store.Message
	eventually(t, "message "+id+" processed", func() bool {
		app.DB().View(func(tx *store.Tx) (err error) { m, err = tx.Message(id); return err })
		return m != nil && m.Status != store.MessageQueued
	})
	return m
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/imip/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setProp replaces every (possibly folded) content line of property name
// in an iCalendar text with name:value.
func setProp(ics, name, value string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `([;:][^\r\n]*)(\r?\n[ \t][^\r\n]*)*`)
	return re.ReplaceAllLiteralString(ics, name+":"+value)
}

// wrapICS makes a MIME message carrying ics as an inline text/calendar
// part, as most clients send it.
func wrapICS(from, to, subject, method, ics string) []byte {
	ics = strings.ReplaceAll(strings.ReplaceAll(ics, "\r\n", "\n"), "\n", "\r\n")
	return fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d@test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/calendar; charset=UTF-8; method=%s\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s",
		from, to, subject, time.Now().UnixNano(), method, ics)
}

// parsed is one outbound message as an attendee's client reads it.
type parsed struct {
	msg *itip.Message
	cal *itip.Calendar
	raw []byte
}

func parseOutbound(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := itip.ReadMessage(bytes.NewReader(raw), itip.Limits{})
	if err != nil {
		t.Fatalf("outbound message does not read back: %v\n%s", err, raw)
	}
	if len(m.Calendars) != 1 {
		t.Fatalf("outbound message has %d calendars, want 1", len(m.Calendars))
	}
	return parsed{msg: m, cal: m.Calendars[0], raw: raw}
}
