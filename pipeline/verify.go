package pipeline

import (
	"context"
	"errors"
	"strings"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// verify decides whether a command, reply or invite may be applied: the
// sender speaks for the organizer or attendee it names, the event exists
// where it must, and nothing is sent twice. What passes goes to create.
func (p *Pipeline) verify(ctx context.Context, j *store.Job) (outcome, error) {
	var next any
	switch j.Kind {
	case kindRequest, kindCancel:
		c, err := p.command(ctx, j)
		if err != nil {
			return outcome{}, err
		}
		if err := p.verifyCommand(j.Kind, c); err != nil {
			return outcome{}, p.failedNotice(j, c, err)
		}
		next = c
	case kindReply:
		c, err := p.command(ctx, j)
		if err != nil {
			return outcome{}, err
		}
		if err := p.verifyReply(c); err != nil {
			return outcome{}, err
		}
		next = c
	case kindBulk:
		b, err := decode[bulkJob](j)
		if err != nil {
			return outcome{}, err
		}
		if err := p.verifyBulk(ctx, j, b); err != nil {
			return outcome{}, err
		}
		next = b
	default:
		return outcome{}, reject("unknown job kind %q", j.Kind)
	}
	var out *store.Job
	if c, ok := next.(*commandJob); ok {
		out = commandJobOf(j.Kind, j.Message, c)
	} else {
		var err error
		if out, err = newJob(j.Kind, j.Message, next); err != nil {
			return outcome{}, err
		}
	}
	return outcome{next: []*store.Job{out}, to: StageCreate}, nil
}

func (p *Pipeline) verifyCommand(kind string, c *commandJob) error {
	if c.Calendar == nil || len(c.Calendar.Events) == 0 {
		return reject("calendar has no VEVENT")
	}
	first := c.Calendar.Events[0]
	// Check the sender first: what follows may be told to the organizer.
	if !c.Auth.Pass {
		return reject("the sender is not authenticated: %s", c.Auth.Reason)
	}
	if org := organizer(first); org != "" {
		isOrganizer := strings.EqualFold(c.Auth.From, org)
		if !isOrganizer && p.cfg.Auth.Policy != PolicyNone {
			return reject("sender %s is not the event's ORGANIZER %s", c.Auth.From, org)
		}
		c.Believed = isOrganizer && c.Auth.Authenticated
	}
	for _, ev := range c.Calendar.Events {
		if ev.UID == "" {
			return reject("VEVENT has no UID")
		}
		if ev.UID != first.UID {
			return reject("calendar holds several events (UIDs %q and %q); send one event per message", first.UID, ev.UID)
		}
		if organizer(ev) == "" {
			return reject("VEVENT has no ORGANIZER")
		}
		if organizer(ev) != organizer(first) {
			return reject("VEVENTs name different organizers")
		}
		if kind == kindRequest && ev.Start.IsZero() {
			return reject("VEVENT has no DTSTART")
		}
	}
	org := organizer(first)
	if p.isOurs(org) {
		return reject("the ORGANIZER %s is one of our own addresses: forward the organizer's own invitation, not ours", org)
	}
	var ev *store.Event
	err := p.db.View(func(tx *store.Tx) (err error) {
		ev, err = tx.EventByOriginalUID(first.UID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		if kind == kindCancel {
			return reject("CANCEL for unknown event UID %q", first.UID)
		}
		return nil
	case err != nil:
		return err
	}
	if ev.OrganizerEmail != org {
		return reject("event UID %q belongs to another organizer", first.UID)
	}
	return nil
}

func (p *Pipeline) verifyReply(c *commandJob) error {
	if c.Calendar == nil || len(c.Calendar.Events) == 0 {
		return reject("reply has no VEVENT")
	}
	vev := c.Calendar.Events[0]
	if vev.UID == "" {
		return reject("reply has no UID")
	}
	if !c.Auth.Pass {
		return reject("the sender is not authenticated: %s", c.Auth.Reason)
	}
	att, ok := replyingAttendee(vev.Attendees, c.Auth.From)
	if !ok {
		return reject("reply names no ATTENDEE")
	}
	if p.cfg.Auth.Policy != PolicyNone && !strings.EqualFold(c.Auth.From, att.Email) {
		return reject("sender %s is not the replying ATTENDEE %s", c.Auth.From, att.Email)
	}
	var ev *store.Event
	err := p.db.View(func(tx *store.Tx) error {
		var err error
		ev, err = tx.EventShared(vev.UID) // read only: a burst of replies reads the same event
		if errors.Is(err, store.ErrNotFound) {
			ev, err = tx.EventByOriginalUID(vev.UID)
		}
		if err != nil {
			return err
		}
		return p.checkTag(tx, c.Tag, ev.UID, att.Email)
	})
	if errors.Is(err, store.ErrNotFound) {
		return reject("reply for unknown event UID %q", vev.UID)
	} else if err != nil {
		return err
	}
	if c.Calendar.Method != "REFRESH" {
		if _, ok := partStats[att.PartStat]; !ok {
			return reject("reply has no usable PARTSTAT (%q)", att.PartStat)
		}
	}
	c.UID = ev.UID
	c.Attendee = att
	return nil
}

// checkTag binds a reply sent to rsvp+TAG to the attendee the tag was
// issued to: with it, that attendee may answer, and so may someone we never
// invited (a forwarded invite: recorded as shared), but never another of
// the event's attendees. An unknown tag binds nothing.
func (p *Pipeline) checkTag(tx *store.Tx, tag, uid, email string) error {
	if tag == "" {
		return nil
	}
	tagUID, tagEmail, err := tx.TagOwner(tag)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if tagUID != uid {
		return reject("reply address was issued for another event")
	}
	if tagEmail == email {
		return nil
	}
	if _, err := tx.Attendee(uid, email); err == nil {
		return reject("reply address was issued to another attendee; %s cannot answer with it", email)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// replyingAttendee picks the ATTENDEE a reply is from: the one whose
// address is the sender's, else the only one.
func replyingAttendee(atts []itip.Attendee, from string) (itip.Attendee, bool) {
	for _, a := range atts {
		if a.Email != "" && strings.EqualFold(a.Email, from) {
			return a, true
		}
	}
	if len(atts) == 1 && atts[0].Email != "" {
		return atts[0], true
	}
	return itip.Attendee{}, false
}

// partStats maps iCalendar PARTSTAT values to our lower-case statuses.
var partStats = map[string]string{
	"NEEDS-ACTION": store.PartNeedsAction,
	"ACCEPTED":     store.PartAccepted,
	"DECLINED":     store.PartDeclined,
	"TENTATIVE":    store.PartTentative,
	"DELEGATED":    store.PartDelegated,
}

// organizer is the address that identifies an event's organizer: the
// EMAIL parameter when there is one (iCloud puts a relay address in the
// value and the person's address there), else the ORGANIZER address.
func organizer(ev itip.Event) string {
	if ev.Organizer.EmailParam != "" {
		return ev.Organizer.EmailParam
	}
	return ev.Organizer.Email
}

// failedNotice adds to a rejection of an organizer's REQUEST the "event
// failed" notice, when the sender is believed to be the organizer.
func (p *Pipeline) failedNotice(j *store.Job, c *commandJob, err error) error {
	var rej *Rejection
	if !errors.As(err, &rej) || !c.Believed || j.Kind != kindRequest || rej.apply != nil {
		return err
	}
	first := c.Calendar.Events[0]
	data := templates.EventFailed{Organizer: first.Organizer.Name, Mailto: organizer(first), Summary: first.Summary,
		Subject: c.Subject, Reason: rej.Reason, CreateAddress: p.cfg.CreateLocal + "@" + p.cfg.Domain}
	rej.apply = func(tx *store.Tx) error {
		return p.notify(tx, j.Message, itip.Address{Email: organizer(first), Name: first.Organizer.Name}, noticeFailed, data, "")
	}
	return rej
}

// isOurs reports whether addr is at the served domain.
func (p *Pipeline) isOurs(addr string) bool {
	return domainOf(addr) == p.cfg.Domain
}
