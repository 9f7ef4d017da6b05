package mailer

import "testing"

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want endpoint
	}{
		{"smtp://relay.example.org", endpoint{host: "relay.example.org", port: 25}},
		{"smtp://relay.example.org:587", endpoint{host: "relay.example.org", port: 587}},
		{"smtps://relay.example.org", endpoint{host: "relay.example.org", port: 465, implicitTLS: true}},
		{"SMTPS://relay.example.org:2465/", endpoint{host: "relay.example.org", port: 2465, implicitTLS: true}},
		{"smtp://u%40x:p%3Aw%40d@relay.example.org", endpoint{host: "relay.example.org", port: 25, user: "u@x", pass: "p:w@d"}},
		{"smtp://user@[::1]:2525", endpoint{host: "::1", port: 2525, user: "user"}},
	}
	for _, tt := range tests {
		got, err := parseURL(tt.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", tt.url, err)
			continue
		}
		got.redacted = ""
		if got != tt.want {
			t.Errorf("parseURL(%q) = %+v, want %+v", tt.url, got, tt.want)
		}
	}
}
