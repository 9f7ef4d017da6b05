package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
)

// BenchmarkApplyRequest is the work of registering an event from an
// organizer's REQUEST already accepted: its parse job read, the message
// parsed and its sender checked, verify and create run ahead, all written
// in one update (the event, its indexes and counters, the message's
// notes, the notice queued). fsync is off, so the figure is the CPU, not
// the disk; the notices are queued, not sent.
func BenchmarkApplyRequest(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	relay := smtptest.NewServer(b, smtptest.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sender, err := mailer.NewRelay(mailer.Config{URL: "smtp://" + relay.Addr, Timeout: 5 * time.Second}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer sender.Close()
	p, err := New(Config{Domain: domain, EventLimit: 1 << 30, Auth: &senderauth.Checker{Resolver: dnstest.Loopback(), Policy: PolicyAligned}}, db, sender, log)
	if err != nil {
		b.Fatal(err)
	}
	ics := testdata(b, weekly)
	ctx := context.Background()
	for i := range b.N {
		raw := wrap(organizerAddr, "REQUEST", setProp(ics, "UID", fmt.Sprintf("bench-%d@example.com", i)))
		if _, err := p.Accept(ctx, Envelope{Remote: "127.0.0.1:1", MailFrom: organizerAddr, RcptTo: []string{"create@" + domain}}, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		jobs, _, err := db.Due(StageParse, time.Now(), 64, nil)
		if err != nil || len(jobs) == 0 {
			b.Fatalf("%d parse jobs left of %d, %v", len(jobs), b.N-done, err)
		}
		for _, j := range jobs {
			p.work(ctx, p.stages[StageParse], j)
			done++
		}
	}
	b.StopTimer()
	var st store.Counters
	if err := db.View(func(tx *store.Tx) (err error) { st, err = tx.SystemStats(); return err }); err != nil || st.Events != int64(b.N) {
		b.Fatalf("%d events registered of %d, %v", st.Events, b.N, err)
	}
}
