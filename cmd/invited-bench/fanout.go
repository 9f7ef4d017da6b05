package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/invited/invited/internal/smtptest"
)

// registerEvent sends one REQUEST from organizer, waits for it to be
// applied and returns invited's UID for the event.
func registerEvent(ctx context.Context, d *daemon, tmpl *requestTemplate, organizer, origUID string) (string, error) {
	s := &sender{addr: d.SMTP, from: organizer, rcpt: "create@" + benchDomain}
	defer s.close()
	r := s.send(tmpl.message(origUID))
	if r.Err != nil {
		return "", fmt.Errorf("register event for %s: %w", organizer, r.Err)
	}
	status, err := d.api.waitMessage(ctx, r.ID, time.Minute)
	if err != nil {
		return "", err
	}
	if status != "processed" {
		return "", fmt.Errorf("register event for %s: message %s %s", organizer, r.ID, status)
	}
	var evs eventsJSON
	if err := d.api.get(ctx, "/organizer/"+url.PathEscape(organizer)+"/events?limit=500", &evs); err != nil {
		return "", err
	}
	for _, e := range evs.Events {
		if e.OriginalUID == origUID {
			return e.UID, nil
		}
	}
	return "", fmt.Errorf("event %s of %s not listed after it was processed", origUID, organizer)
}

// relayCounter is what the fan-out watches: the relay's message count.
type relayCounter interface {
	Count() int
	Wait(ctx context.Context, n int) ([]smtptest.Message, error)
}

// waitRelay waits until the relay has counted n messages, showing progress;
// it gives up after timeout.
func waitRelay(ctx context.Context, relay relayCounter, n int, timeout time.Duration, prog *progress, what string) error {
	start := time.Now()
	deadline := start.Add(timeout)
	first := relay.Count()
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := relay.Wait(wctx, n)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the relay has %d of %d messages after %v", what, relay.Count(), n, timeout)
		}
		have := relay.Count()
		eta := ""
		if done := have - first; done > 0 {
			left := time.Duration(float64(time.Since(start)) * float64(n-have) / float64(done))
			eta = fmt.Sprintf(", about %v left", left.Round(time.Second))
		}
		prog.Update("%s: relay has %d of %d%s", what, have, n, eta)
	}
}

// inviteBatch is the most rows POST /event/{uid}/invites takes.
const inviteBatch = 10000

// fanout invites n people to event uid through the HTTP API and times
// until the attendees are recorded and until the relay has all n
// invitations. The relay must have nothing else in flight.
func fanout(ctx context.Context, d *daemon, relay relayCounter, uid, tag string, n int, prog *progress) (*FanoutFigure, error) {
	base := relay.Count()
	c0, err := d.api.commits(ctx)
	if err != nil {
		return nil, err
	}
	cpu := startCPU(d.Pid())
	start := time.Now()
	f := &FanoutFigure{Invites: n}

	// Attendee count, watched while the POSTs go in.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	created := make(chan error, 1)
	go func() {
		ctx := wctx
		deadline := start.Add(fanoutTimeout(n))
		for {
			var s statsJSON
			if err := d.api.get(ctx, "/event/"+uid+"/statistics", &s); err != nil {
				created <- err
				return
			}
			if s.AttendeeCount >= int64(n) {
				f.CreatedSeconds = time.Since(start).Seconds()
				created <- nil
				return
			}
			if time.Now().After(deadline) {
				created <- fmt.Errorf("fan-out: %d of %d attendees after %v", s.AttendeeCount, n, fanoutTimeout(n))
				return
			}
			select {
			case <-ctx.Done():
				created <- ctx.Err()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	for i := 0; i < n; i += inviteBatch {
		rows := make([]invitee, 0, min(inviteBatch, n-i))
		for j := i; j < min(i+inviteBatch, n); j++ {
			rows = append(rows, invitee{Email: fanoutAddress(tag, j), Name: fmt.Sprintf("Bench %s %d", tag, j)})
		}
		var res invitesJSON
		if err := d.api.do(ctx, "POST", "/event/"+uid+"/invites", rows, &res); err != nil {
			return nil, err
		}
		if res.Queued != len(rows) {
			return nil, fmt.Errorf("fan-out: %d of %d rows queued", res.Queued, len(rows))
		}
		prog.Update("%d invites posted", i+len(rows))
	}
	f.PostSeconds = time.Since(start).Seconds()
	sentErr := waitRelay(ctx, relay, base+n, fanoutTimeout(n), prog, "invites to the "+tag+" event")
	f.SentSeconds = time.Since(start).Seconds()
	f.DaemonCores = cpu.Cores()
	c1, cerr := d.api.commits(ctx)
	if err := errors.Join(<-created, sentErr, cerr); err != nil {
		return nil, err
	}
	f.InvitesPerSecond = float64(n) / f.SentSeconds
	f.CreatedPerSecond = float64(n) / f.CreatedSeconds
	f.Commits = commitsBetween(c0, c1, int64(n))
	return f, nil
}

// fanoutTimeout bounds a fan-out of n: it fails below 20 invites/s.
func fanoutTimeout(n int) time.Duration {
	return time.Minute + time.Duration(n)*50*time.Millisecond
}

// readLatencies makes n sequential GETs of each of paths, in turns (each
// turn in a new shuffled order, so that no path always follows the same
// one), and summarizes their latency per path (after a few unmeasured
// ones). In turns, so that what else the daemon does meanwhile (the last
// send records of a fan-out, a collection) falls on every path alike: the
// paths are compared.
func readLatencies(ctx context.Context, api *apiClient, paths []string, n int) (lats []Latency, sizes []int, err error) {
	sizes = make([]int, len(paths))
	for i, path := range paths {
		for range 20 {
			if sizes[i], err = api.getDiscard(ctx, path); err != nil {
				return nil, nil, err
			}
		}
	}
	took := make([][]time.Duration, len(paths))
	rng := rand.New(rand.NewPCG(1, 2)) // the same orders every run
	for range n {
		for _, i := range rng.Perm(len(paths)) {
			t := time.Now()
			if _, err := api.getDiscard(ctx, paths[i]); err != nil {
				return nil, nil, err
			}
			took[i] = append(took[i], time.Since(t))
		}
	}
	for _, d := range took {
		lats = append(lats, latencyOf(d))
	}
	return lats, sizes, nil
}
