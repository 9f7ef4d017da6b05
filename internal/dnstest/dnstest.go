// Package dnstest is DNS for tests: a resolver answering from a map, and
// DKIM keys whose public half it publishes, so sender authentication can
// be tested with real SPF, DKIM and DMARC records and never reach the
// network.
package dnstest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"
)

// Resolver answers from its records; a name it has nothing for does not
// exist. It is safe for concurrent use.
type Resolver struct {
	mu  sync.Mutex
	txt map[string][]string
}

// NewResolver returns an empty resolver.
func NewResolver() *Resolver {
	return &Resolver{txt: map[string][]string{}}
}

func key(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// SetTXT sets the TXT records of name.
func (r *Resolver) SetTXT(name string, records ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txt[key(name)] = records
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// LookupTXT implements the resolver interfaces.
func (r *Resolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.txt[key(name)]; ok {
		return v, nil
	}
	return nil, notFound(name)
}

// LookupIPAddr implements the resolver interfaces: no A or AAAA records
// (SPF records in tests name addresses, not hosts).
func (r *Resolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, notFound(host)
}

// LookupMX implements the resolver interfaces: no MX records.
func (r *Resolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, notFound(name)
}

// LookupAddr implements the resolver interfaces: no PTR records.
func (r *Resolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, notFound(addr)
}

// Domain sets up a sending domain: SPF allowing ips, a DMARC record with
// policy p (none, quarantine, reject; "" for no record), and a DKIM key
// under selector "test" whose signer it returns.
func (r *Resolver) Domain(domain, dmarcPolicy string, ips ...string) *Signer {
	spf := "v=spf1"
	for _, ip := range ips {
		if strings.Contains(ip, ":") {
			spf += " ip6:" + ip
		} else {
			spf += " ip4:" + ip
		}
	}
	r.SetTXT(domain, spf+" -all")
	if dmarcPolicy != "" {
		r.SetTXT("_dmarc."+domain, "v=DMARC1; p="+dmarcPolicy)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	r.SetTXT("test._domainkey."+domain, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	return &Signer{Domain: domain, Selector: "test", Key: priv}
}

// Signer DKIM-signs messages for a domain.
type Signer struct {
	Domain, Selector string
	Key              crypto.Signer
}

// Sign returns raw with a DKIM-Signature header prepended.
func (s *Signer) Sign(raw []byte) []byte {
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain: s.Domain, Selector: s.Selector, Signer: s.Key,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "Content-Type", "MIME-Version"},
	})
	if err != nil {
		panic("dnstest: sign: " + err.Error()) // test helper: bad input is a test bug
	}
	return out.Bytes()
}

// TestDomains are the sender domains of the test corpus (testdata/imip)
// and of the tests' own messages.
var TestDomains = []string{
	"example.org", "example.com", "example.net", "nilas.com", "kolab.org", "icloud.com", "linagora.com",
	"gmail.com", "exchange.lyn.lng", "lyon.lan", "adupratvm.lyon.lan", "open-paas.org",
}

// Loopback returns a resolver in which every domain of TestDomains allows
// mail from 127.0.0.1 by SPF (so tests sending from loopback are
// authenticated as those domains), and evil.example does not.
func Loopback() *Resolver {
	r := NewResolver()
	for _, d := range TestDomains {
		r.SetTXT(d, "v=spf1 ip4:127.0.0.1 ip6:::1 -all")
	}
	r.SetTXT("evil.example", "v=spf1 ip4:198.51.100.1 -all")
	return r
}
