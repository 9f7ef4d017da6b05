package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/httpapi"
)

func TestLoadConfig_Precedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "invited.toml")
	os.WriteFile(file, []byte(`
domain = "from-file.example"
smtp = "127.0.0.1:2600"
http = "127.0.0.1:8600"
relay = "smtps://u:p@relay.example:465"
landing_hosts = ["a.example"]
shutdown_timeout = "1m"
max_recipients = 5
`), 0o600)
	env := map[string]string{
		"INVITED_CONFIG":               file,
		"INVITED_SMTP":                 "127.0.0.1:2700",
		"INVITED_HTTP":                 "127.0.0.1:8700",
		"INVITED_LANDING_HOSTS":        "b.example, c.example",
		"INVITED_INVITE_RATE_ATTENDEE": "2/24h",
		"INVITED_SCOPE":                "admin", // not a serve flag: the caller's own
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	scope := fs.String("scope", "", "a flag of the command, as keys create has")
	cfg, err := loadConfig([]string{"--http", "127.0.0.1:8800", "--auth-policy", "none"}, func(k string) string { return env[k] }, fs)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"domain (file)", cfg.Domain, "from-file.example"},
		{"smtp (env over file)", cfg.SMTP, "127.0.0.1:2700"},
		{"http (flag over env)", cfg.HTTP, "127.0.0.1:8800"},
		{"relay (file)", cfg.Relay, "smtps://u:p@relay.example:465"},
		{"auth policy (flag)", cfg.AuthPolicy, "none"},
		{"data (default)", cfg.Data, "./data"},
		{"landing hosts (file then env)", strings.Join(cfg.LandingHosts, ","), "a.example,b.example,c.example"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if *scope != "" {
		t.Errorf("the command's own --scope was set from INVITED_SCOPE: %q", *scope)
	}
	if r := cfg.InviteRateAttendee; r.N != 2 || r.Per != 24*time.Hour || r.Burst != 0 || cfg.InviteRateIP != httpapi.DefaultRateLimits.PerIP {
		t.Errorf("rates %v %v", cfg.InviteRateAttendee, cfg.InviteRateIP)
	}
	if time.Duration(cfg.ShutdownTimeout) != time.Minute || cfg.MaxRecipients != 5 {
		t.Errorf("shutdown timeout %v, max recipients %d", time.Duration(cfg.ShutdownTimeout), cfg.MaxRecipients)
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("domian = \"typo.example\"\n"), 0o600)
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--config", bad}, nil, "unknown keys"},
		{[]string{"--auth-policy", "maybe"}, nil, "auth-policy"},
		{[]string{"--relay", "http://x:1"}, nil, "relay"},
		{nil, map[string]string{"INVITED_MAX_RECIPIENTS": "many"}, "INVITED_MAX_RECIPIENTS"},
		{[]string{"--tls-cert", "a.pem"}, nil, "go together"},
		{[]string{"--invite-rate-ip", "fast"}, nil, "N/DURATION"},
		{[]string{"--invite-rate-ip", "30x/1m"}, nil, "N/DURATION"},
		{[]string{"--auth-policy", "dmarc", "--dns", "nocolon"}, nil, "dns"},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		_, err := loadConfig(c.args, func(k string) string { return c.env[k] }, fs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want one mentioning %q", c.args, c.env, err, c.want)
		}
	}
}

func TestHelp_DescribesEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, &out, &errOut)
	if exitCode(err) != 0 {
		t.Fatalf("serve --help: %v", err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	serveFlags(fs, new(Config))
	fs.VisitAll(func(f *flag.Flag) {
		for name, text := range map[string]string{"invited --help": out.String(), "invited serve --help": errOut.String()} {
			if !strings.Contains(text, "-"+f.Name) {
				t.Errorf("%s does not describe -%s", name, f.Name)
			}
		}
		if f.Name != "config" && !strings.Contains(f.Usage, envName(f.Name)) {
			t.Errorf("-%s does not name its variable %s", f.Name, envName(f.Name))
		}
	})
}
