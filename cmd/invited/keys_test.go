package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var tokenRe = regexp.MustCompile(`(?m)^(inv_\S+)$`)

// TestKeys_CLI creates, uses, lists and revokes a key with `invited keys`,
// first on a stopped daemon's database, then through a running daemon.
func TestKeys_CLI(t *testing.T) {
	dir := t.TempDir()
	env := func(string) string { return "" }
	keysCmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"keys"}, args...), env, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := keysCmd("create", "--data", dir, "--scope", "organizer:Alice@Example.org", "--name", "alice's site")
	if err != nil {
		t.Fatalf("keys create (offline): %v\n%s", err, out)
	}
	offline := tokenRe.FindString(out)
	if offline == "" {
		t.Fatalf("no key in %q", out)
	}
	if _, err := keysCmd("create", "--data", dir, "--scope", "organiser:x@y"); err == nil {
		t.Error("a bad scope was accepted")
	}

	// The daemon holds the database: keys goes through its API, found in
	// DATA/listen.json (no --http), with the key given or kept in DATA.
	app := startApp(t, func(c *Config) { c.Data = dir; c.AdminKey = "" })
	out, err = keysCmd("create", "--data", dir, "--admin-key", app.AdminKey(), "--scope", "admin")
	if err != nil {
		t.Fatalf("keys create (through the daemon): %v\n%s", err, out)
	}
	online := tokenRe.FindString(out)
	get := func(token, path string) int {
		req, _ := http.NewRequest("GET", "http://"+app.HTTPAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(offline, "/organizer/alice@example.org/events"); c != 200 {
		t.Errorf("organizer key on its own events: %d", c)
	}
	if c := get(offline, "/organizer/bob@example.org/events"); c != 403 {
		t.Errorf("organizer key on another organizer: %d, want 403", c)
	}
	if c := get(offline, "/system/statistics"); c != 403 {
		t.Errorf("organizer key on system statistics: %d, want 403", c)
	}
	if c := get(online, "/system/statistics"); c != 200 {
		t.Errorf("admin key: %d", c)
	}
	out, err = keysCmd("list", "--data", dir)
	if err != nil || !strings.Contains(out, "organizer:alice@example.org") || !strings.Contains(out, "alice's site") {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	id := strings.Split(strings.TrimPrefix(offline, "inv_"), "_")[0]
	if out, err := keysCmd("revoke", "--data", dir, id); err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, out)
	}
	if c := get(offline, "/organizer/alice@example.org/events"); c != 401 {
		t.Errorf("revoked key: %d, want 401", c)
	}
}
