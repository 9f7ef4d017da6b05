package store

import (
	"errors"
	"time"
)

// Organizer is someone who registers events, and what admins decided
// about them.
type Organizer struct {
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`

	Suspended       bool      `json:"suspended,omitempty"`
	SuspendedReason string    `json:"suspended_reason,omitempty"`
	SuspendedAt     time.Time `json:"suspended_at,omitzero"`
	// EventLimit and InviteLimit override the configured defaults when
	// set; a negative value means no limit.
	EventLimit     *int `json:"event_limit,omitempty"`
	InviteLimit    *int `json:"invite_limit,omitempty"`
	BulkAuthorized bool `json:"bulk_authorized,omitempty"`
	// LandingHosts are the hosts the public invite endpoint may redirect
	// to for this organizer's events (besides the configured ones).
	LandingHosts []string `json:"landing_hosts,omitempty"`

	Subscriptions []Subscription `json:"subscriptions,omitempty"`
}

// Subscription is one paid enrollment (a Shopify order line).
type Subscription struct {
	OrderNumber string    `json:"order_number"`
	ProductID   string    `json:"product_id"`
	Product     string    `json:"product"`
	Email       string    `json:"purchase_email,omitempty"`
	Created     time.Time `json:"created"`
	// Expires is zero for a subscription that does not end.
	Expires time.Time `json:"expires,omitzero"`
}

// Paid reports whether o has a subscription active at now.
func (o *Organizer) Paid(now time.Time) bool {
	for _, s := range o.Subscriptions {
		if s.Expires.IsZero() || s.Expires.After(now) {
			return true
		}
	}
	return false
}

// AddSubscription adds s unless a subscription for the same order and
// product is there already (a webhook retried). It reports whether it
// added one.
func (o *Organizer) AddSubscription(s Subscription) bool {
	for _, old := range o.Subscriptions {
		if old.OrderNumber == s.OrderNumber && old.ProductID == s.ProductID {
			return false
		}
	}
	o.Subscriptions = append(o.Subscriptions, s)
	return true
}

// Organizer reads the organizer email.
func (tx *Tx) Organizer(email string) (*Organizer, error) {
	var o Organizer
	if err := tx.get(bOrgs, []byte(email), &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// OrganizerOrNew reads the organizer email, or returns a new record (not
// stored) when there is none.
func (tx *Tx) OrganizerOrNew(email string, now time.Time) (*Organizer, error) {
	o, err := tx.Organizer(email)
	if errors.Is(err, ErrNotFound) {
		return &Organizer{Email: email, Created: now}, nil
	}
	return o, err
}

// PutOrganizer creates or replaces an organizer record.
func (tx *Tx) PutOrganizer(o *Organizer) error {
	if o.Email == "" {
		return errors.New("store: organizer needs an email")
	}
	if !tx.exists(bOrgs, []byte(o.Email)) {
		if err := tx.addCounters(bMeta, keySysStats, Counters{Organizers: 1}); err != nil {
			return err
		}
	}
	return tx.put(bOrgs, []byte(o.Email), o)
}

// ensureOrganizer creates the organizer record on first use.
func (tx *Tx) ensureOrganizer(email, name string, now time.Time) (*Organizer, error) {
	o, err := tx.Organizer(email)
	if err == nil {
		return o, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	o = &Organizer{Email: email, Name: name, Created: now}
	return o, tx.PutOrganizer(o)
}

// Organizers lists organizers in address order after the address after
// ("" for the first), up to limit.
func (tx *Tx) Organizers(after string, limit int) ([]*Organizer, error) {
	c := tx.tx.Bucket(bOrgs).Cursor()
	var out []*Organizer
	k, _ := c.Seek(append([]byte(after), 0))
	if after == "" {
		k, _ = c.First()
	}
	for ; k != nil && len(out) < limit; k, _ = c.Next() {
		o, err := tx.Organizer(string(k))
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Block is an attendee's refusal of an organizer's invites.
type Block struct {
	Attendee  string    `json:"attendee"`
	Organizer string    `json:"organizer"`
	Created   time.Time `json:"created"`
	Source    string    `json:"source"` // unsubscribe, admin, …
}

// PutBlock records that attendee blocks organizer.
func (tx *Tx) PutBlock(b *Block) error {
	return tx.put(bBlocks, join(b.Attendee, b.Organizer), b)
}

// Blocked reports whether attendee blocks organizer.
func (tx *Tx) Blocked(attendee, organizer string) bool {
	return tx.exists(bBlocks, join(attendee, organizer))
}
