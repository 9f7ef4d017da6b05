package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// eventData is what the pipeline keeps of an organizer's event, in the
// store's Event.Calendar: the master VEVENT (attendees removed), overrides
// of single occurrences, time zones, and occurrences we cancelled.
type eventData struct {
	Master    itip.Event        `json:"master"`
	Overrides []itip.Event      `json:"overrides,omitempty"`
	Timezones map[string]string `json:"timezones,omitempty"`
	Cancelled []itip.Time       `json:"cancelled,omitempty"`
}

func loadData(e *store.Event) (*eventData, error) {
	d := new(eventData)
	if err := json.Unmarshal(e.Calendar, d); err != nil {
		return nil, fmt.Errorf("pipeline: event %s: %w", e.UID, err)
	}
	return d, nil
}

func (d *eventData) save(e *store.Event) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	e.Calendar = b
	m := d.Master
	e.Summary, e.Description, e.Location = m.Summary, m.Description, m.Location
	e.Start, e.End = m.Start.UTC, m.End.UTC
	e.TZID, e.AllDay = m.Start.TZID, m.Start.AllDay
	return nil
}

// strip keeps of a received VEVENT what we resend: attendees are ours to
// add one by one, and alarms, comments and stamps are the organizer's.
func strip(ev itip.Event) itip.Event {
	ev.Attendees = nil
	ev.Comment = ""
	ev.DTStamp = time.Time{}
	return ev
}

// newData builds the stored form of the events of one REQUEST (all with
// the same UID): the master, or a lone occurrence standing in for it, in
// which case lone is that occurrence's RECURRENCE-ID.
func newData(cal *itip.Calendar) (d *eventData, lone *itip.Time) {
	d = &eventData{Timezones: cal.Timezones}
	var master *itip.Event
	for i := range cal.Events {
		if cal.Events[i].RecurrenceID == nil {
			master = &cal.Events[i]
			break
		}
	}
	if master == nil {
		// An occurrence without its series: treat it as a single event.
		m := cal.Events[0]
		lone, m.RecurrenceID = m.RecurrenceID, nil
		d.Master = strip(m)
		return d, lone
	}
	d.Master = strip(*master)
	for _, ev := range cal.Events {
		if ev.RecurrenceID != nil {
			d.Overrides = append(d.Overrides, strip(ev))
		}
	}
	return d, nil
}

// visible is what attendees see of the event; a change to it is an update.
type visible struct {
	Summary, Description, Location, URL, Status, Transp string
	Start, End                                          string
	RRule                                               string
	ExDates, RDates                                     []string
}

func view(ev itip.Event) visible {
	return visible{
		Summary: ev.Summary, Description: ev.Description, Location: ev.Location, URL: ev.URL,
		Status: ev.Status, Transp: ev.Transp,
		Start: timeString(ev.Start), End: timeString(ev.End), RRule: ev.RRule,
		ExDates: timeStrings(ev.ExDates), RDates: timeStrings(ev.RDates),
	}
}

func timeString(t itip.Time) string { return t.TZID + ":" + t.Value }

func timeStrings(ts []itip.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = timeString(t)
	}
	return out
}

// sameTime reports whether when the event (or occurrence) happens is
// unchanged.
func sameTime(a, b itip.Event) bool {
	va, vb := view(a), view(b)
	return va.Start == vb.Start && va.End == vb.End && va.RRule == vb.RRule &&
		reflect.DeepEqual(va.ExDates, vb.ExDates) && reflect.DeepEqual(va.RDates, vb.RDates)
}

// merge applies an update from the organizer to d and reports whether
// attendees would see a change and whether the time changed.
func (d *eventData) merge(u *eventData, lone *itip.Time) (changed, timeChanged bool) {
	if lone != nil {
		// The update carries one occurrence only: replace its override.
		ov := u.Master
		ov.RecurrenceID = lone
		for id, tz := range u.Timezones {
			if d.Timezones == nil {
				d.Timezones = map[string]string{}
			}
			d.Timezones[id] = tz
		}
		return d.setOverride(ov)
	}
	if !reflect.DeepEqual(view(d.Master), view(u.Master)) {
		changed = true
		timeChanged = !sameTime(d.Master, u.Master)
	}
	if !reflect.DeepEqual(overrideViews(d.Overrides), overrideViews(u.Overrides)) {
		changed = true
		timeChanged = timeChanged || len(d.Overrides) != len(u.Overrides) || !sameOverrideTimes(d.Overrides, u.Overrides)
	}
	cancelled := d.Cancelled
	*d = *u
	d.Cancelled = cancelled
	return changed, timeChanged
}

func (d *eventData) setOverride(ov itip.Event) (changed, timeChanged bool) {
	for i, old := range d.Overrides {
		if old.RecurrenceID != nil && old.RecurrenceID.Value == ov.RecurrenceID.Value {
			if reflect.DeepEqual(view(old), view(ov)) {
				return false, false
			}
			d.Overrides[i] = ov
			return true, !sameTime(old, ov)
		}
	}
	d.Overrides = append(d.Overrides, ov)
	return true, ov.Start.Value != ov.RecurrenceID.Value || ov.Start.TZID != ov.RecurrenceID.TZID
}

func overrideViews(ovs []itip.Event) []visible {
	out := make([]visible, len(ovs))
	for i, ov := range ovs {
		out[i] = view(ov)
	}
	return out
}

func sameOverrideTimes(a, b []itip.Event) bool {
	for i := range a {
		if !sameTime(a[i], b[i]) {
			return false
		}
	}
	return true
}

// cancelOccurrence records that the occurrence at rid is cancelled.
func (d *eventData) cancelOccurrence(rid itip.Time) bool {
	for _, c := range d.Cancelled {
		if c.Value == rid.Value && c.TZID == rid.TZID {
			return false
		}
	}
	d.Cancelled = append(d.Cancelled, rid)
	kept := d.Overrides[:0]
	for _, ov := range d.Overrides {
		if ov.RecurrenceID.Value != rid.Value {
			kept = append(kept, ov)
		}
	}
	d.Overrides = kept
	return true
}

// render builds the calendar we send to attendee a for a job of kind.
func (p *Pipeline) render(e *store.Event, d *eventData, a *store.Attendee, kind string, rid *itip.Time, now time.Time) *itip.Calendar {
	org := itip.Address{Email: p.replyAddress(a.Tag), Name: e.OrganizerName}
	if org.Name == "" {
		org.Name = e.OrganizerEmail
	}
	partstat := "NEEDS-ACTION"
	for k, v := range partStats {
		if v == a.Status {
			partstat = k
		}
	}
	att := itip.Attendee{Address: itip.Address{Email: a.Email, Name: a.Name}, PartStat: partstat,
		Role: "REQ-PARTICIPANT", CUType: "INDIVIDUAL", RSVP: true}
	fill := func(ev itip.Event) itip.Event {
		ev.UID = e.UID
		ev.Sequence = e.Sequence
		ev.DTStamp = now
		ev.Organizer = org
		ev.Attendees = []itip.Attendee{att}
		ev.LastModified = e.LastModified
		ev.Created = e.Created
		return ev
	}
	cal := &itip.Calendar{Method: "REQUEST", ProdID: prodID, Timezones: d.Timezones}
	if kind == kindCancel {
		cal.Method = "CANCEL"
		ev := fill(d.Master)
		ev.Status = "CANCELLED"
		if rid != nil {
			ev.RecurrenceID = rid
			ev.Start, ev.End = *rid, shift(*rid, d.Master)
			ev.RRule, ev.ExDates, ev.RDates = "", nil, nil
		}
		cal.Events = []itip.Event{ev}
		return cal
	}
	master := fill(d.Master)
	master.ExDates = append(append([]itip.Time(nil), master.ExDates...), d.Cancelled...)
	if master.Status == "" || master.Status == "CANCELLED" {
		master.Status = "CONFIRMED"
	}
	cal.Events = append(cal.Events, master)
	for _, ov := range d.Overrides {
		cal.Events = append(cal.Events, fill(ov))
	}
	return cal
}

// shift returns the end of the occurrence starting at start, keeping the
// master's duration.
func shift(start itip.Time, master itip.Event) itip.Time {
	dur := master.End.UTC.Sub(master.Start.UTC)
	end := start
	end.UTC = start.UTC.Add(dur)
	layout := "20060102T150405"
	switch {
	case start.AllDay:
		layout = "20060102"
	case strings.HasSuffix(start.Value, "Z"):
		layout = "20060102T150405Z"
	}
	if t, err := time.Parse(layout, start.Value); err == nil {
		end.Value = t.Add(dur).Format(layout)
	}
	return end
}

const prodID = "-//invited//invited//EN"

// replyAddress is the ORGANIZER address replies come back to.
func (p *Pipeline) replyAddress(tag string) string {
	if tag == "" {
		return p.cfg.RSVPLocal + "@" + p.cfg.Domain
	}
	return p.cfg.RSVPLocal + "+" + tag + "@" + p.cfg.Domain
}
