package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// parse decides who sent an inbound message, reads it, and queues one
// verify job per calendar (or CSV) for each of our mailboxes it was sent
// to. The sender decision is recorded on the message whatever happens.
//
// Memory taken to read a large message is held until what parse and the
// stages run ahead of it made of it is written (outcome.memory).
func (p *Pipeline) parse(ctx context.Context, j *store.Job) (outcome, error) {
	m, raw, held, err := p.readInbound(ctx, j)
	// Given back here unless handed to the outcome: also on a panic.
	defer func() { p.cfg.Memory.Release(held) }()
	if err != nil {
		return outcome{}, err
	}
	verdict := p.whoSent(ctx, m, raw)
	auth, err := json.Marshal(verdict)
	if err != nil {
		return outcome{}, err
	}
	record := func(tx *store.Tx) error { return tx.SetMessageAuth(j.Message, auth) }
	apply, jobs, err := p.route(j, m, raw, verdict)
	var rej *Rejection
	if errors.As(err, &rej) {
		if rej.apply == nil && verdict.Authenticated && p.sentTo(m, MailboxCreate) {
			// An organizer we can prove wrote to create@ and we could do
			// nothing with it: say why.
			data := templates.EventFailed{Mailto: verdict.From, Reason: rej.Reason,
				CreateAddress: p.cfg.CreateLocal + "@" + p.cfg.Domain}
			rej.apply = func(tx *store.Tx) error {
				return p.notify(tx, j.Message, itip.Address{Email: verdict.From}, noticeFailed, data, "")
			}
		}
		inner := rej.apply
		rej.apply = func(tx *store.Tx) error {
			if inner != nil {
				if err := inner(tx); err != nil {
					return err
				}
			}
			return record(tx)
		}
		return outcome{}, rej
	} else if err != nil {
		return outcome{}, err
	}
	o := outcome{apply: func(tx *store.Tx) error {
		if apply != nil {
			if err := apply(tx); err != nil {
				return err
			}
		}
		return record(tx)
	}, next: jobs, to: StageVerify}
	o.memory, held = held, 0
	return o, nil
}

// sentTo reports whether m was sent to one of our mailboxes of kind box.
func (p *Pipeline) sentTo(m *store.Message, box Mailbox) bool {
	for _, rcpt := range m.RcptTo {
		if b, _ := p.Mailbox(rcpt); b == box {
			return true
		}
	}
	return false
}

// readInbound loads a message. It returns the memory it took to read a
// large one (see readRaw), also with an error.
func (p *Pipeline) readInbound(ctx context.Context, j *store.Job) (_ *store.Message, _ []byte, held int64, err error) {
	var (
		m   *store.Message
		raw []byte
	)
	if a, ok := p.fresh.Take(j.Message); ok {
		m, raw = a.m, a.raw
		held, err = p.takeMemory(ctx, m.Size)
	} else {
		m, raw, held, err = p.readRaw(ctx, j.Message)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, held, reject("message %s is gone", j.Message)
	}
	return m, raw, held, err
}

// whoSent decides who sent message m.
func (p *Pipeline) whoSent(ctx context.Context, m *store.Message, raw []byte) senderauth.Verdict {
	var spf *senderauth.SPF
	if m.SPF != "" {
		spf = &senderauth.SPF{Result: m.SPF, Domain: m.SPFDomain}
	}
	var ip net.IP
	if host, _, err := net.SplitHostPort(m.Remote); err == nil {
		ip = net.ParseIP(host)
	}
	return p.cfg.Auth.Check(ctx, raw, spf, ip, m.HELO, m.MailFrom)
}

// route reads the message and returns a verify job for each of its
// calendars and CSV files, or what to write for an unsubscribe.
func (p *Pipeline) route(j *store.Job, m *store.Message, raw []byte, verdict senderauth.Verdict) (func(*store.Tx) error, []*store.Job, error) {
	// Each mailbox once, whatever the number of recipients.
	var create, rsvp, bulk bool
	var tags, unsubscribe []string
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
		case MailboxUnsubscribe:
			unsubscribe = append(unsubscribe, tag)
		}
	}
	if len(unsubscribe) > 0 && !create && !rsvp && !bulk {
		// RFC 8058's mailto: the address is the capability, the message
		// itself does not matter.
		return func(tx *store.Tx) error {
			var done []string
			for _, tag := range unsubscribe {
				attendee, organizer, err := p.unsubscribe(tx, tag, "unsubscribe mail")
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				done = append(done, attendee+" from "+organizer)
			}
			if len(done) == 0 {
				return reject("unsubscribe address with an unknown token")
			}
			return p.processed(tx, j, "unsubscribed %s", strings.Join(done, ", "))
		}, nil, nil
	}

	msg, err := itip.ReadMessage(bytes.NewReader(raw), p.cfg.MIME)
	switch {
	case err == nil, errors.Is(err, itip.ErrNoCalendar) && bulk:
	case errors.Is(err, itip.ErrLimit):
		return nil, nil, reject("message refused: %v", err)
	case bulk && !create && !rsvp:
		return nil, nil, reject("the message cannot be read: %v", err)
	default:
		return nil, nil, reject("no usable calendar: %v", err)
	}

	var jobs []*store.Job
	var reasons []string
	if bulk {
		// One job per CSV attachment (the only attachments itip keeps);
		// verify reads each again.
		for n, a := range msg.Attachments {
			jb, err := newJob(kindBulk, j.Message, bulkJob{From: msg.From, Subject: msg.Subject, Part: n, Filename: a.Filename, Auth: verdict})
			if err != nil {
				return nil, nil, err
			}
			jobs = append(jobs, jb)
		}
		if len(msg.Attachments) == 0 {
			reasons = append(reasons, "no CSV attachment (uid,email,name) for bulk invites")
		}
	}
	add := func(kind, tag string, part int, cal *itip.Calendar) {
		jobs = append(jobs, commandJobOf(kind, j.Message, &commandJob{From: msg.From, MailFrom: m.MailFrom, Tag: tag,
			Subject: msg.Subject, Part: part, Calendar: cal, Auth: verdict}))
	}
	for part, cal := range msg.Calendars {
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
			add(kind, "", part, cal)
		case rsvp && (method == "REPLY" || method == "COUNTER" || method == "REFRESH"):
			tag := ""
			if len(tags) > 0 {
				tag = tags[0]
			}
			add(kindReply, tag, part, cal)
		case method == "":
			reasons = append(reasons, "calendar has no METHOD")
		default:
			reasons = append(reasons, fmt.Sprintf("METHOD:%s is not accepted at this address", method))
		}
	}
	if len(jobs) == 0 {
		return nil, nil, reject("%s", strings.Join(reasons, "; "))
	}
	return nil, jobs, nil
}
