package dnstest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
)

// TestServe: a real resolver asking the server over UDP gets the TXT
// records, and NXDOMAIN for a name without any.
func TestServe(t *testing.T) {
	r := NewResolver()
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 600) // more than one 255-byte string
	r.SetTXT("example.org", "v=spf1 ip4:127.0.0.1 -all", "other", long)
	s, err := Serve(r)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr())
	}}
	got, err := res.LookupTXT(context.Background(), "Example.ORG")
	if err != nil || !slices.Equal(got, []string{"v=spf1 ip4:127.0.0.1 -all", "other", long}) {
		t.Fatalf("TXT example.org: %q, %v", got, err)
	}
	_, err = res.LookupTXT(context.Background(), "nothing.example")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("TXT nothing.example: %v, want not found", err)
	}
}
