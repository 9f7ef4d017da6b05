package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// Notification templates.
const (
	noticeCreated    = "event_created"
	noticeFailed     = "event_failed"
	noticeLimit      = "event_limit"
	noticeEnrollment = "enrollment"
	noticeReport     = "attendee_report"
	noticeBulk       = "bulk_report"
)

// notifyJob mails one notification to an organizer. It is rendered when
// sent, from Data and, for a report, the attendees as they are then.
type notifyJob struct {
	Template string          `json:"template"`
	To       itip.Address    `json:"to"`
	Data     json.RawMessage `json:"data"`
	// ReportUID attaches the attendee report CSV of that event.
	ReportUID string `json:"report_uid,omitempty"`
}

// noticeData returns a new value of the data type of template name.
func noticeData(name string) (any, error) {
	switch name {
	case noticeCreated:
		return new(templates.EventCreated), nil
	case noticeFailed:
		return new(templates.EventFailed), nil
	case noticeLimit:
		return new(templates.EventLimit), nil
	case noticeEnrollment:
		return new(templates.Enrollment), nil
	case noticeReport:
		return new(templates.AttendeeReport), nil
	case noticeBulk:
		return new(templates.BulkReport), nil
	}
	return nil, fmt.Errorf("unknown notification %q", name)
}

// notify queues a notification to an organizer in tx. Callers send one
// only to an address they believe (an authenticated sender, or a
// record's own address), never to a From that may be forged.
func (p *Pipeline) notify(tx *store.Tx, message string, to itip.Address, template string, data any, reportUID string) error {
	jb, err := noticeJob(message, to, template, data, reportUID)
	if err != nil {
		return err
	}
	_, err = tx.Enqueue(StageSend, jb, p.cfg.Now())
	return err
}

// noticeJob is the send job of a notification, for notify or for a
// caller that encodes it ahead of its transaction.
func noticeJob(message string, to itip.Address, template string, data any, reportUID string) (*store.Job, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return newJob(kindNotify, message, notifyJob{Template: template, To: to, Data: b, ReportUID: reportUID})
}

// sendNotice renders and delivers a notify job.
func (p *Pipeline) sendNotice(ctx context.Context, j *store.Job) (func(*store.Tx) error, error) {
	n, err := decode[notifyJob](j)
	if err != nil {
		return nil, err
	}
	data, err := noticeData(n.Template)
	if err != nil {
		return nil, reject("%v", err)
	}
	if err := json.Unmarshal(n.Data, data); err != nil {
		return nil, reject("unreadable %s notification: %v", n.Template, err)
	}
	subject, err := p.cfg.Templates.Subject(n.Template, data)
	if err != nil {
		return nil, reject("render %s: %v", n.Template, err)
	}
	text, html, err := p.cfg.Templates.Render(n.Template, data)
	if err != nil {
		return nil, reject("render %s: %v", n.Template, err)
	}
	var csv []byte
	if n.ReportUID != "" {
		var buf bytes.Buffer
		if err := p.db.View(func(tx *store.Tx) error { return tx.WriteAttendeeCSV(&buf, n.ReportUID) }); err != nil {
			return nil, err
		}
		csv = buf.Bytes()
	}
	now := p.cfg.Now()
	id := fmt.Sprintf("notice.%s.%d@%s", n.Template, j.ID, p.cfg.Domain)
	raw, err := p.buildNotice(n.To, subject, id, now, text, html, "attendees-"+n.ReportUID+".csv", csv)
	if err != nil {
		return nil, reject("build %s: %v", n.Template, err)
	}
	sendErr := p.deliver(ctx, p.noticeFrom(), n.To.Email, raw)
	if sendErr != nil && !mailer.IsPermanent(sendErr) {
		return nil, fmt.Errorf("deliver %s to %s: %w", n.Template, n.To.Email, sendErr)
	}
	rec := &store.SendRecord{MessageID: id, UID: n.ReportUID, Email: n.To.Email, Kind: n.Template,
		Status: store.SendSent, Attempts: j.Attempts + 1, Time: now}
	if sendErr != nil {
		rec.Status, rec.Error = store.SendFailed, sendErr.Error()
		p.log.Warn("notification refused", "template", n.Template, "to", n.To.Email, "err", sendErr)
	}
	return func(tx *store.Tx) error { return tx.PutSend(rec) }, nil
}

// noticeFrom is the sender of notifications: the create@ mailbox, which
// takes replies without harm.
func (p *Pipeline) noticeFrom() string { return p.cfg.CreateLocal + "@" + p.cfg.Domain }

// buildNotice writes a notification: multipart/alternative text and HTML,
// inside multipart/mixed with a CSV attachment when there is one.
func (p *Pipeline) buildNotice(to itip.Address, subject, id string, now time.Time, text, html, csvName string, csv []byte) ([]byte, error) {
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: "invited", Address: p.noticeFrom()}})
	h.SetAddressList("To", []*mail.Address{{Name: cleanName(to.Name), Address: to.Email}})
	h.SetSubject(subject)
	h.SetDate(now)
	h.SetMessageID(id)
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("MIME-Version", "1.0")
	var buf bytes.Buffer
	body := func(iw *mail.InlineWriter) error {
		for _, part := range []struct{ ctype, s string }{{"text/plain", text}, {"text/html", html}} {
			var ph mail.InlineHeader
			ph.SetContentType(part.ctype, map[string]string{"charset": "UTF-8"})
			w, err := iw.CreatePart(ph)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(w, part.s); err != nil {
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
		return iw.Close()
	}
	if csv == nil {
		iw, err := mail.CreateInlineWriter(&buf, h)
		if err != nil {
			return nil, err
		}
		if err := body(iw); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	iw, err := mw.CreateInline()
	if err != nil {
		return nil, err
	}
	if err := body(iw); err != nil {
		return nil, err
	}
	var ah mail.AttachmentHeader
	ah.SetContentType("text/csv", map[string]string{"charset": "UTF-8"})
	ah.SetFilename(csvName)
	aw, err := mw.CreateAttachment(ah)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(csv); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Report queues the attendee report of event uid, mailed to its organizer.
func (p *Pipeline) Report(ctx context.Context, uid string) error {
	return p.db.Update(ctx, func(tx *store.Tx) error {
		e, err := tx.Event(uid)
		if err != nil {
			return fmt.Errorf("event %q: %w", uid, err)
		}
		c, err := tx.EventStats(uid)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		data := templates.AttendeeReport{
			Organizer: e.OrganizerName, Mailto: e.OrganizerEmail, Summary: e.Summary, UID: e.UID,
			Attendees: int(c.Attendees),
			Counts: templates.AttendeeCounts{Accepted: int(c.Accepted), Declined: int(c.Declined),
				Tentative: int(c.Tentative), Pending: int(c.Pending)},
		}
		return p.notify(tx, "", p.organizerAddress(e), noticeReport, data, e.UID)
	})
}

// Enroll records paid subscriptions for organizer, once each however often
// the shop's webhook is retried, and queues the enrollment notice for the
// new ones. It returns how many were new.
func (p *Pipeline) Enroll(ctx context.Context, organizer string, subs []store.Subscription) (int, error) {
	added := 0
	err := p.db.Update(ctx, func(tx *store.Tx) error {
		added = 0
		o, err := tx.OrganizerOrNew(organizer, p.cfg.Now())
		if err != nil {
			return err
		}
		var names []string
		var order string
		for _, s := range subs {
			if o.AddSubscription(s) {
				added++
				names = append(names, s.Product)
				order = s.OrderNumber
			}
		}
		if added == 0 {
			return nil
		}
		if err := tx.PutOrganizer(o); err != nil {
			return err
		}
		data := templates.Enrollment{Organizer: o.Name, Mailto: o.Email, Product: joinNames(names), OrderNumber: order}
		return p.notify(tx, "", itip.Address{Email: o.Email, Name: o.Name}, noticeEnrollment, data, "")
	})
	return added, err
}

func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	s := names[0]
	for _, n := range names[1 : len(names)-1] {
		s += ", " + n
	}
	return s + " and " + names[len(names)-1]
}

// organizerAddress is where an event's organizer gets notices.
func (p *Pipeline) organizerAddress(e *store.Event) itip.Address {
	return itip.Address{Email: e.OrganizerEmail, Name: e.OrganizerName}
}
