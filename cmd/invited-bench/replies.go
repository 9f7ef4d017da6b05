package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
)

// replyTemplate is an attendee's acceptance of one of invited's
// invitations, as Gmail sends it: the MIME layout of the request template
// (a Gmail invitation) carrying Gmail's REPLY calendar
// (testdata/imip/google-reply-accepted-to-exchange-organizer.ics), made
// to answer one event. Each message gets its own attendee and Message-ID.
type replyTemplate struct{ slots }

const replyFile = "google-reply-accepted-to-exchange-organizer.ics"

// fanoutTag names the fan-out step's event and its attendees, who reply.
const fanoutTag = "fanout"

// loadReply reads the reply from dir: accepting event uid of organizer,
// sent to rsvp, and about size bytes long.
func loadReply(dir, uid, organizer, rsvp string, size int) (*replyTemplate, error) {
	req, err := readCRLF(dir, templateFile, templateMsg, templateText, "method=REQUEST", "\r\nBEGIN:VCALENDAR\r\n", "\r\nEND:VCALENDAR\r\n")
	if err != nil {
		return nil, err
	}
	ics, err := readCRLF(dir, replyFile, "METHOD:REPLY", "PARTSTAT=ACCEPTED")
	if err != nil {
		return nil, err
	}
	// Our lines replace the template's whole (unfolded) ones; ATTENDEE is
	// folded by hand, so that its line stays short with any address.
	lines := strings.Split(strings.ReplaceAll(ics, "\r\n ", ""), "\r\n")
	for i, l := range lines {
		switch name, _, _ := strings.Cut(l, ":"); {
		case name == "UID":
			lines[i] = "UID:" + uid
		case strings.HasPrefix(name, "ORGANIZER"):
			lines[i] = "ORGANIZER:mailto:" + organizer
		case strings.HasPrefix(name, "ATTENDEE"):
			lines[i] = "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;X-NUM-\r\n GUESTS=0:mailto:\x00"
		}
	}
	cal := strings.Join(lines, "\r\n")

	head, body, _ := strings.Cut(req, "\r\n\r\n")
	var hdr []string
	for _, h := range strings.Split(strings.ReplaceAll(head, "\r\n\t", " "), "\r\n") {
		switch name, _, _ := strings.Cut(h, ":"); name {
		case "Message-ID":
			h = "Message-ID: <\x00>"
		case "From":
			h = "From: \x00"
		case "To":
			h = "To: " + rsvp
		case "Subject":
			h = "Subject: Accepted: Imip Testing"
		}
		hdr = append(hdr, h)
	}
	start := strings.Index(body, "\r\nBEGIN:VCALENDAR\r\n") + 2
	end := strings.Index(body, "\r\nEND:VCALENDAR\r\n") + len("\r\nEND:VCALENDAR\r\n")
	body = body[:start] + cal + body[end:]
	body = strings.Replace(body, "method=REQUEST", "method=REPLY", 1)
	s := strings.Join(hdr, "\r\n") + "\r\n\r\n" + body
	addr := len(fanoutAddress(fanoutTag, 0))
	return &replyTemplate{newSlots(padText(s, size, len("reply-000000-0000000@example.net")+2*addr))}, nil
}

// message returns the reply of attendee, with Message-ID id.
func (t *replyTemplate) message(id, attendee string) []byte {
	// Message-ID and From come before the calendar in the file.
	return t.fill(id, attendee, attendee)
}

// replyLoad is a max applied run of replies: each invited attendee of
// event uid (the fan-out's) accepts once, and a reply is applied when the
// event's statistics count its acceptance.
func replyLoad(d *daemon, tmpl *replyTemplate, uid, run string, invited int) appliedLoad {
	var next atomic.Int64
	return appliedLoad{
		what: "REPLYs accepting the fan-out's invitations",
		rcpt: "rsvp@" + benchDomain,
		next: func() (string, []byte, bool) {
			i := next.Add(1) - 1
			if i >= int64(invited) {
				return "", nil, false
			}
			from := fanoutAddress(fanoutTag, int(i))
			return from, tmpl.message(fmt.Sprintf("reply-%s-%07d@example.net", run, i), from), true
		},
		count: func(ctx context.Context) (int64, error) {
			var s statsJSON
			err := d.api.get(ctx, "/event/"+uid+"/statistics", &s)
			return s.Confirmed, err
		},
	}
}

// fanoutAddress is the address of attendee i of a fan-out.
func fanoutAddress(tag string, i int) string {
	return fmt.Sprintf("%s-%07d@example.net", tag, i)
}
