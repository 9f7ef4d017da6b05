package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event states, lower-case as in the reference documents.
const (
	StatusConfirmed = "confirmed"
	StatusTentative = "tentative"
	StatusCancelled = "cancelled"
)

// Event is a registered event.
type Event struct {
	UID            string `json:"uid"`
	OriginalUID    string `json:"original_uid"`
	OrganizerEmail string `json:"organizer_email"`
	OrganizerName  string `json:"organizer_name"`
	Status         string `json:"status"`
	Sequence       int    `json:"sequence"`
	// UpdateSequence is the Sequence of the last update sent to every
	// attendee, ResetSequence that of the last one that changed the time
	// (and reset their answers).
	UpdateSequence   int       `json:"update_sequence,omitempty"`
	ResetSequence    int       `json:"reset_sequence,omitempty"`
	OriginalSequence int       `json:"original_sequence"`
	OriginalDTStamp  time.Time `json:"original_dtstamp"`
	Created          time.Time `json:"created"`
	LastModified     time.Time `json:"last_modified"`
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	TZID             string    `json:"tzid,omitempty"`
	AllDay           bool      `json:"all_day,omitempty"`
	Summary          string    `json:"summary"`
	Description      string    `json:"description,omitempty"`
	Location         string    `json:"location,omitempty"`
	// Calendar is the pipeline's own full representation of the event
	// (components, time zones, overrides); the store does not read it.
	Calendar json.RawMessage `json:"calendar,omitempty"`
}

// CreateEvent stores a new event, its original-UID mapping and its index
// entries, and counts it for its organizer and the system. The organizer
// record is created on first use.
func (tx *Tx) CreateEvent(e *Event) error {
	if tx.exists(bEvents, []byte(e.UID)) {
		return fmt.Errorf("event %s: %w", e.UID, ErrExists)
	}
	if e.OriginalUID != "" {
		if tx.exists(bOrigUID, []byte(e.OriginalUID)) {
			return fmt.Errorf("original uid %q: %w", e.OriginalUID, ErrExists)
		}
		if err := tx.tx.Bucket(bOrigUID).Put([]byte(e.OriginalUID), []byte(e.UID)); err != nil {
			return err
		}
	}
	if err := tx.put(bEvents, []byte(e.UID), e); err != nil {
		return err
	}
	created := timeKey(e.Created)
	orgKey := append(append(join(e.OrganizerEmail, ""), created...), e.UID...)
	if err := tx.tx.Bucket(bOrgIndex).Put(orgKey, nil); err != nil {
		return err
	}
	if err := tx.tx.Bucket(bSysIndex).Put(append(created, e.UID...), nil); err != nil {
		return err
	}
	if _, err := tx.ensureOrganizer(e.OrganizerEmail, e.OrganizerName, e.Created); err != nil {
		return err
	}
	if err := tx.putCounters(bEventStats, []byte(e.UID), Counters{}); err != nil {
		return err
	}
	return tx.Count(e.UID, e.OrganizerEmail, Counters{Events: 1})
}

// PutEvent replaces an existing event. UID, organizer and creation time
// must not change: the indexes depend on them.
func (tx *Tx) PutEvent(e *Event) error {
	old, err := tx.Event(e.UID)
	if err != nil {
		return err
	}
	if old.OrganizerEmail != e.OrganizerEmail || !old.Created.Equal(e.Created) || old.OriginalUID != e.OriginalUID {
		return fmt.Errorf("store: event %s: organizer, creation time and original uid are fixed", e.UID)
	}
	return tx.put(bEvents, []byte(e.UID), e)
}

// Event reads event uid.
func (tx *Tx) Event(uid string) (*Event, error) {
	var e Event
	if err := tx.get(bEvents, []byte(uid), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// EventShared reads event uid like Event, but decodes it only when its
// stored bytes changed since the last call: a fan-out reads the same event
// once per attendee. The nested slices and maps of the result are shared
// with other callers: read them, never change them.
func (tx *Tx) EventShared(uid string) (*Event, error) {
	data := tx.tx.Bucket(bEvents).Get([]byte(uid))
	if data == nil {
		return nil, ErrNotFound
	}
	hit, ok := tx.db.events.Get(uid)
	if ok && bytes.Equal(hit.data, data) {
		e := *hit.ev
		return &e, nil
	}
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("store: decode %s/%q: %w", bEvents, uid, err)
	}
	if 2*len(data) <= maxSharedBytes/16 { // one huge event is not worth a sixteenth of the cache
		// The key is copied: a caller's uid may be a slice of something
		// much larger.
		tx.db.events.Put(strings.Clone(uid), sharedEvent{data: bytes.Clone(data), ev: &e})
	}
	cp := e
	return &cp, nil
}

// sharedEvent is an event EventShared decoded, with what it decoded.
type sharedEvent struct {
	data []byte // the stored JSON it was decoded from
	ev   *Event
}

// maxSharedEvents and maxSharedBytes bound the events EventShared keeps;
// an event counts twice its stored size (the bytes and what they decode to).
const (
	maxSharedEvents = 256
	maxSharedBytes  = 8 << 20
)

// EventByOriginalUID reads the event registered for an organizer's UID.
func (tx *Tx) EventByOriginalUID(orig string) (*Event, error) {
	uid := tx.tx.Bucket(bOrigUID).Get([]byte(orig))
	if uid == nil {
		return nil, ErrNotFound
	}
	return tx.Event(string(uid))
}

// OrganizerEvents lists organizer's events newest first: up to limit
// after cursor ("" for the first page). next is "" on the last page.
func (tx *Tx) OrganizerEvents(organizer, cursor string, limit int) (events []*Event, next string, err error) {
	prefix := join(organizer, "")
	return tx.listIndex(bOrgIndex, prefix, cursor, limit)
}

// SystemEvents lists every event newest first, paginated like
// OrganizerEvents.
func (tx *Tx) SystemEvents(cursor string, limit int) (events []*Event, next string, err error) {
	return tx.listIndex(bSysIndex, nil, cursor, limit)
}

// listIndex walks an index backwards from cursor (exclusive) or from the
// end of prefix. Index keys end with created(8 bytes) uid.
func (tx *Tx) listIndex(bucket, prefix []byte, cursor string, limit int) ([]*Event, string, error) {
	if limit <= 0 {
		return nil, "", nil
	}
	c := tx.tx.Bucket(bucket).Cursor()
	var k []byte
	if cursor != "" {
		start, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !bytes.HasPrefix(start, prefix) || len(start) < len(prefix)+8 {
			return nil, "", ErrBadCursor
		}
		k, _ = c.Seek(start)
		if k == nil {
			k, _ = c.Last()
		}
		for k != nil && bytes.Compare(k, start) >= 0 {
			k, _ = c.Prev()
		}
	} else {
		// Seek past the prefix, then step back onto its last key.
		end := append(append([]byte(nil), prefix...), bytes.Repeat([]byte{0xff}, 9)...)
		k, _ = c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
	}
	var out []*Event
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(out) == limit {
			return out, base64.RawURLEncoding.EncodeToString(keyOf(out, prefix)), nil
		}
		uid := string(k[len(prefix)+8:])
		e, err := tx.Event(uid)
		if err != nil {
			return nil, "", fmt.Errorf("store: index entry %q: %w", uid, err)
		}
		out = append(out, e)
	}
	return out, "", nil
}

// keyOf rebuilds the index key of the last event in out.
func keyOf(out []*Event, prefix []byte) []byte {
	e := out[len(out)-1]
	k := append(append([]byte(nil), prefix...), timeKey(e.Created)...)
	return append(k, e.UID...)
}
