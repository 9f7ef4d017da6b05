package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/store"
)

// TestTrust_SignedInvitesAndUnsubscribe: what invited sends verifies
// against the DKIM key it publishes, carries List-Unsubscribe, and the
// one-click unsubscribe from a real invite stops that organizer's next
// invite to that address.
func TestTrust_SignedInvitesAndUnsubscribe(t *testing.T) {
	pemKey, txt, err := mailer.GenerateDKIMKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Loopback()
	dns.SetTXT("invited._domainkey."+testDomain, txt)
	relay := smtptest.NewServer(t, smtptest.Options{})
	app := startApp(t, func(c *Config) {
		c.Relay = "smtp://" + relay.Addr
		c.DKIMKey = keyFile
		c.resolver = dns
	})
	request := readTestdata(t, "google-request-inline-textcalendar.eml")
	mustSend(t, app.SMTPAddr(), "alice@example.org", []string{"create@" + testDomain}, []byte(request))
	uid := eventUID(t, app, "alice@example.org", "69d4c40b4a274636bf23517938df9673@example.org")
	code, err := httpGet("http://" + app.HTTPAddr() + "/event/" + uid + "/invite?email=karim%40example.com&origin=landingpage")
	if err != nil || code != 202 {
		t.Fatalf("invite: %d %v", code, err)
	}
	invite := toAttendees(t, relay, 1)[0]
	v, err := dkim.VerifyWithOptions(bytes.NewReader(invite.Data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return dns.LookupTXT(context.Background(), name) },
	})
	if err != nil || len(v) != 1 || v[0].Err != nil || v[0].Domain != testDomain {
		t.Fatalf("invite's DKIM: %v %+v", err, v)
	}
	eventually(t, "the organizer's notice", func() bool { return len(relayed(relay, true)) > 0 })
	for _, n := range relayed(relay, true) { // notices are signed too
		if !bytes.Contains(n.Data, []byte("DKIM-Signature:")) {
			t.Error("unsigned notice")
		}
	}
	head := string(invite.Data[:bytes.Index(invite.Data, []byte("\r\n\r\n"))])
	head = strings.ReplaceAll(head, "\r\n\t", " ")
	head = strings.ReplaceAll(head, "\r\n ", " ")
	link := regexp.MustCompile(`List-Unsubscribe: <(https?://[^>]+)>, <mailto:unsubscribe\+[a-z0-9]+@` + testDomain + `>`).FindStringSubmatch(head)
	if link == nil || !strings.Contains(head, "List-Unsubscribe-Post: List-Unsubscribe=One-Click") {
		t.Fatalf("no List-Unsubscribe in:\n%s", head)
	}
	blocked := func() bool {
		t.Helper()
		var b bool
		if err := app.DB().View(func(tx *store.Tx) error { b = tx.Blocked("karim@example.com", "alice@example.org"); return nil }); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A mail scanner following the link changes nothing.
	if code, _ := httpGet(link[1]); code != 200 {
		t.Errorf("GET unsubscribe page: %d", code)
	}
	if blocked() {
		t.Fatal("a GET of the unsubscribe link blocked the organizer")
	}
	// One click, as Gmail does it (RFC 8058).
	resp, err := http.Post(link[1], "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("one-click unsubscribe: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if !blocked() {
		t.Fatal("one-click unsubscribe recorded no block")
	}

	// The organizer's next event: karim is not invited to it.
	next := strings.ReplaceAll(request, "69d4c40b4a274636bf23517938df9673", "second-event")
	mustSend(t, app.SMTPAddr(), "alice@example.org", []string{"create@" + testDomain}, []byte(next))
	uid2 := eventUID(t, app, "alice@example.org", "second-event@example.org")
	var res struct {
		Results []struct{ Status, Error string }
	}
	api(t, app, "POST", "/event/"+uid2+"/invites", strings.NewReader(`[{"email":"karim@example.com"},{"email":"other@example.com"}]`), &res)
	if len(res.Results) != 2 || res.Results[0].Status != "rejected" || !strings.Contains(res.Results[0].Error, "asked not to receive") || res.Results[1].Status != "queued" {
		t.Errorf("invites after the unsubscribe: %+v", res)
	}
	if code, _ := httpGet("http://" + app.HTTPAddr() + "/unsubscribe?t=" + url.QueryEscape("forged")); code != 404 {
		t.Errorf("unknown token: %d", code)
	}
}
