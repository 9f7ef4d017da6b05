package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invited/invited/mailer"
)

// TestDKIMGenerate: the key is written where serve will look for it
// (--dkim-key, else DIR/dkim.pem), the record printed is its public half
// under serve's selector, and a key in use is never overwritten.
func TestDKIMGenerate(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"INVITED_DKIM_SELECTOR": "s2026"}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"dkim", "generate", "--data", dir, "--domain", "invite.test"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("dkim generate: %v %s", err, errOut.String())
	}
	key, err := mailer.LoadDKIMKey(filepath.Join(dir, "dkim.pem"))
	if err != nil {
		t.Fatal(err)
	}
	txt, err := mailer.DKIMRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "s2026._domainkey.invite.test. IN TXT") || !strings.Contains(strings.ReplaceAll(out.String(), `" "`, ""), txt[len(txt)-40:]) {
		t.Errorf("printed record does not publish the key under the selector:\n%s", out.String())
	}
	if err := run(context.Background(), []string{"dkim", "generate", "--data", dir, "--domain", "invite.test"}, getenv, &out, &errOut); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("second generate over the same file: %v", err)
	}
	other := filepath.Join(dir, "other.pem")
	if err := run(context.Background(), []string{"dkim", "generate", "--domain", "invite.test", "--dkim-key", other}, getenv, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if _, err := mailer.LoadDKIMKey(other); err != nil {
		t.Errorf("--dkim-key not honoured: %v", err)
	}
}
