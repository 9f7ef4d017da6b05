package mailer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultConns       = 4
	DefaultTimeout     = 30 * time.Second
	DefaultIdleTimeout = 30 * time.Second
)

// Config configures a Relay.
type Config struct {
	// URL names the relay: smtp://[user:pass@]host[:port] (port 25 by
	// default, 587 for submission; STARTTLS is used when the relay offers it)
	// or smtps://[user:pass@]host[:port] (implicit TLS, port 465 by default).
	// With a user name, the client authenticates with the strongest
	// mechanism the relay offers; PLAIN and LOGIN only over TLS. User and
	// password are URL-encoded (%40 for @).
	URL         string
	Conns       int           // parallel connections, DefaultConns when 0
	Timeout     time.Duration // per SMTP command, for connecting, and for the message body; DefaultTimeout when 0
	HELO        string        // our host name for EHLO; the OS host name when empty
	TLSConfig   *tls.Config   // optional, cloned; ServerName defaults to the URL's host
	IdleTimeout time.Duration // an unused connection is closed after this long, DefaultIdleTimeout when 0
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// endpoint is a parsed relay URL.
type endpoint struct {
	host        string
	port        int
	implicitTLS bool
	user, pass  string
	redacted    string // for logs: the URL without the password
}

func parseURL(raw string) (endpoint, error) {
	const want = "want smtp://[user:pass@]host[:port] or smtps://…"
	if raw == "" {
		return endpoint{}, errors.New("mailer: relay URL is empty, " + want)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue.Error() would print the password
		}
		return endpoint{}, fmt.Errorf("mailer: relay URL: %w", err)
	}
	var ep endpoint
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		ep.port = 25
	case "smtps":
		ep.port, ep.implicitTLS = 465, true
	default:
		return endpoint{}, fmt.Errorf("mailer: relay URL scheme %q is not supported, %s", u.Scheme, want)
	}
	ep.redacted = u.Redacted()
	ep.host = u.Hostname()
	if u.Opaque != "" || ep.host == "" {
		return endpoint{}, fmt.Errorf("mailer: relay URL %q has no host, %s", ep.redacted, want)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return endpoint{}, fmt.Errorf("mailer: relay URL %q: bad port %q", ep.redacted, p)
		}
		ep.port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("mailer: relay URL %q: unexpected path, query or fragment, %s", ep.redacted, want)
	}
	if u.User != nil {
		ep.user = u.User.Username()
		ep.pass, _ = u.User.Password()
		if ep.user == "" {
			return endpoint{}, fmt.Errorf("mailer: relay URL %q: password without a user name", ep.redacted)
		}
	}
	return ep, nil
}
