package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/store"
)

// newKey stores an API key with scopes and returns its token.
func (e *env) newKey(t *testing.T, scopes ...string) string {
	t.Helper()
	k, token := store.NewAPIKey("test", scopes, time.Now())
	if err := e.db.Update(context.Background(), func(tx *store.Tx) error { return tx.PutKey(k) }); err != nil {
		t.Fatal(err)
	}
	return token
}

// TestEveryEndpoint_NoKeyWrongScopeRightKey runs each keyed endpoint with
// no key (401), a key for another organizer or without admin (403) and the
// right key.
func TestEveryEndpoint_NoKeyWrongScopeRightKey(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 1, "a@x.org")
	own := e.newKey(t, "organizer:org@example.com")
	other := e.newKey(t, "organizer:someone@example.com")
	admin := e.newKey(t, "admin")
	cases := []struct {
		method, path, body string
		adminOnly          bool
		want               int
	}{
		{"GET", "/event/ev00", "", false, 200},
		{"GET", "/event/ev00/statistics", "", false, 200},
		{"GET", "/event/ev00/attendees", "", false, 200},
		{"GET", "/event/ev00/report", "", false, 202},
		{"GET", "/event/ev00/report.csv", "", false, 200},
		{"POST", "/event/ev00/invites", `[{"email":"n@x.org"}]`, false, 202},
		{"GET", "/organizer/org@example.com/events", "", false, 200},
		{"GET", "/organizer/org@example.com/statistics", "", false, 200},
		{"GET", "/shadow/organizer/org@example.com/events", "", false, 200},
		{"GET", "/shadow/organizer/org@example.com/statistics", "", false, 200},
		{"GET", "/system/events", "", true, 200},
		{"GET", "/system/statistics", "", true, 200},
		{"GET", "/admin/organizers/org@example.com", "", true, 200},
		{"PATCH", "/admin/organizers/org@example.com", `{"bulk_authorized":true}`, true, 200},
		{"POST", "/admin/organizers/org@example.com/suspend", `{"reason":"test"}`, true, 200},
		{"POST", "/admin/organizers/org@example.com/reinstate", "", true, 200},
		{"GET", "/admin/keys", "", true, 200},
		{"POST", "/admin/keys", `{"scopes":["admin"]}`, true, 201},
		{"GET", "/admin/dead-letters", "", true, 200},
		{"GET", "/admin/messages/1", "", true, 404},
		{"GET", "/metrics", "", true, 200},
	}
	for _, c := range cases {
		if code, _, _ := e.do(t, c.method, c.path, "", "application/json", c.body); code != 401 {
			t.Errorf("%s %s without a key: %d, want 401", c.method, c.path, code)
		}
		wrong := other
		if c.adminOnly {
			wrong = own
		}
		if code, _, _ := e.do(t, c.method, c.path, wrong, "application/json", c.body); code != 403 {
			t.Errorf("%s %s with a key of the wrong scope: %d, want 403", c.method, c.path, code)
		}
		right := own
		if c.adminOnly {
			right = admin
		}
		if code, _, b := e.do(t, c.method, c.path, right, "application/json", c.body); code != c.want {
			t.Errorf("%s %s with the right key: %d %s, want %d", c.method, c.path, code, b, c.want)
		}
	}
	// Look-alike scopes reach nothing: ſ (long s) is not s.
	if code, _, b := e.do(t, "POST", "/admin/keys", key, "application/json", `{"scopes":["organizer:ſam@example.com"]}`); code != 400 {
		t.Errorf("non-ASCII scope accepted: %d %s", code, b)
	}
	k, token := store.NewAPIKey("lookalike", []string{"organizer:org@examplE.com"}, time.Now())
	k.Scopes = []string{"organizer:ſorg@example.com"} // as if stored by an older build
	e.db.Update(context.Background(), func(tx *store.Tx) error { return tx.PutKey(k) })
	if code, _, _ := e.do(t, "GET", "/event/ev00", token, "", ""); code != 403 {
		t.Errorf("look-alike key on the event: %d, want 403", code)
	}
	if code, _, _ := e.do(t, "GET", "/organizer/ORG@example.com/events", own, "", ""); code != 200 {
		t.Errorf("own key with the address in capitals: %d", code)
	}
	// The admin key reaches every organizer.
	if code, _, _ := e.do(t, "GET", "/event/ev00", admin, "", ""); code != 200 {
		t.Errorf("admin key on an organizer's event: %d", code)
	}
}

func TestAdmin_OrganizerAndKeys(t *testing.T) {
	e := newEnv(t)
	code, _, b := e.do(t, "PATCH", "/admin/organizers/New@Example.com", key, "application/json",
		`{"event_limit": 3, "invite_limit": -1, "bulk_authorized": true}`)
	var o struct {
		Email          string `json:"email"`
		EventLimit     *int   `json:"event_limit"`
		InviteLimit    *int   `json:"invite_limit"`
		BulkAuthorized bool   `json:"bulk_authorized"`
		Suspended      bool   `json:"suspended"`
	}
	json.Unmarshal(b, &o)
	if code != 200 || o.Email != "new@example.com" || *o.EventLimit != 3 || *o.InviteLimit != -1 || !o.BulkAuthorized {
		t.Fatalf("PATCH: %d %s", code, b)
	}
	if code, _, _ := e.do(t, "PATCH", "/admin/organizers/new@example.com", key, "application/json", `{"evnt_limit": 3}`); code != 400 {
		t.Errorf("unknown field: %d, want 400", code)
	}
	e.do(t, "POST", "/admin/organizers/new@example.com/suspend", key, "application/json", `{"reason":"chargeback"}`)
	_, _, b = e.do(t, "GET", "/admin/organizers/new@example.com", key, "", "")
	if !strings.Contains(string(b), `"suspended":true`) || !strings.Contains(string(b), "chargeback") {
		t.Errorf("after suspend: %s", b)
	}
	var stored *store.Organizer
	e.db.View(func(tx *store.Tx) (err error) { stored, err = tx.Organizer("new@example.com"); return err })
	if !stored.Suspended {
		t.Error("suspension not stored")
	}

	code, _, b = e.do(t, "POST", "/admin/keys", key, "application/json", `{"name":"site","scopes":["organizer:New@Example.com"]}`)
	var k struct {
		ID, Key string
		Scopes  []string
	}
	json.Unmarshal(b, &k)
	if code != 201 || !strings.HasPrefix(k.Key, "inv_") || k.Scopes[0] != "organizer:new@example.com" {
		t.Fatalf("create key: %d %s", code, b)
	}
	if code, _, _ := e.do(t, "POST", "/admin/keys", key, "application/json", `{"scopes":["root"]}`); code != 400 {
		t.Errorf("bad scope: %d", code)
	}
	_, _, b = e.do(t, "GET", "/admin/keys", key, "", "")
	if strings.Contains(string(b), k.Key) || strings.Contains(string(b), "hash") {
		t.Errorf("key list shows secrets: %s", b)
	}
	if code, _, _ := e.do(t, "GET", "/organizer/new@example.com/statistics", k.Key, "", ""); code != 200 {
		t.Errorf("new key: %d", code)
	}
	e.do(t, "DELETE", "/admin/keys/"+k.ID, key, "", "")
	if code, _, _ := e.do(t, "GET", "/organizer/new@example.com/statistics", k.Key, "", ""); code != 401 {
		t.Errorf("revoked key: %d, want 401", code)
	}
}

func TestReportCSV_DefusesFormulas(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "org@example.com", 1)
	e.db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutAttendee(&store.Attendee{UID: "ev00", Email: "x@example.com", Name: "=HYPERLINK(\"http://evil\")", Status: "accepted", Origin: "bulk", ProdID: "@SUM(1)"})
	})
	code, hdr, b := e.do(t, "GET", "/event/ev00/report.csv", key, "", "")
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if code != 200 || err != nil || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("report.csv: %d %v %s", code, err, b)
	}
	if strings.Join(rows[0], ",") != "email,name,status,origin,prodid" || rows[1][1] != `'=HYPERLINK("http://evil")` || rows[1][4] != "'@SUM(1)" {
		t.Errorf("rows %q", rows)
	}
}

func TestOrder_Webhook(t *testing.T) {
	e := newEnv(t)
	body := `{"id": 820982911946154500, "order_number": 1001, "email": "buyer@example.com",
		"line_items": [{"product_id": 632910392, "name": "invited Pro",
		"properties": [{"name": "Organizer Email", "value": "Org@Example.com"}]},
		{"product_id": 632910393, "name": "invited Pro (2nd seat)", "properties": []}]}`
	sign := func(s string) string {
		m := hmac.New(sha256.New, []byte("shpss_secret"))
		m.Write([]byte(s))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	post := func(sig, b string) int {
		req, _ := http.NewRequest("POST", e.srv.URL+"/order", strings.NewReader(b))
		req.Header.Set("X-Shopify-Hmac-Sha256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(sign(body)+"x", body); c != 401 {
		t.Errorf("forged signature: %d", c)
	}
	if c := post(sign(body), strings.Replace(body, "1001", "1002", 1)); c != 401 {
		t.Errorf("tampered body: %d", c)
	}
	var o *store.Organizer
	e.db.View(func(tx *store.Tx) error { o, _ = tx.Organizer("org@example.com"); return nil })
	if o != nil {
		t.Fatalf("a forged webhook stored %+v", o)
	}
	for range 2 { // Shopify retries
		if c := post(sign(body), body); c != 200 {
			t.Fatalf("good webhook: %d", c)
		}
	}
	e.db.View(func(tx *store.Tx) error {
		o, _ = tx.Organizer("org@example.com")
		buyer, _ := tx.Organizer("buyer@example.com")
		if o == nil || len(o.Subscriptions) != 1 || o.Subscriptions[0].OrderNumber != "1001" || !o.Paid(time.Now()) {
			t.Errorf("organizer %+v", o)
		}
		if buyer == nil || len(buyer.Subscriptions) != 1 {
			t.Errorf("purchase address without a property %+v", buyer)
		}
		return nil
	})
}
