package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// large measures what large messages cost the daemon's memory: a fresh
// daemon takes REQUESTs of -large-size from -large sessions at once, for
// -measure, its clients saying each message's size in MAIL FROM (as MTAs
// do), then another with clients that do not.
func (b *bench) large(ctx context.Context) error {
	relay, err := startRelay()
	if err != nil {
		return err
	}
	defer relay.Close()
	tmpl, err := loadTemplate(b.o.Testdata, loadOrganizer, b.o.LargeBytes)
	if err != nil {
		return err
	}
	msg := b.requestsOf(tmpl, "large")
	size := len(msg())
	for _, declare := range []bool{true, false} {
		b.prog.Update("clients declaring the size: %v", declare)
		f, err := b.largeOnce(ctx, relay.Addr, declare, msg)
		if err != nil {
			return err
		}
		f.MessageBytes = size
		f.MiBPerSecond = float64(f.Accepted) * float64(size) / (1 << 20) / f.Seconds
		b.res.Large = append(b.res.Large, f)
	}
	return nil
}

func (b *bench) largeOnce(ctx context.Context, relay string, declare bool, msg func() []byte) (LargeFigure, error) {
	dir, err := os.MkdirTemp(b.work, "large-")
	if err != nil {
		return LargeFigure{}, err
	}
	defer os.RemoveAll(dir)
	d, err := startDaemon(ctx, b.daemonConfig(dir, relay))
	if err != nil {
		return LargeFigure{}, err
	}
	defer d.kill()
	proto := sender{addr: d.SMTP, from: loadOrganizer, rcpt: "create@" + benchDomain, declareSize: declare}
	r := closedLoop(ctx, proto, b.o.Large, time.Duration(b.o.Measure), msg, false)
	if err := ctx.Err(); err != nil {
		return LargeFigure{}, err
	}
	if err := d.Alive(); err != nil {
		return LargeFigure{}, err
	}
	if r.OK == 0 {
		return LargeFigure{}, fmt.Errorf("large messages: nothing accepted: %v\n%s", r.FirstErr, d.Tail())
	}
	peak := d.rss.Peak()
	if err := d.stop(15 * time.Second); err != nil {
		b.warn("large-message daemon: %v", err)
	}
	return LargeFigure{
		DeclaredSize: declare,
		Sessions:     b.o.Large,
		Accepted:     r.OK,
		Deferred:     r.Deferred,
		Errors:       r.Errors,
		Seconds:      r.Elapsed.Seconds(),
		Latency:      latencyOf(r.Latencies),
		PeakRSS:      peak,
	}, nil
}
