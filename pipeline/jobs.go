package pipeline

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
)

// Job kinds.
const (
	kindMessage = "message" // parse: an inbound message
	kindRequest = "request" // verify, create: an organizer's REQUEST
	kindCancel  = "cancel"  // verify, create: an organizer's CANCEL; stage, send: cancel to attendees
	kindReply   = "reply"   // verify, create: an attendee's REPLY, COUNTER or REFRESH
	kindInvite  = "invite"  // send: invite one attendee
	kindUpdate  = "update"  // stage, send: send the updated event
	kindNotify  = "notify"  // send: a notification to an organizer
	kindBulk    = "bulk"    // verify, create: a CSV of invites mailed to bulk@
)

// commandJob is an organizer's REQUEST or CANCEL, or an attendee's reply,
// read from an inbound message.
type commandJob struct {
	From     itip.Address `json:"from"`
	MailFrom string       `json:"mail_from,omitempty"`
	Tag      string       `json:"tag,omitempty"`
	Subject  string       `json:"subject,omitempty"`
	// Part is which calendar of the message this is (itip.Message.Calendars);
	// verify and create find it through the hand-off (handoff.go) when the
	// job was queued.
	Part int `json:"part"`
	// Sum is the SHA-256 of the calendar as encoded when the job was
	// queued (encodeCommand): a calendar
	// read again from the message must be that one (a later version might
	// read the message differently), or the job is refused.
	Sum string `json:"sum,omitempty"`
	// Calendar is filled in by Pipeline.command; jobs written by earlier
	// versions carry it, and a job kept in memory (commandJobOf) has it.
	Calendar *itip.Calendar `json:"calendar,omitempty"`
	// Auth is what parse decided about the sender.
	Auth senderauth.Verdict `json:"auth"`
	// Believed is set by verify when the sender is proven to be the
	// organizer: only then does the organizer get notices about it.
	Believed bool `json:"believed,omitempty"`
	// Set by verify for replies: the event and the attendee answering.
	UID      string        `json:"uid,omitempty"`
	Attendee itip.Attendee `json:"attendee,omitzero"`
}

// fanoutJob sends an update or a cancel to every attendee of an event, a
// batch per transaction; After is the last attendee already done.
type fanoutJob struct {
	UID          string     `json:"uid"`
	Kind         string     `json:"kind"`
	Sequence     int        `json:"sequence"`
	RecurrenceID *itip.Time `json:"recurrence_id,omitempty"`
	// Reset sets every attendee back to needs-action (the time changed).
	Reset   bool      `json:"reset,omitempty"`
	ResetAt time.Time `json:"reset_at,omitzero"` // the organizer's DTSTAMP of the change
	After   string    `json:"after,omitempty"`
}

// sendJob sends one message to one attendee.
type sendJob struct {
	UID          string     `json:"uid"`
	Email        string     `json:"email"`
	Kind         string     `json:"kind"`
	Sequence     int        `json:"sequence"`
	RecurrenceID *itip.Time `json:"recurrence_id,omitempty"`
}

func decode[T any](j *store.Job) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(j.Payload, v); err != nil {
		// A payload we cannot read will not read better later.
		return nil, reject("unreadable %s job: %v", j.Kind, err)
	}
	return v, nil
}

// commandJobOf is a verify or create job for c, kept decoded in its
// Carry: the stage after usually runs it straight away in memory
// (Pipeline.ahead), and its payload is only written if it is queued
// instead (Pipeline.encodeCommand).
func commandJobOf(kind, message string, c *commandJob) *store.Job {
	return &store.Job{Kind: kind, Message: message, Carry: c}
}

func newJob(kind, message string, payload any) (*store.Job, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("pipeline: encode %s job: %w", kind, err)
	}
	return &store.Job{Kind: kind, Message: message, Payload: b}, nil
}
