package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Counters are the statistics kept for an event, an organizer and the
// whole system. Each is changed in the transaction that changes what it
// counts, so reading one never walks attendees.
type Counters struct {
	Organizers  int64 `json:"organizers,omitempty"` // system only
	Events      int64 `json:"events,omitempty"`     // organizer and system
	Attendees   int64 `json:"attendees"`
	Invited     int64 `json:"invited"` // attendees we invited (not shared): what invite limits count
	InvitesSent int64 `json:"invites_sent"`
	Accepted    int64 `json:"accepted"`
	Declined    int64 `json:"declined"`
	Tentative   int64 `json:"tentative"`
	Pending     int64 `json:"pending"`
	Delegated   int64 `json:"delegated"`
	UpdatesSent int64 `json:"updates_sent"`
	CancelsSent int64 `json:"cancels_sent"`
	SendFailed  int64 `json:"send_failed"`
}

// Add adds d to c.
func (c *Counters) Add(d Counters) {
	cf, df := c.fields(), d.fields()
	for i := range cf {
		*cf[i] += *df[i]
	}
}

// AddStatus adds n to the counter of participation status s.
func (c *Counters) AddStatus(s string, n int64) {
	switch s {
	case PartAccepted:
		c.Accepted += n
	case PartDeclined:
		c.Declined += n
	case PartTentative:
		c.Tentative += n
	case PartDelegated:
		c.Delegated += n
	default:
		c.Pending += n
	}
}

// StatusChange returns the counter change for an attendee moving from old
// to new status.
func StatusChange(old, new string) Counters {
	var d Counters
	if old != new {
		d.AddStatus(old, -1)
		d.AddStatus(new, 1)
	}
	return d
}

// Count adds d to the counters of event uid, of organizer and of the
// system.
func (tx *Tx) Count(uid, organizer string, d Counters) error {
	if !tx.writable {
		return ErrReadOnly
	}
	if d == (Counters{}) {
		return nil
	}
	if uid != "" {
		ev := d
		ev.Events, ev.Organizers = 0, 0
		if err := tx.addCounters(bEventStats, []byte(uid), ev); err != nil {
			return err
		}
	}
	if organizer != "" {
		od := d
		od.Organizers = 0
		if err := tx.addCounters(bOrgStats, []byte(organizer), od); err != nil {
			return err
		}
	}
	return tx.addCounters(bMeta, keySysStats, d)
}

// addCounters adds d to the counters stored at key: nothing to read or
// write when d is zero (the event's share of counting an organizer's new
// event, say).
func (tx *Tx) addCounters(bucket, key []byte, d Counters) error {
	if d == (Counters{}) {
		return nil
	}
	c, err := tx.counters(bucket, key)
	if err != nil {
		return err
	}
	c.Add(d)
	return tx.putCounters(bucket, key, c)
}

// counters reads the counters stored at key, zero if there are none yet.
func (tx *Tx) counters(bucket, key []byte) (Counters, error) {
	c, err := tx.getCounters(bucket, key)
	if errors.Is(err, ErrNotFound) {
		return c, nil
	}
	return c, err
}

// EventStats reads the counters of event uid.
func (tx *Tx) EventStats(uid string) (Counters, error) {
	return tx.getCounters(bEventStats, []byte(uid))
}

// OrganizerStats reads the counters of an organizer (zero if unknown).
func (tx *Tx) OrganizerStats(organizer string) (Counters, error) {
	return tx.counters(bOrgStats, []byte(organizer))
}

// SystemStats reads the system-wide counters.
func (tx *Tx) SystemStats() (Counters, error) {
	return tx.counters(bMeta, keySysStats)
}

// Counters are stored as countersBinary and then each field, in the
// order declared, as a varint: they are read and written again by most
// transactions (three times for each event registered or reply
// counted), and JSON cost several times as much. Counters stored as JSON
// by earlier versions still read.
const countersBinary = 1

// fields points at each counter, in the order declared.
func (c *Counters) fields() [13]*int64 {
	return [...]*int64{&c.Organizers, &c.Events, &c.Attendees, &c.Invited, &c.InvitesSent,
		&c.Accepted, &c.Declined, &c.Tentative, &c.Pending, &c.Delegated,
		&c.UpdatesSent, &c.CancelsSent, &c.SendFailed}
}

func (tx *Tx) putCounters(bucket, key []byte, c Counters) error {
	if !tx.writable {
		return ErrReadOnly
	}
	fields := c.fields()
	b := make([]byte, 1, 1+len(fields)*binary.MaxVarintLen64)
	b[0] = countersBinary
	for _, f := range fields {
		b = binary.AppendVarint(b, *f)
	}
	return tx.tx.Bucket(bucket).Put(key, b)
}

func (tx *Tx) getCounters(bucket, key []byte) (Counters, error) {
	var c Counters
	data := tx.tx.Bucket(bucket).Get(key)
	if data == nil {
		return c, ErrNotFound
	}
	if err := c.decode(data); err != nil {
		return Counters{}, fmt.Errorf("store: decode %s/%q: %w", bucket, key, err)
	}
	return c, nil
}

// decode reads counters as putCounters wrote them, or as JSON.
func (c *Counters) decode(data []byte) error {
	if len(data) > 0 && data[0] == '{' {
		return json.Unmarshal(data, c)
	}
	if len(data) == 0 || data[0] != countersBinary {
		return errors.New("unknown encoding of counters")
	}
	data = data[1:]
	for _, f := range c.fields() {
		v, n := binary.Varint(data)
		if n <= 0 {
			return errors.New("truncated counters")
		}
		*f, data = v, data[n:]
	}
	if len(data) > 0 {
		return errors.New("counters followed by extra bytes")
	}
	return nil
}
