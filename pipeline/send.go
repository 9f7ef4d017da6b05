package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// send renders one message for one attendee from the event as it is now
// and hands it to the relay. A temporary failure is retried; a permanent
// one is recorded on the attendee.
func (p *Pipeline) send(ctx context.Context, j *store.Job) (func(*store.Tx) error, error) {
	if j.Kind == kindNotify {
		return p.sendNotice(ctx, j)
	}
	s, err := decode[sendJob](j)
	if err != nil {
		return nil, err
	}
	var (
		e       *store.Event
		a       *store.Attendee
		org     *store.Organizer
		blocked bool
	)
	err = p.db.View(func(tx *store.Tx) (err error) {
		if e, err = tx.EventShared(s.UID); err != nil {
			return err
		}
		if a, err = tx.Attendee(s.UID, s.Email); err != nil {
			return err
		}
		blocked = tx.Blocked(a.Email, e.OrganizerEmail)
		org, err = tx.OrganizerOrNew(e.OrganizerEmail, e.Created)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, reject("event %s or attendee %s is gone", s.UID, s.Email)
	} else if err != nil {
		return nil, err
	}
	if s.Kind != kindCancel && blocked {
		return nil, reject("%s has unsubscribed from %s's invites: %s not sent", a.Email, org.Email, s.Kind)
	}
	if org.Suspended && s.Kind != kindCancel {
		// Not sent, and said so on the attendee: once the organizer is
		// reinstated, inviting them again sends it.
		why := "not sent: organizer " + org.Email + " is suspended"
		return nil, &Rejection{Reason: why, apply: func(tx *store.Tx) error {
			cur, err := tx.Attendee(a.UID, a.Email)
			if err != nil {
				return err
			}
			cur.SendError = why
			return tx.PutAttendee(cur)
		}}
	}
	if why := superseded(s, e); why != "" {
		p.log.Debug("not sending", "kind", s.Kind, "uid", s.UID, "to", s.Email, "why", why)
		return nil, nil
	}
	d, err := p.eventData(e)
	if err != nil {
		return nil, err
	}

	now := p.cfg.Now()
	id := p.messageID(s, e.Sequence)
	raw, err := p.build(e, d, a, s, id, now)
	if err != nil {
		return nil, reject("cannot render %s for %s: %v", s.Kind, s.Email, err)
	}
	rec := &store.SendRecord{MessageID: id, UID: e.UID, Email: a.Email, Kind: s.Kind, Sequence: e.Sequence,
		Status: store.SendSent, Attempts: j.Attempts + 1, Time: now}
	sendErr := p.deliver(ctx, p.replyAddress(""), a.Email, raw)
	if sendErr != nil && !mailer.IsPermanent(sendErr) {
		return nil, fmt.Errorf("deliver %s to %s: %w", s.Kind, a.Email, sendErr)
	}
	if sendErr != nil {
		rec.Status, rec.Error = store.SendFailed, sendErr.Error()
	}
	return func(tx *store.Tx) error {
		// Re-read: the attendee may have replied, or another send for
		// them finished, while we were sending.
		cur, err := tx.Attendee(a.UID, a.Email)
		if err != nil {
			return err
		}
		var counts store.Counters
		if sendErr != nil {
			cur.SendError = sendErr.Error()
			counts.SendFailed = 1
		} else {
			cur.SendError = ""
			switch s.Kind {
			case kindInvite:
				if cur.Sent.IsZero() {
					cur.Sent = now
					counts.InvitesSent = 1
				}
			case kindUpdate:
				counts.UpdatesSent = 1
			case kindCancel:
				counts.CancelsSent = 1
			}
			cur.SentSequence = e.Sequence
		}
		if err := tx.PutAttendee(cur); err != nil {
			return err
		}
		if err := tx.PutSend(rec); err != nil {
			return err
		}
		if sendErr != nil {
			if err := p.note(tx, j, store.MessageRejected, fmt.Sprintf("%s to %s refused by the relay: %v", s.Kind, a.Email, sendErr)); err != nil {
				return err
			}
		}
		return tx.Count(e.UID, e.OrganizerEmail, counts)
	}, nil
}

// superseded says why job s need not be sent any more, or "".
func superseded(s *sendJob, e *store.Event) string {
	cancelled := e.Status == store.StatusCancelled
	switch {
	case s.Kind == kindUpdate && s.Sequence < e.UpdateSequence:
		return "a newer update is queued"
	case s.Kind != kindCancel && cancelled:
		return "the event is cancelled"
	case s.Kind == kindCancel && s.RecurrenceID == nil && !cancelled:
		return "the event was reinstated"
	}
	return ""
}

// messageID is the same for every attempt at one message, so a message
// sent again after a crash is recognisably the same.
func (p *Pipeline) messageID(s *sendJob, seq int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", s.UID, s.Email, s.Kind, seq)
	if s.RecurrenceID != nil {
		fmt.Fprintf(h, "\x00%s\x00%s", s.RecurrenceID.TZID, s.RecurrenceID.Value)
	}
	return fmt.Sprintf("%s.%d.%s@%s", s.Kind, seq, hex.EncodeToString(h.Sum(nil))[:24], p.cfg.Domain)
}

var subjects = map[string]string{
	kindInvite: "Invitation: ",
	kindUpdate: "Event Updated: ",
	kindCancel: "Event Cancelled: ",
}

// build renders the whole message for attendee a.
func (p *Pipeline) build(e *store.Event, d *eventData, a *store.Attendee, s *sendJob, id string, now time.Time) ([]byte, error) {
	cal := p.render(e, d, a, s.Kind, s.RecurrenceID, now)
	org := e.OrganizerName
	if org == "" {
		org = e.OrganizerEmail
	}
	data := templates.Invite{
		Kind: s.Kind, Summary: e.Summary, When: when(cal.Events[0]), Location: e.Location,
		Description: e.Description, Organizer: org, AttendeeName: a.Name,
	}
	if s.RecurrenceID != nil {
		data.Occurrence = when(cal.Events[0])
	}
	text, html, err := p.cfg.Templates.RenderInvite(data)
	if err != nil {
		return nil, err
	}
	return itip.BuildMessage(itip.Outbound{
		From:      itip.Address{Email: p.replyAddress(a.Tag), Name: org},
		To:        itip.Address{Email: a.Email, Name: a.Name},
		Subject:   subjects[s.Kind] + e.Summary,
		MessageID: id,
		Date:      now,
		Text:      text,
		HTML:      html,
		Calendar:  cal,
		Headers: [][2]string{
			{"Auto-Submitted", "auto-generated"},
			// RFC 2369 and RFC 8058: one click (or a mail) and this
			// organizer's invites stop for this attendee.
			{"List-Unsubscribe", "<" + p.unsubscribeURL(a.Tag) + ">, <mailto:" + p.cfg.UnsubscribeLocal + "+" + a.Tag + "@" + p.cfg.Domain + ">"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"},
		},
	})
}

// unsubscribeURL is the page that stops an organizer's invites to the
// attendee holding tag.
func (p *Pipeline) unsubscribeURL(tag string) string {
	return p.cfg.PublicURL + "/unsubscribe?t=" + tag
}

// when formats the start and end of ev for people, in its own time zone.
func when(ev itip.Event) string {
	loc := time.UTC
	if ev.Start.TZID != "" {
		if l, err := itip.LoadLocation(ev.Start.TZID); err == nil {
			loc = l
		}
	}
	start, end := ev.Start.UTC.In(loc), ev.End.UTC.In(loc)
	if ev.Start.AllDay {
		if end.Sub(start) <= 24*time.Hour {
			return start.Format("Mon 2 Jan 2006") + " (all day)"
		}
		return start.Format("Mon 2 Jan 2006") + " – " + end.AddDate(0, 0, -1).Format("Mon 2 Jan 2006")
	}
	zone := ev.Start.TZID
	if zone == "" {
		zone = "UTC"
	}
	s := start.Format("Mon 2 Jan 2006 15:04")
	if end.After(start) {
		if end.YearDay() == start.YearDay() && end.Year() == start.Year() {
			s += " – " + end.Format("15:04")
		} else {
			s += " – " + end.Format("Mon 2 Jan 2006 15:04")
		}
	}
	if ev.RRule != "" {
		s += ", repeating"
	}
	return s + " (" + zone + ")"
}

// deliver sends one message to to, in turn with the other messages to its
// domain (or returns a deferral when it is not its turn).
func (p *Pipeline) deliver(ctx context.Context, from, to string, msg []byte) error {
	domain := domainOf(to)
	if wait := p.sends.take(domain, p.cfg.Now()); wait > 0 {
		return &deferral{wait: wait, why: "sending to " + domain + " is paced"}
	}
	err := p.sender.Send(ctx, from, []string{to}, msg)
	switch {
	case err == nil:
		p.sends.ok(domain)
	case !mailer.IsPermanent(err) && ctx.Err() == nil:
		pause := p.sends.failed(domain, p.cfg.Now())
		p.log.Warn("limit: relay deferred mail to a domain; pausing it", "domain", domain, "for", pause, "err", err)
	}
	return err
}

// eventData is loadData through a small cache: a fan-out renders the same
// event for every attendee. Entries are keyed by what changes when the
// event does, and are only read.
func (p *Pipeline) eventData(e *store.Event) (*eventData, error) {
	key := dataKey{e.UID, e.Sequence, e.LastModified.UnixNano()}
	if d, ok := p.dataCache.Get(key); ok {
		return d, nil
	}
	d, err := loadData(e)
	if err != nil {
		return nil, err
	}
	p.dataCache.Put(key, d)
	return d, nil
}

// dataKey is what changes when an event's data does.
type dataKey struct {
	uid      string
	sequence int
	modified int64
}
