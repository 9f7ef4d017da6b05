package main

import (
	"strings"
	"testing"

	"github.com/invited/invited/internal/smtptest"
)

// TestMetricsAndReadyz: /readyz answers without a key; /metrics wants the
// admin key and counts what the daemon really did.
func TestMetricsAndReadyz(t *testing.T) {
	relay := smtptest.NewServer(t, smtptest.Options{})
	app := startApp(t, func(c *Config) { c.Relay = "smtp://" + relay.Addr })
	if code, err := httpGet("http://" + app.HTTPAddr() + "/readyz"); err != nil || code != 200 {
		t.Fatalf("readyz: %d %v", code, err)
	}
	if code, err := httpGet("http://" + app.HTTPAddr() + "/metrics"); err != nil || code != 401 {
		t.Fatalf("metrics without a key: %d %v, want 401", code, err)
	}
	scrape := func() string { t.Helper(); return scrapeMetrics(t, app) }
	value := func(text, name string) float64 { t.Helper(); return metricValue(t, text, name) }
	before := scrape()
	request := readTestdata(t, "google-request-inline-textcalendar.eml")
	mustSend(t, app.SMTPAddr(), "alice@example.org", []string{"create@" + testDomain}, []byte(request))
	eventUID(t, app, "alice@example.org", "69d4c40b4a274636bf23517938df9673@example.org")
	eventually(t, "the event counted in /metrics", func() bool {
		return value(scrape(), `invited_system_count{what="events"}`) == 1
	})
	after := scrape()
	if d := value(after, "invited_smtp_accepted_total") - value(before, "invited_smtp_accepted_total"); d != 1 {
		t.Errorf("accepted went up by %v for one message", d)
	}
	commits, fns := value(after, "invited_store_commits_total"), value(after, "invited_store_committed_functions_total")
	if commits <= value(before, "invited_store_commits_total") || fns < commits {
		t.Errorf("commits %v (before %v), functions %v", commits, value(before, "invited_store_commits_total"), fns)
	}
	if w := value(after, "invited_store_page_writes_total"); w < 2*commits {
		t.Errorf("%v page writes in %v commits: each writes its meta page and more", w, commits)
	}
	if run, commit := value(after, `invited_store_writer_seconds_total{part="run"}`), value(after, `invited_store_writer_seconds_total{part="commit"}`); run <= 0 || commit <= 0 {
		t.Errorf("the committer was busy %vs running updates and %vs committing", run, commit)
	}
	if v := value(after, "invited_sends_yielding"); v != 0 {
		t.Errorf("sends yielding (%v) with one message handled", v)
	}
	for _, name := range []string{`invited_queue_jobs{stage="parse"}`, "invited_burst_holding", "invited_store_file_bytes", "go_goroutines",
		`invited_system_count{what="invited"}`, `invited_system_count{what="delegated"}`} {
		value(after, name)
	}
}

// TestMemoryBudgets: --max-message-memory is split between the listener
// (three quarters) and the stages (a quarter), and a large message takes
// from both, then gives it back; /metrics shows it.
func TestMemoryBudgets(t *testing.T) {
	app := startApp(t, func(c *Config) { c.MaxMessageMemory = 4 << 20 })
	big := "From: alice@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat(strings.Repeat("b", 70)+"\r\n", 2000)
	mustSend(t, app.SMTPAddr(), "alice@example.org", []string{"create@" + testDomain}, []byte(big))
	value := func(text, name string) float64 { t.Helper(); return metricValue(t, text, name) }
	var text string
	eventually(t, "the stages done with the message", func() bool {
		text = scrapeMetrics(t, app)
		return value(text, `invited_message_memory_bytes{part="stages",what="peak"}`) > 0 &&
			value(text, `invited_message_memory_bytes{part="stages",what="held"}`) == 0
	})
	for part, max := range map[string]float64{"listener": 3 << 20, "stages": 1 << 20} {
		if got := value(text, `invited_message_memory_bytes{part="`+part+`",what="max"}`); got != max {
			t.Errorf("%s budget %v, want %v", part, got, max)
		}
		if peak, held := value(text, `invited_message_memory_bytes{part="`+part+`",what="peak"}`),
			value(text, `invited_message_memory_bytes{part="`+part+`",what="held"}`); peak < float64(len(big)) || held != 0 {
			t.Errorf("%s budget: peak %v, held %v after a %d-byte message", part, peak, held, len(big))
		}
	}
}
