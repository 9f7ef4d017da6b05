package mailer_test

import (
	"log/slog"
	"testing"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/mailer"
)

func BenchmarkRelay_Send(b *testing.B) {
	s := smtptest.NewServer(b, smtptest.Options{Discard: true})
	r, err := mailer.NewRelay(mailer.Config{URL: smtpURL(s), HELO: "invited.test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	msg := testMessage(1)
	b.SetBytes(int64(len(msg)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Send(b.Context(), from, []string{"a@example.net"}, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if got := s.Count(); got < b.N {
		b.Fatalf("server counted %d messages, want %d", got, b.N)
	}
	b.ReportMetric(float64(s.Sessions()), "conns")
}
