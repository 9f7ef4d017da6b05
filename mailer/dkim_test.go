package mailer_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/mailer"
)

// TestSigner_VerifiesAgainstPublishedKey signs with a generated key, writes
// it out and reads it back as an admin would, and checks the message at
// the relay verifies against the published TXT record.
func TestSigner_VerifiesAgainstPublishedKey(t *testing.T) {
	pemKey, txt, err := mailer.GenerateDKIMKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := mailer.LoadDKIMKey(path)
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := mailer.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &mailer.Signer{Next: outbox, Domain: "invite.test", Selector: "invited", Key: key}
	msg := []byte("From: Alice <rsvp@invite.test>\r\nTo: bob@example.com\r\nSubject: Invitation\r\nMessage-ID: <x@invite.test>\r\n" +
		"List-Unsubscribe: <https://invite.test/unsubscribe?t=abc>\r\n\r\nHello Bob.\r\n")
	if err := s.Send(context.Background(), "rsvp@invite.test", []string{"bob@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	sent, err := os.ReadFile(outbox.Path(msg))
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.NewResolver()
	dns.SetTXT("invited._domainkey.invite.test", txt)
	verify := func(raw []byte) error {
		v, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) { return dns.LookupTXT(context.Background(), name) },
		})
		if err != nil {
			return err
		}
		if len(v) != 1 || v[0].Domain != "invite.test" {
			t.Fatalf("verifications %+v", v)
		}
		return v[0].Err
	}
	if err := verify(sent); err != nil {
		t.Fatalf("signed message does not verify: %v\n%s", err, sent)
	}
	if err := verify([]byte(strings.Replace(string(sent), "Hello Bob.", "Hello Eve.", 1))); err == nil {
		t.Error("a changed body still verifies")
	}
	if !strings.Contains(string(sent), "List-Unsubscribe") || !strings.Contains(string(sent[:200]), "DKIM-Signature") {
		t.Errorf("signature not prepended:\n%s", sent)
	}
}
