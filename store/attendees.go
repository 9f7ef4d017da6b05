package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Attendee participation states, lower-case as in the reference documents.
const (
	PartNeedsAction = "needs-action"
	PartAccepted    = "accepted"
	PartDeclined    = "declined"
	PartTentative   = "tentative"
	PartDelegated   = "delegated"
)

// Attendee origins that are not an HTTP origin parameter.
const (
	OriginShared = "shared" // replied to an invite we never sent them (forwarded)
	OriginBulk   = "bulk"
	OriginAPI    = "api"
)

// Invitee is one person to invite: a row of an HTTP or bulk request.
type Invitee struct {
	Email  string `json:"email"`
	Name   string `json:"name,omitempty"`
	Origin string `json:"origin,omitempty"`
}

// Attendee is one person invited to (or answering) an event.
type Attendee struct {
	UID     string    `json:"uid"`
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Status  string    `json:"status"`
	Origin  string    `json:"origin"`
	Tag     string    `json:"tag,omitempty"`
	Created time.Time `json:"created"`
	// Sent is when the first invite reached the relay (zero for an
	// attendee who only ever got updates); SentSequence is the event
	// sequence of the last message that did.
	Sent         time.Time `json:"sent,omitzero"`
	SentSequence int       `json:"sent_sequence"`
	SendError    string    `json:"send_error,omitempty"`
	// LastDTStamp is the DTSTAMP of the newest reply applied (or the time
	// the status was reset); older replies are stale.
	LastDTStamp time.Time `json:"last_dtstamp,omitzero"`
	ProdID      string    `json:"prodid,omitempty"`
	Comment     string    `json:"comment,omitempty"`
	History     []RSVP    `json:"history,omitempty"`
}

// RSVP is one entry of an attendee's history.
type RSVP struct {
	Status   string    `json:"status"`
	DTStamp  time.Time `json:"dtstamp"`
	Received time.Time `json:"received"`
	ProdID   string    `json:"prodid,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	Method   string    `json:"method,omitempty"` // REPLY, COUNTER, or "" for a reset by an update
	Message  string    `json:"message,omitempty"`
	// Occurrence is the RECURRENCE-ID of a reply for one occurrence only.
	Occurrence string `json:"occurrence,omitempty"`
}

// MaxHistory bounds the RSVP history kept per attendee (oldest dropped).
const MaxHistory = 100

// AddHistory appends r, dropping the oldest entries beyond MaxHistory.
func (a *Attendee) AddHistory(r RSVP) {
	if len(a.History) >= MaxHistory {
		a.History = append(a.History[:0], a.History[len(a.History)-MaxHistory+1:]...)
	}
	a.History = append(a.History, r)
}

func attendeeKey(uid, email string) []byte { return join(uid, email) }

// Attendee reads the attendee email of event uid.
func (tx *Tx) Attendee(uid, email string) (*Attendee, error) {
	var a Attendee
	if err := tx.get(bAttendees, attendeeKey(uid, email), &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// PutAttendee creates or replaces an attendee, and its tag mapping.
func (tx *Tx) PutAttendee(a *Attendee) error {
	if a.UID == "" || a.Email == "" || strings.ContainsRune(a.Email, 0) {
		return fmt.Errorf("store: attendee needs a uid and an email")
	}
	if a.Tag != "" {
		if err := tx.tx.Bucket(bTags).Put([]byte(a.Tag), attendeeKey(a.UID, a.Email)); err != nil {
			return err
		}
	}
	if err := tx.put(bAttendees, attendeeKey(a.UID, a.Email), a); err != nil {
		return err
	}
	tx.wroteAttendee()
	return nil
}

// TagOwner returns the event and attendee a reply tag was issued to.
func (tx *Tx) TagOwner(tag string) (uid, email string, err error) {
	v := tx.tx.Bucket(bTags).Get([]byte(tag))
	if v == nil {
		return "", "", ErrNotFound
	}
	uid, email, _ = strings.Cut(string(v), "\x00")
	return uid, email, nil
}

// TagParties is who an invite's tag (its reply and unsubscribe token)
// stands between: the attendee holding it and the organizer of its event.
func (tx *Tx) TagParties(tag string) (attendee, organizer string, err error) {
	uid, attendee, err := tx.TagOwner(tag)
	if err != nil {
		return "", "", err
	}
	e, err := tx.Event(uid)
	if err != nil {
		return "", "", err
	}
	return attendee, e.OrganizerEmail, nil
}

// Attendees calls fn for the attendees of event uid in email order,
// starting after the email after ("" for the first). It stops when fn
// returns false or an error.
func (tx *Tx) Attendees(uid, after string, fn func(*Attendee) (bool, error)) error {
	prefix := join(uid, "")
	c := tx.tx.Bucket(bAttendees).Cursor()
	start := prefix
	if after != "" {
		start = append(attendeeKey(uid, after), 0)
	}
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var a Attendee
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("store: decode attendee %q: %w", k, err)
		}
		more, err := fn(&a)
		if err != nil || !more {
			return err
		}
	}
	return nil
}
