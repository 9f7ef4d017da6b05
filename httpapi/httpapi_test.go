package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/httpapi"
	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/senderauth"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/invited/invited/store"
)

const key = "k3y"

// env is the API over a real store and pipeline (not running, so invites
// stay queued where the test can see them).
type env struct {
	srv *httptest.Server
	db  *store.DB
	p   *pipeline.Pipeline
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil, httpapi.Config{AdminKey: key, LandingHosts: []string{"events.example.com"}, MaxRows: 5, MaxList: 3,
		ShopifySecret: "shpss_secret", Metrics: promhttp.Handler()})
}

// newEnvWith is an API over a real store and pipeline: mod changes the
// pipeline's configuration, cfg makes the API's.
func newEnvWith(t *testing.T, mod func(*pipeline.Config), cfg httpapi.Config) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	pc := pipeline.Config{Domain: "invite.test", Auth: &senderauth.Checker{Policy: senderauth.PolicyNone}}
	if mod != nil {
		mod(&pc)
	}
	p, err := pipeline.New(pc, db, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(cfg, db, p, log))
	t.Cleanup(func() { srv.Close(); db.Close() })
	return &env{srv: srv, db: db, p: p}
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// seed stores n events for an organizer, each with the given attendees.
func (e *env) seed(t *testing.T, org string, n int, attendees ...string) []string {
	t.Helper()
	var uids []string
	err := e.db.Update(context.Background(), func(tx *store.Tx) error {
		for i := range n {
			uid := fmt.Sprintf("ev%02d", i)
			uids = append(uids, uid)
			ev := &store.Event{UID: uid, OriginalUID: uid + "@orig", OrganizerEmail: org, OrganizerName: "Org <b>",
				Status: store.StatusConfirmed, Created: t0.Add(time.Duration(i) * time.Minute), Summary: "Talk <script>",
				Start: t0.Add(24 * time.Hour), End: t0.Add(25 * time.Hour)}
			if err := tx.CreateEvent(ev); err != nil {
				return err
			}
			for _, a := range attendees {
				if err := tx.PutAttendee(&store.Attendee{UID: uid, Email: a, Name: "Jane " + a, Status: store.PartAccepted, Origin: "api"}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return uids
}

func (e *env) do(t *testing.T, method, path, auth, ctype, body string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	switch {
	case strings.HasPrefix(auth, "Bearer "):
		req.Header.Set("Authorization", auth)
	case auth != "":
		req.Header.Set("X-Api-Key", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 1)
	for _, path := range []string{"/event/ev00", "/event/ev00/statistics", "/event/ev00/attendees", "/organizer/org@example.com/events"} {
		for _, auth := range []string{"", "wrong", "Bearer wrong"} {
			if code, _, _ := e.do(t, "GET", path, auth, "", ""); code != 401 {
				t.Errorf("GET %s with %q: %d, want 401", path, auth, code)
			}
		}
		for _, auth := range []string{key, "Bearer " + key} {
			if code, _, b := e.do(t, "GET", path, auth, "", ""); code != 200 {
				t.Errorf("GET %s with the key: %d %s", path, code, b)
			}
		}
	}
	if code, _, _ := e.do(t, "POST", "/event/ev00/invites", "", "application/json", "[]"); code != 401 {
		t.Errorf("POST invites without key: %d", code)
	}
	if code, _, _ := e.do(t, "GET", "/healthz", "", "", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	if code, _, _ := e.do(t, "GET", "/admin/messages/1", "", "", ""); code != 401 {
		t.Errorf("message without key: %d", code)
	}
	if code, _, _ := e.do(t, "GET", "/event/nope", key, "", ""); code != 404 {
		t.Errorf("unknown event: %d", code)
	}
}

func TestEvent_FieldsEscaped(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 1)
	_, _, b := e.do(t, "GET", "/event/ev00", key, "", "")
	var ev map[string]any
	json.Unmarshal(b, &ev)
	for _, f := range []string{"uid", "original_uid", "mailto", "organizer", "status", "sequence", "created", "last_modified",
		"dtstart", "dtend", "summary", "summary_html", "description_html", "location_html"} {
		if _, ok := ev[f]; !ok {
			t.Errorf("event has no %q field: %s", f, b)
		}
	}
	if ev["summary_html"] != "Talk &lt;script&gt;" || ev["dtstart"] != float64(t0.Add(24*time.Hour).Unix()) || ev["status"] != "confirmed" {
		t.Errorf("event %s", b)
	}
}

func TestLists_PaginateNewestFirst(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 7, "a@x.org", "b@x.org", "c@x.org", "d@x.org")
	var uids []string
	cursor := ""
	for range 10 {
		_, _, b := e.do(t, "GET", "/organizer/org@example.com/events?limit=3&cursor="+cursor, key, "", "")
		var r struct {
			Events []struct{ UID string } `json:"events"`
			Next   string                 `json:"next"`
		}
		json.Unmarshal(b, &r)
		for _, ev := range r.Events {
			uids = append(uids, ev.UID)
		}
		if cursor = r.Next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(uids) != "[ev06 ev05 ev04 ev03 ev02 ev01 ev00]" {
		t.Errorf("organizer events = %v", uids)
	}
	var all []string
	cursor = ""
	for range 5 {
		_, _, b := e.do(t, "GET", "/event/ev01/attendees?limit=3&cursor="+cursor, key, "", "")
		var r struct {
			Attendees []struct{ Email, Name, Status string } `json:"attendees"`
			Next      string                                 `json:"next"`
		}
		json.Unmarshal(b, &r)
		for _, a := range r.Attendees {
			all = append(all, a.Email+"/"+a.Name+"/"+a.Status)
		}
		if strings.Contains(r.Next, "@") || strings.Contains(r.Next, "x.org") {
			t.Errorf("cursor %q leaks an address", r.Next)
		}
		if cursor = r.Next; cursor == "" {
			break
		}
	}
	want := "[a*******@x.org/J*******/accepted b*******@x.org/J*******/accepted c*******@x.org/J*******/accepted d*******@x.org/J*******/accepted]"
	if fmt.Sprint(all) != want {
		t.Errorf("attendees = %v", all)
	}
	if code, _, _ := e.do(t, "GET", "/event/ev01/attendees?cursor=forged", key, "", ""); code != 400 {
		t.Errorf("forged cursor: %d, want 400", code)
	}
	if code, _, _ := e.do(t, "GET", "/organizer/org@example.com/events?limit=0", key, "", ""); code != 400 {
		t.Errorf("limit=0: %d, want 400", code)
	}
}

func TestInviteOne_ValidatesAndRedirects(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 1)
	cases := []struct {
		query string
		code  int
	}{
		{"email=jane@example.com&origin=landingpage", 202},
		{"email=JOHN@example.com&landing=https://events.example.com/thanks", 302},
		{"email=amy@example.com&landing=https://evil.example/phish", 202},
		{"email=kim@example.com&landing=//evil.example", 202},
		{"email=not-an-address", 400},
		{"email=a@example.com%0d%0aBcc:x@y.z", 400},
		{"email=lee@example.com&origin=spam", 400},
	}
	for _, c := range cases {
		code, hdr, b := e.do(t, "GET", "/event/ev00/invite?"+c.query, "", "", "")
		if code != c.code {
			t.Errorf("%s: %d %s, want %d", c.query, code, b, c.code)
		}
		if code == 302 && hdr.Get("Location") != "https://events.example.com/thanks" {
			t.Errorf("redirect to %q", hdr.Get("Location"))
		}
	}
	if code, _, _ := e.do(t, "GET", "/event/unknown/invite?email=a@example.com", "", "", ""); code != 404 {
		t.Errorf("unknown event: %d", code)
	}
	if code, _, _ := e.do(t, "GET", "/event/bad%20uid!/invite?email=a@example.com", "", "", ""); code != 400 {
		t.Errorf("bad uid: %d", code)
	}
	if n := e.db.QueueLen(pipeline.StageSend); n != 4 {
		t.Errorf("queued invites %d, want 4", n)
	}
}

func TestInviteMany_JSONAndCSV(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 1)
	code, _, b := e.do(t, "POST", "/event/ev00/invites", key, "application/json",
		`[{"email":"a@example.com","name":"A"},{"email":"bogus"},{"email":"A@example.com"}]`)
	var r struct {
		Queued, Rejected int
		Results          []struct {
			Row                  int
			Email, Status, Error string
		}
	}
	json.Unmarshal(b, &r)
	if code != 202 || r.Queued != 1 || r.Rejected != 2 || r.Results[1].Status != "rejected" || r.Results[2].Error == "" {
		t.Errorf("JSON invites: %d %s", code, b)
	}
	csv := "\ufeffuid,email,name\r\nev00,c@example.com,\"Doe, Jane\"\r\nev00,d@example.com,D\n"
	code, _, b = e.do(t, "POST", "/event/ev00/invites", key, "text/csv", csv)
	if code != 202 || !strings.Contains(string(b), `"queued":2`) {
		t.Errorf("CSV invites: %d %s", code, b)
	}
	code, _, b = e.do(t, "POST", "/event/ev00/invites", key, "text/csv", "ev99,e@example.com,E\nev00,z@example.com,Z\n")
	if code != 202 || !strings.Contains(string(b), "another event") || !strings.Contains(string(b), `"queued":1`) {
		t.Errorf("CSV with a row for another event: %d %s", code, b)
	}
	code, _, _ = e.do(t, "POST", "/event/ev00/invites", key, "text/csv", strings.Repeat("x@example.com\n", 6))
	if code != 413 {
		t.Errorf("too many rows: %d, want 413", code)
	}
	code, _, _ = e.do(t, "POST", "/event/ev00/invites", key, "application/xml", "<a/>")
	if code != 415 {
		t.Errorf("XML: %d, want 415", code)
	}
	code, _, _ = e.do(t, "POST", "/event/ev00/invites", key, "application/json", `{"broken"`)
	if code != 400 {
		t.Errorf("broken JSON: %d, want 400", code)
	}
	if n := e.db.QueueLen(pipeline.StageSend); n != 4 {
		t.Errorf("queued %d, want 4", n)
	}

	// An organizer's own key may send a CSV only when the organizer is
	// authorized for bulk; JSON needs no such thing.
	own := e.newKey(t, "organizer:org@example.com")
	if code, _, _ := e.do(t, "POST", "/event/ev00/invites", own, "text/csv", "x@example.com\n"); code != 403 {
		t.Errorf("CSV from an organizer not authorized for bulk: %d, want 403", code)
	}
	if code, _, _ := e.do(t, "POST", "/event/ev00/invites", own, "application/json", `[{"email":"x@example.com"}]`); code != 202 {
		t.Errorf("JSON from the organizer: %d", code)
	}
	e.do(t, "PATCH", "/admin/organizers/org@example.com", key, "application/json", `{"bulk_authorized":true}`)
	if code, _, b := e.do(t, "POST", "/event/ev00/invites", own, "text/csv", "y@example.com,Y\n"); code != 202 || !strings.Contains(string(b), `"queued":1`) {
		t.Errorf("CSV from an authorized organizer: %d %s", code, b)
	}
}

func TestDeadLetters_ListAndRetry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var ids []uint64
	e.db.Update(ctx, func(tx *store.Tx) error {
		for range 3 {
			j, err := tx.Enqueue(pipeline.StageSend, &store.Job{Kind: "invite"}, t0)
			if err != nil {
				return err
			}
			if err := tx.Bury(j, "relay refused: 421", t0); err != nil {
				return err
			}
			ids = append(ids, j.ID)
		}
		return nil
	})
	if code, _, _ := e.do(t, "GET", "/admin/dead-letters", "", "", ""); code != 401 {
		t.Errorf("without key: %d", code)
	}
	_, _, b := e.do(t, "GET", "/admin/dead-letters?limit=2", key, "", "")
	var page struct {
		DeadLetters []store.Job `json:"dead_letters"`
		Next        string      `json:"next"`
	}
	json.Unmarshal(b, &page)
	if len(page.DeadLetters) != 2 || page.Next == "" || page.DeadLetters[0].LastError != "relay refused: 421" {
		t.Fatalf("first page %s", b)
	}
	_, _, b = e.do(t, "GET", "/admin/dead-letters?limit=2&cursor="+page.Next, key, "", "")
	json.Unmarshal(b, &page)
	if len(page.DeadLetters) != 1 || page.Next != "" || page.DeadLetters[0].ID != ids[2] {
		t.Fatalf("second page %s", b)
	}
	path := fmt.Sprintf("/admin/dead-letters/%d", ids[0])
	if code, _, _ := e.do(t, "GET", path, key, "", ""); code != 200 {
		t.Errorf("GET one: %d", code)
	}
	if code, _, b := e.do(t, "POST", path+"/retry", key, "", ""); code != 202 {
		t.Fatalf("retry: %d %s", code, b)
	}
	if code, _, _ := e.do(t, "POST", path+"/retry", key, "", ""); code != 404 {
		t.Errorf("retrying twice: %d, want 404", code)
	}
	if n := e.db.QueueLen(pipeline.StageSend); n != 1 {
		t.Errorf("send queue %d after retry, want 1", n)
	}
}

func TestInviteOne_RateLimitsAndOrganizerLandingHosts(t *testing.T) {
	rates := httpapi.RateLimits{
		PerIP:       httpapi.Rate{N: 3, Per: time.Hour, Burst: 3},
		PerAttendee: httpapi.Rate{N: 1, Per: time.Hour, Burst: 1},
		PerEvent:    httpapi.Rate{N: 100, Per: time.Hour, Burst: 100},
	}
	e := newEnvWith(t, nil, httpapi.Config{AdminKey: key, Rates: &rates, TrustForwarded: true})
	srv := e.srv
	e.seed(t, "org@example.com", 1)
	get := func(query, xff string) (int, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+"/event/ev00/invite?"+query, nil)
		req.Header.Set("X-Forwarded-For", xff)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if c, _ := get("email=a@example.com", "198.51.100.1"); c != 202 {
		t.Fatalf("first invite: %d", c)
	}
	if c, h := get("email=a@example.com", "198.51.100.2"); c != 429 || h.Get("Retry-After") == "" {
		t.Errorf("same address again, from another client: %d %v; want 429 with Retry-After", c, h)
	}
	get("email=b@example.com", "198.51.100.1")
	get("email=c@example.com", "198.51.100.1")
	if c, _ := get("email=d@example.com", "198.51.100.1"); c != 429 {
		t.Errorf("fourth invite from one client with a limit of 3: %d, want 429", c)
	}
	if c, _ := get("email=d@example.com", "203.0.113.9"); c != 202 {
		t.Errorf("another client: %d", c)
	}
	// Redirects: only to the organizer's own landing hosts.
	if c, _ := get("email=e@example.com&landing=https://org.example/thanks", "203.0.113.10"); c != 202 {
		t.Errorf("landing host not allowed yet: %d, want 202 (no redirect)", c)
	}
	e.do(t, "PATCH", "/admin/organizers/org@example.com", key, "application/json", `{"landing_hosts":["Org.Example"]}`)
	c, h := get("email=f@example.com&landing=https://org.example/thanks", "203.0.113.11")
	if c != 302 || h.Get("Location") != "https://org.example/thanks" {
		t.Errorf("landing host allowed for the organizer: %d %q", c, h.Get("Location"))
	}
}

func TestReadyz_BusyIs503(t *testing.T) {
	e := newEnvWith(t, func(c *pipeline.Config) { c.MaxInbound = 2 }, httpapi.Config{AdminKey: key})
	srv, p := e.srv, e.p
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 {
		t.Fatalf("readyz with an empty queue: %d %s", code, body)
	}
	for range 2 { // the pipeline is not running: the queue stays full
		if _, err := p.Accept(context.Background(), pipeline.Envelope{Remote: "127.0.0.1:1", RcptTo: []string{"create@invite.test"}}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := get(); code != 503 || !strings.Contains(body, "high-water mark") {
		t.Fatalf("readyz past the high-water mark: %d %s", code, body)
	}
}
