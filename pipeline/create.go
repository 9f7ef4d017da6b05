package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// create applies a verified command, reply or invite to events, attendees
// and statistics, and queues what must be sent. Everything happens in the
// transaction that completes the job, so it is applied exactly once.
func (p *Pipeline) create(ctx context.Context, j *store.Job) (outcome, error) {
	var apply func(*store.Tx, *store.Job, *commandJob) error
	switch j.Kind {
	case kindRequest: // below, once the calendar is read
	case kindCancel:
		apply = p.applyCancel
	case kindReply:
		apply = p.applyReply
	case kindBulk:
		return p.createBulk(ctx, j)
	default:
		return outcome{}, reject("unknown job kind %q", j.Kind)
	}
	c, err := p.command(ctx, j)
	if err != nil {
		return outcome{}, err
	}
	if j.Kind == kindRequest {
		fresh, err := p.freshEvent(j, c)
		if err != nil {
			return outcome{}, err
		}
		apply = func(tx *store.Tx, j *store.Job, c *commandJob) error { return p.applyRequest(tx, j, c, fresh) }
	}
	return outcome{apply: func(tx *store.Tx) error {
		if err := apply(tx, j, c); err != nil {
			return err
		}
		// Done with the calendar parse handed off.
		tx.OnCommit(func() { p.handoff.Delete(calKey{j.Message, c.Part}) })
		return nil
	}}, nil
}

func (p *Pipeline) processed(tx *store.Tx, j *store.Job, format string, args ...any) error {
	return p.note(tx, j, store.MessageProcessed, fmt.Sprintf(format, args...))
}

// freshEvent is the event a REQUEST registers if no event has its UID
// yet, made before the transaction, with the notice that says so encoded:
// the transaction, which every writer waits on, then only writes them.
// For an update of an event that exists it is made for nothing (tens of
// microseconds), and its times are those of the step, not of the commit.
type freshEvent struct {
	event  *store.Event
	notice *store.Job // nil unless the organizer is believed
}

func (p *Pipeline) freshEvent(j *store.Job, c *commandJob) (*freshEvent, error) {
	now := p.cfg.Now()
	first := c.Calendar.Events[0]
	d, _ := newData(c.Calendar)
	e := &store.Event{
		UID:              newUID(now),
		OriginalUID:      first.UID,
		OrganizerEmail:   organizer(first),
		OrganizerName:    first.Organizer.Name,
		Status:           store.StatusConfirmed,
		OriginalSequence: first.Sequence,
		OriginalDTStamp:  nowOr(first.DTStamp, now),
		Created:          now,
		LastModified:     now,
	}
	if strings.EqualFold(d.Master.Status, "TENTATIVE") {
		e.Status = store.StatusTentative
	}
	if err := d.save(e); err != nil {
		return nil, err
	}
	f := &freshEvent{event: e}
	if c.Believed {
		n, err := noticeJob(j.Message, p.organizerAddress(e), noticeCreated, p.createdNotice(e, d), "")
		if err != nil {
			return nil, err
		}
		f.notice = n
	}
	return f, nil
}

// applyRequest registers a new event (fresh) or applies an organizer's
// update.
func (p *Pipeline) applyRequest(tx *store.Tx, j *store.Job, c *commandJob, fresh *freshEvent) error {
	now := p.cfg.Now()
	first := c.Calendar.Events[0]
	org, err := tx.OrganizerOrNew(organizer(first), now)
	if err != nil {
		return err
	}
	if org.Suspended {
		return p.failedNotice(j, c, reject("organizer %s is suspended%s", org.Email, reasonSuffix(org.SuspendedReason)))
	}
	e, err := tx.EventByOriginalUID(first.UID)
	if errors.Is(err, store.ErrNotFound) {
		if err := p.underEventLimit(tx, j, c, org, now); err != nil {
			return err
		}
		e = fresh.event
		if err := tx.CreateEvent(e); err != nil {
			return err
		}
		if fresh.notice != nil {
			if _, err := tx.Enqueue(StageSend, fresh.notice, now); err != nil {
				return err
			}
		}
		return p.processed(tx, j, "registered event %s (%q) for %s", e.UID, e.Summary, e.OrganizerEmail)
	} else if err != nil {
		return err
	}

	upd, lone := newData(c.Calendar)
	stamp := nowOr(first.DTStamp, now)
	if first.Sequence < e.OriginalSequence ||
		first.Sequence == e.OriginalSequence && !stamp.After(e.OriginalDTStamp) {
		return p.processed(tx, j, "event %s: REQUEST (SEQUENCE %d) is not newer than the one applied (SEQUENCE %d); nothing sent",
			e.UID, first.Sequence, e.OriginalSequence)
	}
	d, err := loadData(e)
	if err != nil {
		return err
	}
	changed, timeChanged := d.merge(upd, lone)
	wasCancelled := e.Status == store.StatusCancelled
	if wasCancelled && lone == nil {
		changed = true
	}
	e.OriginalSequence, e.OriginalDTStamp = first.Sequence, stamp
	if first.Organizer.Name != "" {
		e.OrganizerName = first.Organizer.Name
	}
	if !changed {
		if err := tx.PutEvent(e); err != nil {
			return err
		}
		return p.processed(tx, j, "event %s: REQUEST changes nothing attendees see; nothing sent", e.UID)
	}
	if lone == nil {
		e.Status = store.StatusConfirmed
		if strings.EqualFold(d.Master.Status, "TENTATIVE") {
			e.Status = store.StatusTentative
		}
	}
	e.Sequence++
	e.UpdateSequence = e.Sequence
	if timeChanged {
		e.ResetSequence = e.Sequence
	}
	e.LastModified = now
	if err := d.save(e); err != nil {
		return err
	}
	if err := tx.PutEvent(e); err != nil {
		return err
	}
	f := fanoutJob{UID: e.UID, Kind: kindUpdate, Sequence: e.Sequence, Reset: timeChanged, ResetAt: stamp}
	if err := p.enqueue(tx, StageStage, kindUpdate, j.Message, f); err != nil {
		return err
	}
	return p.processed(tx, j, "event %s updated to SEQUENCE %d (time changed: %t); sending updates", e.UID, e.Sequence, timeChanged)
}

// underEventLimit refuses a new event past the organizer's limit and
// tells the organizer, if believed. Paid organizers have no limit.
func (p *Pipeline) underEventLimit(tx *store.Tx, j *store.Job, c *commandJob, org *store.Organizer, now time.Time) error {
	limit := p.cfg.EventLimit
	if org.EventLimit != nil {
		limit = *org.EventLimit
	}
	if limit < 0 || org.Paid(now) {
		return nil
	}
	st, err := tx.OrganizerStats(org.Email)
	if err != nil {
		return err
	}
	if st.Events < int64(limit) {
		return nil
	}
	rej := reject("organizer %s has reached the limit of %d events", org.Email, limit)
	if c.Believed {
		first := c.Calendar.Events[0]
		data := templates.EventLimit{Organizer: first.Organizer.Name, Mailto: org.Email, Summary: first.Summary,
			Limit: limit, Count: int(st.Events), UpgradeURL: p.cfg.UpgradeURL}
		rej.apply = func(tx *store.Tx) error {
			return p.notify(tx, j.Message, itip.Address{Email: org.Email, Name: first.Organizer.Name}, noticeLimit, data, "")
		}
	}
	return rej
}

// createdNotice is the "event created" notice: the event id and the ways
// to invite people to it.
func (p *Pipeline) createdNotice(e *store.Event, d *eventData) templates.EventCreated {
	inviteURL := p.cfg.PublicURL + "/event/" + e.UID + "/invite"
	button := `<form action="` + html.EscapeString(inviteURL) + `" method="get">` +
		`<input type="email" name="email" placeholder="you@example.com" required> ` +
		`<input type="text" name="name" placeholder="Your name"> ` +
		`<input type="hidden" name="origin" value="webform">` +
		`<button type="submit">Add to my calendar</button></form>`
	return templates.EventCreated{
		Organizer: e.OrganizerName, Mailto: e.OrganizerEmail, Summary: e.Summary, UID: e.UID,
		OriginalUID: e.OriginalUID, When: when(d.Master), InviteURL: inviteURL, ButtonSnippet: button,
		BulkAddress: p.cfg.BulkLocal + "@" + p.cfg.Domain,
		CSVExample:  "uid,email,name\n" + e.UID + ",jane@example.com,Jane Doe",
	}
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// applyCancel cancels an event, or one occurrence of it.
func (p *Pipeline) applyCancel(tx *store.Tx, j *store.Job, c *commandJob) error {
	now := p.cfg.Now()
	first := c.Calendar.Events[0]
	e, err := tx.EventByOriginalUID(first.UID)
	if errors.Is(err, store.ErrNotFound) {
		return reject("CANCEL for unknown event UID %q", first.UID)
	} else if err != nil {
		return err
	}
	if e.Status == store.StatusCancelled {
		return p.processed(tx, j, "event %s was already cancelled; nothing sent", e.UID)
	}
	stamp := nowOr(first.DTStamp, now)
	if first.Sequence < e.OriginalSequence {
		return p.processed(tx, j, "event %s: CANCEL (SEQUENCE %d) is older than the REQUEST applied (SEQUENCE %d); ignored",
			e.UID, first.Sequence, e.OriginalSequence)
	}
	f := fanoutJob{UID: e.UID, Kind: kindCancel}
	var what string
	if rid := first.RecurrenceID; rid != nil {
		d, err := loadData(e)
		if err != nil {
			return err
		}
		if !d.cancelOccurrence(*rid) {
			return p.processed(tx, j, "event %s: occurrence %s was already cancelled; nothing sent", e.UID, rid.Value)
		}
		if err := d.save(e); err != nil {
			return err
		}
		f.RecurrenceID = rid
		what = "occurrence " + rid.Value + " of event " + e.UID
	} else {
		e.Status = store.StatusCancelled
		what = "event " + e.UID
	}
	e.Sequence++
	e.LastModified = now
	e.OriginalSequence, e.OriginalDTStamp = max(first.Sequence, e.OriginalSequence), stamp
	f.Sequence = e.Sequence
	if err := tx.PutEvent(e); err != nil {
		return err
	}
	if err := p.enqueue(tx, StageStage, kindCancel, j.Message, f); err != nil {
		return err
	}
	return p.processed(tx, j, "%s cancelled (SEQUENCE %d); sending cancellations", what, e.Sequence)
}

// maxText bounds a COMMENT or PRODID kept from a reply.
const maxText = 1024

// applyReply records an attendee's answer.
func (p *Pipeline) applyReply(tx *store.Tx, j *store.Job, c *commandJob) error {
	now := p.cfg.Now()
	e, err := tx.EventShared(c.UID) // read only, like verifyReply's
	if errors.Is(err, store.ErrNotFound) {
		return reject("reply for unknown event %q", c.UID)
	} else if err != nil {
		return err
	}
	vev := c.Calendar.Events[0]
	email := c.Attendee.Email
	a, err := tx.Attendee(e.UID, email)
	isNew := errors.Is(err, store.ErrNotFound)
	switch {
	case isNew:
		if c.Calendar.Method == "REFRESH" {
			return reject("REFRESH from %s, who is not an attendee of %s", email, e.UID)
		}
		a = &store.Attendee{UID: e.UID, Email: email, Name: c.Attendee.Name, Status: store.PartNeedsAction,
			Origin: store.OriginShared, Created: now}
		d := store.Counters{Attendees: 1}
		d.AddStatus(store.PartNeedsAction, 1)
		if err := tx.Count(e.UID, e.OrganizerEmail, d); err != nil {
			return err
		}
	case err != nil:
		return err
	}

	switch c.Calendar.Method {
	case "REFRESH":
		if err := p.enqueue(tx, StageSend, kindInvite, j.Message, sendJob{UID: e.UID, Email: email, Kind: kindInvite, Sequence: e.Sequence}); err != nil {
			return err
		}
		return p.processed(tx, j, "%s asked for the latest version of %s; resending", email, e.UID)
	case "COUNTER":
		a.AddHistory(store.RSVP{Status: a.Status, DTStamp: nowOr(vev.DTStamp, now), Received: now,
			ProdID: itip.Truncate(c.Calendar.ProdID, maxText), Comment: itip.Truncate(vev.Comment, maxText), Method: "COUNTER", Message: j.Message})
		if err := tx.PutAttendee(a); err != nil {
			return err
		}
		return p.processed(tx, j, "counter-proposal from %s for %s recorded", email, e.UID)
	}

	status := partStats[c.Attendee.PartStat]
	stamp := nowOr(vev.DTStamp, now)
	comment, prodID := itip.Truncate(vev.Comment, maxText), itip.Truncate(c.Calendar.ProdID, maxText)
	if !a.LastDTStamp.IsZero() && !stamp.After(a.LastDTStamp) {
		return p.processed(tx, j, "reply from %s for %s (DTSTAMP %s) is not newer than the last one applied; ignored",
			email, e.UID, stamp.UTC().Format("20060102T150405Z"))
	}
	if vev.Sequence < e.ResetSequence && !isNew {
		return p.processed(tx, j, "reply from %s for %s answers SEQUENCE %d, before the time changed (SEQUENCE %d); ignored",
			email, e.UID, vev.Sequence, e.ResetSequence)
	}
	if rid := vev.RecurrenceID; rid != nil {
		// An answer for one occurrence: kept in the history, the series
		// status and the statistics stay as they are.
		a.AddHistory(store.RSVP{Status: status, DTStamp: stamp, Received: now, ProdID: prodID, Comment: comment,
			Method: "REPLY", Message: j.Message, Occurrence: rid.Value})
		if err := tx.PutAttendee(a); err != nil {
			return err
		}
		return p.processed(tx, j, "%s: %s for occurrence %s of event %s recorded", email, status, rid.Value, e.UID)
	}
	if err := tx.Count(e.UID, e.OrganizerEmail, store.StatusChange(a.Status, status)); err != nil {
		return err
	}
	old := a.Status
	a.Status, a.LastDTStamp = status, stamp
	a.ProdID, a.Comment = prodID, comment
	if a.Name == "" {
		a.Name = c.Attendee.Name
	}
	a.AddHistory(store.RSVP{Status: status, DTStamp: stamp, Received: now, ProdID: prodID,
		Comment: comment, Method: "REPLY", Message: j.Message})
	if err := tx.PutAttendee(a); err != nil {
		return err
	}
	return p.processed(tx, j, "%s: %s → %s for event %s", email, old, status, e.UID)
}

// unsent reports whether a's invite never went out and failed for good.
func unsent(a *store.Attendee) bool {
	return a.Sent.IsZero() && a.SendError != "" && a.Origin != store.OriginShared
}

// addInvitee records a new attendee, counts them and queues their invite;
// for an attendee whose invite never went out, it only queues it again.
func (p *Pipeline) addInvitee(tx *store.Tx, j *store.Job, e *store.Event, old *store.Attendee, email, name, origin string, now time.Time) error {
	d, err := p.putInvitee(tx, j.Message, e, old, email, name, origin, now)
	if err != nil {
		return err
	}
	return tx.Count(e.UID, e.OrganizerEmail, d)
}

// putInvitee is addInvitee leaving the counting to the caller: it returns
// the counter change.
func (p *Pipeline) putInvitee(tx *store.Tx, message string, e *store.Event, old *store.Attendee, email, name, origin string, now time.Time) (store.Counters, error) {
	send := sendJob{UID: e.UID, Email: email, Kind: kindInvite, Sequence: e.Sequence}
	if old != nil { // recorded, never sent: send it again
		old.SendError = ""
		if err := tx.PutAttendee(old); err != nil {
			return store.Counters{}, err
		}
		return store.Counters{}, p.enqueue(tx, StageSend, kindInvite, message, send)
	}
	if origin == "" {
		origin = store.OriginAPI
	}
	a := &store.Attendee{UID: e.UID, Email: email, Name: name, Status: store.PartNeedsAction,
		Origin: origin, Tag: newTag(), Created: now}
	if err := tx.PutAttendee(a); err != nil {
		return store.Counters{}, err
	}
	d := store.Counters{Attendees: 1, Invited: 1}
	d.AddStatus(store.PartNeedsAction, 1)
	return d, p.enqueue(tx, StageSend, kindInvite, message, send)
}

// mayInvite applies the rules for inviting email to e, whose organizer is
// org and which has invited people so far (counting this transaction's):
// not already invited, the organizer not suspended, the attendee not
// blocking the organizer, and the event's invite limit not reached.
//
// It returns the attendee already recorded for email, if one is: an
// attendee whose invite never went out (the relay refused it, or the
// organizer was suspended when it was due) may be invited again, and is
// not a new attendee, see putInvitee.
func (p *Pipeline) mayInvite(tx *store.Tx, e *store.Event, org *store.Organizer, invited int64, email string) (*store.Attendee, error) {
	old, err := tx.Attendee(e.UID, email)
	if err == nil && !unsent(old) {
		return nil, reject("%s is already invited to %s", email, e.UID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if org.Suspended {
		return nil, reject("organizer %s is suspended%s", org.Email, reasonSuffix(org.SuspendedReason))
	}
	if tx.Blocked(email, org.Email) {
		return nil, reject("%s has asked not to receive invites from %s", email, org.Email)
	}
	limit := p.cfg.InviteLimit
	if org.InviteLimit != nil {
		limit = *org.InviteLimit
	}
	if limit >= 0 && invited >= int64(limit) {
		return nil, reject("event %s has reached its limit of %d invites", e.UID, limit)
	}
	return old, nil
}

// invitedSoFar is how many people event uid has invited, as committed.
func invitedSoFar(tx *store.Tx, uid string) (int64, error) {
	st, err := tx.EventStats(uid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	return st.Invited, nil
}

func (p *Pipeline) enqueue(tx *store.Tx, stage, kind, message string, payload any) error {
	jb, err := newJob(kind, message, payload)
	if err != nil {
		return err
	}
	_, err = tx.Enqueue(stage, jb, p.cfg.Now())
	return err
}

var (
	b32    = base32.StdEncoding.WithPadding(base32.NoPadding)
	b32hex = base32.HexEncoding.WithPadding(base32.NoPadding)
)

// newUID makes a server event UID, URL-safe: the creation time in
// milliseconds (48 bits) then 80 random bits, in base32hex, whose order is
// the bytes' order. New events' keys therefore sort after the ones before,
// so a commit that registers several adds them to the same last page of
// each event bucket instead of rewriting one page per event at random.
func newUID(now time.Time) string {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return strings.ToLower(b32hex.EncodeToString(b))
}

// newTag makes a reply tag for an rsvp+TAG address: 80 random bits.
func newTag() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.ToLower(b32.EncodeToString(b))
}
