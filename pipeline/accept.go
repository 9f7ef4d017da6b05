package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// Envelope is the SMTP envelope of an accepted message.
type Envelope struct {
	Remote   string
	HELO     string
	MailFrom string
	RcptTo   []string
	TLS      bool
	// SPF result found at SMTP time, and for which domain ("" if none).
	SPF, SPFDomain string
}

// Accept stores a received message and queues it for parsing. It returns
// only once both are on disk, so the SMTP 250 that follows is a promise
// kept even across a crash. It keeps no reference to raw once it returns
// (the store copies it as it commits), so the caller may use it again.
func (p *Pipeline) Accept(ctx context.Context, env Envelope, raw []byte) (id string, err error) {
	m := &store.Message{
		Remote:    env.Remote,
		HELO:      env.HELO,
		MailFrom:  env.MailFrom,
		RcptTo:    env.RcptTo,
		TLS:       env.TLS,
		SPF:       env.SPF,
		SPFDomain: env.SPFDomain,
		Received:  p.cfg.Now(),
	}
	// A message likely parsed soon is kept for parse (see accepted), from
	// before its job is seen: the job's hook wakes the parse stage.
	var keep []byte
	if len(raw) <= maxFreshMessage && !p.burst.holding.Load() && p.db.QueueLen(StageParse) < maxFresh {
		keep = bytes.Clone(raw)
	}
	err = p.db.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutMessage(m, raw); err != nil {
			return err
		}
		if keep != nil {
			kept := *m
			kept.Received = kept.Received.Round(0) // as read back
			tx.OnCommit(func() { p.fresh.Put(kept.ID, accepted{&kept, keep}) })
		}
		_, err := tx.Enqueue(StageParse, &store.Job{Kind: kindMessage, Message: m.ID}, m.Received)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("pipeline: accept: %w", err)
	}
	p.burst.arrived.add(time.Now())
	p.burst.accepted.Add(1)
	return m.ID, nil
}

// accepted is a message just stored by Accept, kept for the parse stage:
// the record and raw bytes it would otherwise read back from the store
// (decoding the record's JSON was a twentieth of the CPU of handling a
// REPLY). Only what the parse queue is about to reach is kept, and each is
// taken once; after a restart, a burst or an eviction, parse reads the
// store, which holds the same.
type accepted struct {
	m   *store.Message
	raw []byte
}

// Messages of up to maxFreshMessage bytes are kept for the parse stage
// while fewer than maxFresh wait for it; at most twice as many are kept,
// of maxFreshBytes in all. (A large message is rare, and copying it would
// double what a burst of them holds.)
const (
	maxFresh        = 256
	maxFreshBytes   = 4 << 20
	maxFreshMessage = 256 << 10
)

// Busy reports whether the inbound queues are past their high-water mark:
// the SMTP listener then answers 451 so senders retry later.
func (p *Pipeline) Busy() bool {
	return p.inboundLen() >= p.cfg.MaxInbound
}

// Mailbox is what a recipient address at the served domain is for.
type Mailbox int

// Mailboxes.
const (
	MailboxNone Mailbox = iota
	MailboxCreate
	MailboxRSVP
	MailboxBulk
	MailboxUnsubscribe
)

// Mailboxes lists the local parts the SMTP listener must accept: plain
// ones, and tagged ones that also take +TAG.
func (p *Pipeline) Mailboxes() (plain, tagged []string) {
	return []string{p.cfg.CreateLocal, p.cfg.BulkLocal}, []string{p.cfg.RSVPLocal, p.cfg.UnsubscribeLocal}
}

// Mailbox classifies addr: which of our mailboxes it is, and the reply tag
// of an rsvp+TAG address. Other domains and local parts are MailboxNone.
func (p *Pipeline) Mailbox(addr string) (Mailbox, string) {
	local, domain, ok := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), "@")
	if !ok || domain != p.cfg.Domain {
		return MailboxNone, ""
	}
	base, tag, _ := strings.Cut(local, "+")
	switch base {
	case p.cfg.CreateLocal:
		return MailboxCreate, ""
	case p.cfg.RSVPLocal:
		return MailboxRSVP, tag
	case p.cfg.BulkLocal:
		return MailboxBulk, ""
	case p.cfg.UnsubscribeLocal:
		return MailboxUnsubscribe, tag
	}
	return MailboxNone, ""
}

// Unsubscribe records that the attendee who holds tag (the token of an
// invite's List-Unsubscribe) blocks that event's organizer: no more
// invites or updates from them. It returns the two addresses; an unknown
// tag is store.ErrNotFound.
func (p *Pipeline) Unsubscribe(ctx context.Context, tag, source string) (attendee, organizer string, err error) {
	err = p.db.Update(ctx, func(tx *store.Tx) (err error) {
		attendee, organizer, err = p.unsubscribe(tx, tag, source)
		return err
	})
	return attendee, organizer, err
}

func (p *Pipeline) unsubscribe(tx *store.Tx, tag, source string) (attendee, organizer string, err error) {
	attendee, organizer, err = tx.TagParties(tag)
	if err != nil {
		return "", "", fmt.Errorf("unsubscribe token: %w", err)
	}
	if tx.Blocked(attendee, organizer) {
		return attendee, organizer, nil
	}
	return attendee, organizer, tx.PutBlock(&store.Block{Attendee: attendee, Organizer: organizer, Created: p.cfg.Now(), Source: source})
}

// Invite invites people to event uid. Every row is checked against the
// rules (address, duplicates, already invited, blocked, suspended
// organizer, invite limit) and, if it passes, the attendee is recorded and
// counted and their invite queued for sending, in the same transaction;
// each row gets nil or the reason it was refused. The call fails as a
// whole only for an unknown event (store.ErrNotFound) or a
// store failure (rows of earlier transactions stay done). How many rows one
// request may carry is the caller's limit (the HTTP API's MaxRows).
func (p *Pipeline) Invite(ctx context.Context, uid string, rows []store.Invitee) ([]error, error) {
	errs := make([]error, len(rows))
	seen := make(map[string]bool, len(rows))
	// Transactions of FanoutBatch rows, so a long list does not hold up
	// every other writer.
	for start := 0; start < len(rows); start += p.cfg.FanoutBatch {
		chunk := rows[start:min(start+p.cfg.FanoutBatch, len(rows))]
		var chunkErrs []error
		var chunkSeen map[string]bool
		err := p.db.Update(ctx, func(tx *store.Tx) error {
			chunkErrs, chunkSeen = make([]error, len(chunk)), map[string]bool{}
			return p.inviteRows(tx, uid, chunk, chunkErrs, seen, chunkSeen)
		})
		if err != nil {
			return nil, err
		}
		copy(errs[start:], chunkErrs)
		for e := range chunkSeen {
			seen[e] = true
		}
	}
	return errs, nil
}

// inviteRows invites rows in tx; seen holds the addresses of earlier
// transactions, chunkSeen gets those of this one.
func (p *Pipeline) inviteRows(tx *store.Tx, uid string, rows []store.Invitee, errs []error, seen, chunkSeen map[string]bool) error {
	now := p.cfg.Now()
	e, err := tx.Event(uid)
	if err != nil {
		return fmt.Errorf("event %q: %w", uid, err)
	}
	// What every row shares, read once.
	org, err := tx.OrganizerOrNew(e.OrganizerEmail, now)
	if err != nil {
		return err
	}
	invited, err := invitedSoFar(tx, e.UID)
	if err != nil {
		return err
	}
	var counts store.Counters
	for i, r := range rows {
		email, err := NormalizeEmail(r.Email)
		if err != nil {
			errs[i] = err
			continue
		}
		if seen[email] || chunkSeen[email] {
			errs[i] = errors.New("duplicate row")
			continue
		}
		chunkSeen[email] = true
		if e.Status == store.StatusCancelled {
			errs[i] = fmt.Errorf("event %s is cancelled", uid)
			continue
		}
		old, err := p.mayInvite(tx, e, org, invited+counts.Invited, email)
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) {
				return err
			}
			errs[i] = errors.New(rej.Reason)
			continue
		}
		d, err := p.putInvitee(tx, "", e, old, email, cleanName(r.Name), r.Origin, now)
		if err != nil {
			return err
		}
		counts.Add(d)
	}
	return tx.Count(e.UID, e.OrganizerEmail, counts)
}

// NormalizeEmail checks a bare address and returns it lower-cased.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || strings.ContainsAny(s, " <>\",;\r\n\t\x00") {
		return "", fmt.Errorf("invalid email address %q", itip.Truncate(s, 80))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, "@") || strings.HasPrefix(s, "@") || strings.HasSuffix(s, "@") {
		return "", fmt.Errorf("invalid email address %q", itip.Truncate(s, 80))
	}
	local, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") && domain != "localhost" || len(local) > 64 {
		return "", fmt.Errorf("invalid email address %q", itip.Truncate(s, 80))
	}
	return strings.ToLower(s), nil
}

// cleanName drops control characters and bounds a display name.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return itip.Truncate(strings.TrimSpace(s), 200)
}

// nowOr returns t, or now when t is zero.
func nowOr(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
