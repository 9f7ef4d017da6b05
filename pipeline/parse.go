package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// parse reads an inbound message and queues one verify job per calendar
// for each of our mailboxes it was sent to.
func (p *Pipeline) parse(ctx context.Context, j *store.Job) (func(*store.Tx) error, error) {
	var (
		m   *store.Message
		raw []byte
	)
	err := p.db.View(func(tx *store.Tx) (err error) {
		if m, err = tx.Message(j.Message); err != nil {
			return err
		}
		raw, err = tx.Raw(j.Message)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, reject("message %s is gone", j.Message)
	} else if err != nil {
		return nil, err
	}

	// Each mailbox once, whatever the number of recipients.
	var create, rsvp, bulk bool
	var tags []string
	for _, rcpt := range m.RcptTo {
		switch box, tag := p.Mailbox(rcpt); box {
		case MailboxCreate:
			create = true
		case MailboxRSVP:
			rsvp = true
			if tag != "" {
				tags = append(tags, tag)
			}
		case MailboxBulk:
			bulk = true
		}
	}

	msg, err := itip.ReadMessage(bytes.NewReader(raw), itip.Limits{})
	switch {
	case err == nil, errors.Is(err, itip.ErrNoCalendar) && bulk:
	case errors.Is(err, itip.ErrLimit):
		return nil, reject("message refused: %v", err)
	case bulk && !create && !rsvp:
		return nil, reject("the message cannot be read: %v", err)
	default:
		return nil, reject("no usable calendar: %v", err)
	}

	var jobs []*store.Job
	var reasons []string
	if bulk {
		// One job per CSV attachment; verify reads each again.
		n := 0
		for _, a := range msg.Attachments {
			if isCSV(a) {
				jb, err := newJob(kindBulk, j.Message, bulkJob{From: msg.From, Subject: msg.Subject, Part: n, Filename: a.Filename})
				if err != nil {
					return nil, err
				}
				jobs = append(jobs, jb)
				n++
			}
		}
		if n == 0 {
			reasons = append(reasons, "no CSV attachment (uid,email,name) for bulk invites")
		}
	}
	add := func(kind, tag string, cal *itip.Calendar) error {
		jb, err := newJob(kind, j.Message, commandJob{From: msg.From, MailFrom: m.MailFrom, Tag: tag, Subject: msg.Subject, Calendar: cal})
		if err == nil {
			jobs = append(jobs, jb)
		}
		return err
	}
	for _, cal := range msg.Calendars {
		if !create && !rsvp {
			break
		}
		method := cal.Method
		switch {
		case create && (method == "REQUEST" || method == "CANCEL"):
			kind := kindRequest
			if method == "CANCEL" {
				kind = kindCancel
			}
			if err := add(kind, "", cal); err != nil {
				return nil, err
			}
		case rsvp && (method == "REPLY" || method == "COUNTER" || method == "REFRESH"):
			tag := ""
			if len(tags) > 0 {
				tag = tags[0]
			}
			if err := add(kindReply, tag, cal); err != nil {
				return nil, err
			}
		case method == "":
			reasons = append(reasons, "calendar has no METHOD")
		default:
			reasons = append(reasons, fmt.Sprintf("METHOD:%s is not accepted at this address", method))
		}
	}
	if len(jobs) == 0 {
		return nil, reject("%s", strings.Join(reasons, "; "))
	}
	return func(tx *store.Tx) error {
		for _, jb := range jobs {
			if _, err := tx.Enqueue(StageVerify, jb, p.cfg.Now()); err != nil {
				return err
			}
		}
		return nil
	}, nil
}
