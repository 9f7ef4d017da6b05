// Package senderauth decides who really sent a message: SPF for the
// connecting IP and the envelope sender, DKIM signatures, and DMARC
// alignment with the From header, using blitiri.com.ar/go/spf and
// github.com/emersion/go-msgauth. Behind a trusted MTA it reads that MTA's
// Authentication-Results header instead.
//
// All DNS goes through a Resolver the caller gives, so tests (and admins
// with a local resolver) decide where lookups go.
package senderauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Policies: what a message needs before it may act for the address in
// its From header.
const (
	// PolicyNone trusts the From header for everything, looks nothing up,
	// and so lets anyone act (and be mailed) as anyone: local development
	// only.
	PolicyNone = "none"
	// PolicyAligned needs an SPF pass for the envelope sender, or a DKIM
	// pass, of a domain aligned (same organizational domain) with the From
	// domain.
	PolicyAligned = "aligned"
	// PolicyDMARC needs a DMARC pass: the From domain publishes a DMARC
	// record and SPF or DKIM passes with the alignment it asks for.
	PolicyDMARC = "dmarc"
)

// Resolver is the DNS the checks use; *net.Resolver is one.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// NewResolver returns a resolver that asks the DNS server at addr
// (host:port), or the system's when addr is empty.
func NewResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// SPF is the result of an SPF check.
type SPF struct {
	Result string `json:"result"` // pass, fail, softfail, neutral, none, temperror, permerror
	Domain string `json:"domain"` // the domain checked: of MAIL FROM, or HELO for a null sender
}

// SPFAtData is CheckSPF for the SMTP listener to run at DATA, while the
// sender is still connected, when c will use the result: with policy none
// or a trusted Authentication-Results it looks nothing up and returns "".
func (c *Checker) SPFAtData(ctx context.Context, ip net.IP, helo, mailFrom string) (result, domain string) {
	if !c.UsesSPFAtData() {
		return "", ""
	}
	r := CheckSPF(ctx, c.Resolver, ip, helo, mailFrom)
	return r.Result, r.Domain
}

// UsesSPFAtData reports whether c uses what SPFAtData finds: not with
// policy none, nor when it trusts another server's Authentication-Results.
func (c *Checker) UsesSPFAtData() bool {
	return c.Policy != PolicyNone && c.TrustedAuthServID == ""
}

// CheckSPF checks whether ip may send for mailFrom's domain (HELO's when
// mailFrom is empty).
func CheckSPF(ctx context.Context, r Resolver, ip net.IP, helo, mailFrom string) SPF {
	domain := helo
	if _, d, ok := strings.Cut(mailFrom, "@"); ok {
		domain = d
	}
	res, _ := spf.CheckHostWithSender(ip, helo, mailFrom, spf.WithResolver(r), spf.WithContext(ctx))
	return SPF{Result: string(res), Domain: strings.ToLower(domain)}
}

// DKIM is the result of one DKIM signature.
type DKIM struct {
	Domain string `json:"domain"`
	Result string `json:"result"` // pass, fail, temperror, permerror
	Reason string `json:"reason,omitempty"`
}

// Verdict is what was decided about a message's sender.
type Verdict struct {
	From       string `json:"from"` // the From header's address, lower-cased
	FromDomain string `json:"from_domain"`
	SPF        SPF    `json:"spf"`
	DKIM       []DKIM `json:"dkim,omitempty"`
	DMARC      string `json:"dmarc"` // pass, fail, none (no record), temperror
	// Aligned: an SPF or DKIM pass aligned (relaxed) with the From domain.
	Aligned bool `json:"aligned"`
	// Pass: the policy is met; the message may act for From.
	Pass bool `json:"pass"`
	// Authenticated: the From address is proven, whatever the policy:
	// only then may the daemon mail it about this message.
	Authenticated bool   `json:"authenticated"`
	Policy        string `json:"policy"`
	Reason        string `json:"reason"`
	Source        string `json:"source"` // "checked", or "authentication-results of ID"
}

// Checker decides verdicts. Its zero value is not usable: set Resolver and
// Policy.
type Checker struct {
	Resolver Resolver
	Policy   string
	// TrustedAuthServID, when set, makes Check read the topmost
	// Authentication-Results header with this authserv-id (an upstream MTA
	// that checked already) instead of checking; such headers with another
	// id are ignored, and so are ours further down.
	TrustedAuthServID string
	// Timeout bounds the DNS work of one Check (default 20s).
	Timeout time.Duration
}

// Check decides about raw, received from ip (HELO helo, MAIL FROM
// mailFrom); spfRes is the SPF result found at SMTP time, or nil to check
// it now.
func (c *Checker) Check(ctx context.Context, raw []byte, spfRes *SPF, ip net.IP, helo, mailFrom string) Verdict {
	v := Verdict{Policy: c.Policy, Source: "checked"}
	hdr, err := readHeader(raw)
	if err != nil {
		v.Reason = "the header cannot be read: " + err.Error()
		return c.decide(v)
	}
	from, err := singleFrom(hdr)
	if err != nil {
		v.Reason = err.Error()
		return c.decide(v)
	}
	v.From = from
	_, v.FromDomain, _ = strings.Cut(from, "@")
	if c.Policy == PolicyNone {
		v.Source, v.Reason = "not checked", "policy none: the From header is trusted"
		v.Pass, v.Authenticated = true, true
		return v
	}

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if c.TrustedAuthServID != "" {
		v.Source = "authentication-results of " + c.TrustedAuthServID
		if !c.fromAuthResults(hdr, &v) {
			v.Reason = "no Authentication-Results header from " + c.TrustedAuthServID
			return c.decide(v)
		}
	} else {
		if spfRes != nil {
			v.SPF = *spfRes
		} else if ip != nil {
			v.SPF = CheckSPF(ctx, c.Resolver, ip, helo, mailFrom)
		}
		if mentionsDKIM(raw) { // else nothing to verify, nor to buffer the message for
			v.DKIM = c.checkDKIM(ctx, raw)
		}
		v.DMARC = c.checkDMARC(ctx, &v)
	}
	return c.decide(v)
}

// decide applies the policy to what was found.
func (c *Checker) decide(v Verdict) Verdict {
	if v.From != "" {
		v.Aligned = aligned(v.SPF.Domain, v.FromDomain) && v.SPF.Result == "pass"
		for _, d := range v.DKIM {
			if d.Result == "pass" && aligned(d.Domain, v.FromDomain) {
				v.Aligned = true
			}
		}
	}
	v.Authenticated = v.Aligned || v.DMARC == "pass"
	switch c.Policy {
	case PolicyNone:
		v.Pass = true
	case PolicyDMARC:
		v.Pass = v.DMARC == "pass"
	default:
		v.Pass = v.Authenticated
	}
	if v.Reason == "" {
		v.Reason = v.explain()
	}
	return v
}

func (v *Verdict) explain() string {
	var dk []string
	for _, d := range v.DKIM {
		dk = append(dk, d.Result+" ("+d.Domain+")")
	}
	dkim := "none"
	if len(dk) > 0 {
		dkim = strings.Join(dk, ", ")
	}
	verdict := "not authenticated"
	if v.Authenticated {
		verdict = "authenticated"
	}
	return fmt.Sprintf("From %s %s: SPF %s (%s), DKIM %s, DMARC %s", v.From, verdict, v.SPF.Result, v.SPF.Domain, dkim, v.DMARC)
}

// aligned reports relaxed alignment: the same organizational domain.
func aligned(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return orgDomain(a) == orgDomain(b)
}

func orgDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

// maxSignatures bounds the DKIM signatures verified per message.
const maxSignatures = 5

func (c *Checker) checkDKIM(ctx context.Context, raw []byte) []DKIM {
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return c.Resolver.LookupTXT(ctx, name) },
		MaxVerifications: maxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return []DKIM{{Result: "permerror", Reason: err.Error()}}
	}
	var out []DKIM
	for _, vf := range verifs {
		d := DKIM{Domain: strings.ToLower(vf.Domain), Result: "pass"}
		switch {
		case vf.Err == nil:
		case dkim.IsTempFail(vf.Err):
			d.Result, d.Reason = "temperror", vf.Err.Error()
		case dkim.IsPermFail(vf.Err):
			d.Result, d.Reason = "permerror", vf.Err.Error()
		default:
			d.Result, d.Reason = "fail", vf.Err.Error()
		}
		out = append(out, d)
	}
	return out
}

// checkDMARC evaluates the From domain's DMARC record against the SPF and
// DKIM results: pass, fail, none (no record) or temperror.
func (c *Checker) checkDMARC(ctx context.Context, v *Verdict) string {
	lookup := func(name string) ([]string, error) { return c.Resolver.LookupTXT(ctx, name) }
	rec, err := dmarc.LookupWithOptions(v.FromDomain, &dmarc.LookupOptions{LookupTXT: lookup})
	if errors.Is(err, dmarc.ErrNoPolicy) {
		// RFC 7489 6.6.3: fall back to the organizational domain's record.
		if org := orgDomain(v.FromDomain); org != v.FromDomain {
			rec, err = dmarc.LookupWithOptions(org, &dmarc.LookupOptions{LookupTXT: lookup})
		}
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return "none"
	case dmarc.IsTempFail(err):
		return "temperror"
	case err != nil:
		return "permerror"
	}
	match := func(d string, mode dmarc.AlignmentMode) bool {
		if mode == dmarc.AlignmentStrict {
			return strings.EqualFold(strings.TrimSuffix(d, "."), v.FromDomain)
		}
		return aligned(d, v.FromDomain)
	}
	if v.SPF.Result == "pass" && match(v.SPF.Domain, rec.SPFAlignment) {
		return "pass"
	}
	for _, d := range v.DKIM {
		if d.Result == "pass" && match(d.Domain, rec.DKIMAlignment) {
			return "pass"
		}
	}
	return "fail"
}

// fromAuthResults fills v from the topmost Authentication-Results header
// of the trusted authserv-id. It reports whether there was one.
func (c *Checker) fromAuthResults(hdr textproto.MIMEHeader, v *Verdict) bool {
	for _, value := range hdr.Values("Authentication-Results") {
		id, results, err := authres.Parse(value)
		if err != nil || !strings.EqualFold(id, c.TrustedAuthServID) {
			continue
		}
		for _, r := range results {
			switch r := r.(type) {
			case *authres.SPFResult:
				v.SPF = SPF{Result: string(r.Value), Domain: domainOf(r.From)}
				if v.SPF.Domain == "" {
					v.SPF.Domain = strings.ToLower(r.Helo)
				}
			case *authres.DKIMResult:
				d := r.Domain
				if d == "" {
					d = domainOf(r.Identifier)
				}
				v.DKIM = append(v.DKIM, DKIM{Domain: strings.ToLower(d), Result: string(r.Value), Reason: r.Reason})
			case *authres.DMARCResult:
				if strings.EqualFold(r.From, v.FromDomain) || r.From == "" {
					v.DMARC = string(r.Value)
				}
			}
		}
		if v.DMARC == "" {
			v.DMARC = "none"
		}
		return true // only the topmost one of the trusted id counts
	}
	return false
}

func domainOf(s string) string {
	if _, d, ok := strings.Cut(s, "@"); ok {
		return strings.ToLower(d)
	}
	return strings.ToLower(s)
}

// mentionsDKIM reports whether the header of raw (up to its first empty
// line) holds "DKIM-Signature" in any case. It looks at the bytes, not at
// readHeader's result, which stops at a line net/textproto refuses while
// go-msgauth reads on, and which keeps "DKIM-Signature :" under a key of
// its own. A mention elsewhere in the header only costs a verification.
func mentionsDKIM(raw []byte) bool {
	head := raw
	for _, end := range []string{"\n\r\n", "\n\n"} {
		if i := bytes.Index(head, []byte(end)); i >= 0 {
			head = head[:i]
		}
	}
	const name = "dkim-signature"
	for i := 0; i+len(name) <= len(head); i++ {
		if head[i]|0x20 == 'd' && bytes.EqualFold(head[i:i+len(name)], []byte(name)) {
			return true
		}
	}
	return false
}

// readHeader reads the message header (bounded by the message itself).
func readHeader(raw []byte) (textproto.MIMEHeader, error) {
	// A small buffer: the header is most of what is read, and textproto
	// reads a line longer than the buffer all the same.
	r := textproto.NewReader(bufio.NewReaderSize(bytes.NewReader(raw), 1024))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return nil, err
	}
	return h, nil
}

// singleFrom returns the one address of the From header: DMARC refuses a
// message with several From headers or addresses, and so do we.
func singleFrom(h textproto.MIMEHeader) (string, error) {
	froms := h.Values("From")
	if len(froms) != 1 {
		return "", fmt.Errorf("the message has %d From headers, not one", len(froms))
	}
	list, err := mail.ParseAddressList(froms[0])
	if err != nil || len(list) != 1 {
		return "", fmt.Errorf("the From header is not one address")
	}
	addr := strings.ToLower(list[0].Address)
	if !strings.Contains(addr, "@") {
		return "", fmt.Errorf("the From address has no domain")
	}
	return addr, nil
}
