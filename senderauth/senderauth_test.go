package senderauth_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/senderauth"
)

func message(from string) []byte {
	return []byte("From: Alice <" + from + ">\r\nTo: create@invite.test\r\nSubject: Meeting\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain\r\n\r\nHello.\r\n")
}

var (
	goodIP = net.ParseIP("192.0.2.10")
	badIP  = net.ParseIP("198.51.100.66")
)

func TestCheck_Policies(t *testing.T) {
	dns := dnstest.NewResolver()
	alice := dns.Domain("example.com", "reject", "192.0.2.10")
	other := dns.Domain("evil.example", "", "198.51.100.66")
	dns.Domain("nodmarc.example", "", "192.0.2.10")
	sub := &dnstest.Signer{Domain: "mail.example.com", Selector: alice.Selector, Key: alice.Key}
	dns.SetTXT("test._domainkey.mail.example.com", mustTXT(t, dns, "test._domainkey.example.com"))

	cases := []struct {
		name          string
		raw           []byte
		ip            net.IP
		mailFrom      string
		authenticated bool
		dmarc         string
	}{
		{"SPF pass, aligned", message("alice@example.com"), goodIP, "bounce@example.com", true, "pass"},
		{"DKIM pass, from anywhere", alice.Sign(message("alice@example.com")), badIP, "x@evil.example", true, "pass"},
		{"DKIM of a subdomain (relaxed)", sub.Sign(message("alice@example.com")), badIP, "", true, "pass"},
		{"forged: no SPF, no DKIM", message("alice@example.com"), badIP, "alice@example.com", false, "fail"},
		{"SPF pass for another domain", message("alice@example.com"), badIP, "x@evil.example", false, "fail"},
		{"DKIM of another domain", other.Sign(message("alice@example.com")), badIP, "x@evil.example", false, "fail"},
		{"body changed after signing", []byte(strings.Replace(string(alice.Sign(message("alice@example.com"))), "Hello.", "Hacked.", 1)), badIP, "", false, "fail"},
		{"no DMARC record, SPF aligned", message("bob@nodmarc.example"), goodIP, "bob@nodmarc.example", true, "none"},
	}
	for _, c := range cases {
		for _, policy := range []string{senderauth.PolicyAligned, senderauth.PolicyDMARC, senderauth.PolicyNone} {
			ch := &senderauth.Checker{Resolver: dns, Policy: policy}
			v := ch.Check(context.Background(), c.raw, nil, c.ip, "mx.example.net", c.mailFrom)
			wantPass := c.authenticated
			wantAuth, wantDMARC := c.authenticated, c.dmarc
			switch policy {
			case senderauth.PolicyDMARC:
				wantPass = c.dmarc == "pass"
			case senderauth.PolicyNone:
				// Nothing looked up: the From header is believed.
				wantPass, wantAuth, wantDMARC = true, true, ""
			}
			if v.Authenticated != wantAuth || v.DMARC != wantDMARC || v.Pass != wantPass {
				t.Errorf("%s (%s): authenticated %v dmarc %s pass %v; want %v %s %v\n%s",
					c.name, policy, v.Authenticated, v.DMARC, v.Pass, wantAuth, wantDMARC, wantPass, v.Reason)
			}
		}
	}
}

func mustTXT(t *testing.T, dns *dnstest.Resolver, name string) string {
	txt, err := dns.LookupTXT(context.Background(), name)
	if err != nil || len(txt) != 1 {
		t.Fatal(name, err)
	}
	return txt[0]
}

func TestCheck_BadFromHeaders(t *testing.T) {
	dns := dnstest.NewResolver()
	dns.Domain("example.com", "reject", "192.0.2.10")
	ch := &senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyAligned}
	for _, raw := range []string{
		"From: a@example.com\r\nFrom: b@example.com\r\n\r\nx",
		"From: a@example.com, b@example.com\r\n\r\nx",
		"Subject: no from\r\n\r\nx",
		"From: not an address\r\n\r\nx",
	} {
		v := ch.Check(context.Background(), []byte(raw), nil, goodIP, "h", "a@example.com")
		if v.Authenticated || v.Pass || v.Reason == "" {
			t.Errorf("%q: %+v", raw, v)
		}
	}
}

func TestCheck_TrustedAuthenticationResults(t *testing.T) {
	dns := dnstest.NewResolver() // empty: nothing may be looked up
	ch := &senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyAligned, TrustedAuthServID: "mx.invite.test"}
	trusted := "Authentication-Results: mx.invite.test;\r\n spf=pass smtp.mailfrom=alice@example.com;\r\n dkim=pass header.d=example.com;\r\n dmarc=pass header.from=example.com\r\n"
	forged := "Authentication-Results: evil.example; spf=pass smtp.mailfrom=alice@example.com; dkim=pass header.d=example.com\r\n"
	below := "Authentication-Results: mx.invite.test; spf=pass smtp.mailfrom=alice@example.com; dmarc=pass header.from=example.com\r\n"
	failing := "Authentication-Results: mx.invite.test; spf=fail smtp.mailfrom=alice@example.com; dkim=none; dmarc=fail header.from=example.com\r\n"
	cases := []struct {
		name    string
		headers string
		want    bool
	}{
		{"trusted pass", trusted, true},
		{"only someone else's header", forged, false},
		{"forged one above the trusted failing one", forged + failing, false},
		{"the topmost trusted one counts, not a pass further down", failing + below, false},
		{"none at all", "", false},
	}
	for _, c := range cases {
		raw := append([]byte(c.headers), message("alice@example.com")...)
		v := ch.Check(context.Background(), raw, nil, badIP, "h", "alice@example.com")
		if v.Authenticated != c.want || v.Pass != c.want {
			t.Errorf("%s: authenticated %v, want %v (%s)", c.name, v.Authenticated, c.want, v.Reason)
		}
	}
}

func TestCheckSPF(t *testing.T) {
	dns := dnstest.NewResolver()
	dns.Domain("example.com", "", "192.0.2.10")
	for _, c := range []struct {
		ip   net.IP
		from string
		want string
	}{
		{goodIP, "a@example.com", "pass"},
		{badIP, "a@example.com", "fail"},
		{goodIP, "a@unknown.example", "none"},
	} {
		if got := senderauth.CheckSPF(context.Background(), dns, c.ip, "h.example", c.from); got.Result != c.want {
			t.Errorf("SPF %s for %s: %+v, want %s", c.ip, c.from, got, c.want)
		}
	}
}

// TestSPFAtData: the listener's SPF check looks up only what the
// checker's policy will use.
func TestSPFAtData(t *testing.T) {
	dns := dnstest.NewResolver()
	dns.Domain("example.com", "", "192.0.2.10")
	for _, c := range []struct {
		checker      senderauth.Checker
		want, domain string
	}{
		{senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyAligned}, "pass", "example.com"},
		{senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyDMARC}, "pass", "example.com"},
		{senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyNone}, "", ""},
		{senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyAligned, TrustedAuthServID: "mx.example.net"}, "", ""},
	} {
		r, d := c.checker.SPFAtData(context.Background(), goodIP, "h.example", "a@example.com")
		if r != c.want || d != c.domain {
			t.Errorf("policy %s, trusted %q: %q %q, want %q %q", c.checker.Policy, c.checker.TrustedAuthServID, r, d, c.want, c.domain)
		}
		// The listener skips the call (and its timer) when it finds nothing.
		if uses := c.checker.UsesSPFAtData(); uses != (c.want != "") {
			t.Errorf("policy %s, trusted %q: UsesSPFAtData %v, yet SPFAtData found %q", c.checker.Policy, c.checker.TrustedAuthServID, uses, r)
		}
	}
}

// FuzzAuthenticationResults: whatever an upstream header says, Check
// decides without panicking, and never believes a header of another
// authserv-id.
func FuzzAuthenticationResults(f *testing.F) {
	f.Add("mx.invite.test; spf=pass smtp.mailfrom=alice@example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com")
	f.Add("mx.invite.test 1; dkim=pass (good) header.i=@example.com")
	f.Add("other; spf=pass smtp.mailfrom=a@example.com")
	f.Add("mx.invite.test; none")
	f.Add(";;;=\"\x00")
	dns := dnstest.NewResolver()
	ch := &senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyAligned, TrustedAuthServID: "mx.invite.test"}
	f.Fuzz(func(t *testing.T, value string) {
		value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
		raw := append([]byte("Authentication-Results: "+value+"\r\n"), message("alice@example.com")...)
		v := ch.Check(context.Background(), raw, nil, badIP, "h", "alice@example.com")
		id, _, _ := strings.Cut(strings.TrimSpace(value), ";")
		if v.Authenticated && !strings.EqualFold(strings.Fields(id + " x")[0], "mx.invite.test") {
			t.Fatalf("believed a header of %q: %s", id, value)
		}
	})
}

// A DKIM-Signature is verified wherever it sits in the header, even below
// a line net/textproto refuses (go-msgauth reads on) and with a space
// before its colon; a message without one is not verified at all. (With
// simple canonicalization, renaming the field breaks its signature: those
// must fail verification, not skip it.)
func TestCheck_DKIMFoundAnywhereInHeader(t *testing.T) {
	dns := dnstest.NewResolver()
	alice := dns.Domain("example.com", "reject", "192.0.2.10")
	signed := string(alice.Sign(message("alice@example.com")))
	// The signature field: its first line and the folded ones after it.
	sig, rest, _ := strings.Cut(signed, "\r\nFrom: ")
	from, afterFrom, _ := strings.Cut("From: "+rest, "\r\n")
	for _, c := range []struct {
		name, raw string
		pass      bool
	}{
		{"below a refused line", from + "\r\nX-Odd: a\x01b\r\n" + sig + "\r\n" + afterFrom, true},
		{"space before colon", from + "\r\n" + strings.Replace(sig, "DKIM-Signature:", "DKIM-Signature :", 1) + "\r\n" + afterFrom, false},
		{"lower case", strings.Replace(signed, "DKIM-Signature:", "dkim-signature:", 1), false},
	} {
		ch := &senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyDMARC}
		v := ch.Check(context.Background(), []byte(c.raw), nil, badIP, "mx.example.net", "x@evil.example")
		if len(v.DKIM) != 1 || (v.DKIM[0].Result == "pass") != c.pass || v.Pass != c.pass {
			t.Errorf("%s: DKIM %+v, pass %v; want one signature verified, pass %v (%s)", c.name, v.DKIM, v.Pass, c.pass, v.Reason)
		}
	}
	ch := &senderauth.Checker{Resolver: dns, Policy: senderauth.PolicyDMARC}
	if v := ch.Check(context.Background(), message("alice@example.com"), nil, badIP, "mx.example.net", "x@evil.example"); len(v.DKIM) != 0 || v.Pass {
		t.Errorf("unsigned: DKIM %+v, pass %v", v.DKIM, v.Pass)
	}
}
