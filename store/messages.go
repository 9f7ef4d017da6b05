package store

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Message states.
const (
	MessageQueued    = "queued"    // accepted, not yet parsed
	MessageProcessed = "processed" // every command in it took effect
	MessageRejected  = "rejected"  // nothing in it could be applied; Notes say why
)

// Message is an inbound message and its envelope. Its raw bytes are kept
// apart (see Raw).
type Message struct {
	ID       string   `json:"id"`
	Remote   string   `json:"remote"`
	HELO     string   `json:"helo"`
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
	TLS      bool     `json:"tls,omitempty"`
	// SPF is the SMTP-time SPF result for the connecting IP and MailFrom,
	// SPFDomain the domain checked.
	SPF       string    `json:"spf,omitempty"`
	SPFDomain string    `json:"spf_domain,omitempty"`
	Received  time.Time `json:"received"`
	// Auth is the pipeline's decision about who sent the message (its own
	// JSON: results of SPF, DKIM, DMARC, the policy, why).
	Auth   json.RawMessage `json:"auth,omitempty"`
	Size   int             `json:"size"`
	Status string          `json:"status"`
	Notes  []Note          `json:"notes,omitempty"`
}

// Note is one outcome recorded on a message by a pipeline stage.
type Note struct {
	Time   time.Time `json:"time"`
	Stage  string    `json:"stage"`
	Status string    `json:"status"`
	Text   string    `json:"text"`
}

// maxNotes bounds the outcomes kept per message.
const maxNotes = 50

// PutMessage stores a new inbound message and its raw bytes, assigning
// m.ID.
func (tx *Tx) PutMessage(m *Message, raw []byte) error {
	id, err := tx.NextID()
	if err != nil {
		return err
	}
	m.ID = strconv.FormatUint(id, 10)
	m.Size = len(raw)
	if m.Status == "" {
		m.Status = MessageQueued
	}
	if err := tx.put(bMessages, []byte(m.ID), m); err != nil {
		return err
	}
	return tx.tx.Bucket(bRaw).Put([]byte(m.ID), raw)
}

// Message reads the message id.
func (tx *Tx) Message(id string) (*Message, error) {
	if m, ok := tx.msgs[id]; ok { // changed in this update, not yet written
		cp := *m
		cp.RcptTo, cp.Notes, cp.Auth = slices.Clone(m.RcptTo), slices.Clone(m.Notes), slices.Clone(m.Auth)
		return &cp, nil
	}
	var m Message
	if err := tx.get(bMessages, []byte(id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Raw returns a copy of the raw bytes of message id.
func (tx *Tx) Raw(id string) ([]byte, error) {
	v := tx.tx.Bucket(bRaw).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

// SetMessageAuth records the sender decision on message id.
func (tx *Tx) SetMessageAuth(id string, auth json.RawMessage) error {
	return tx.changeMessage(id, func(m *Message) { m.Auth = auth })
}

// NoteMessage records an outcome on message id and sets its status. A
// message that is rejected keeps that status only while no later note
// says it was processed.
func (tx *Tx) NoteMessage(id string, n Note) error {
	return tx.changeMessage(id, func(m *Message) {
		if len(m.Notes) >= maxNotes {
			m.Notes = m.Notes[len(m.Notes)-maxNotes+1:]
		}
		m.Notes = append(m.Notes, n)
		if n.Status == MessageProcessed || m.Status == MessageQueued {
			m.Status = n.Status
		}
	})
}

// changeMessage reads message id, changes it and writes it back.
func (tx *Tx) changeMessage(id string, change func(*Message)) error {
	if !tx.writable {
		return ErrReadOnly
	}
	m, ok := tx.msgs[id]
	if !ok {
		var err error
		if m, err = tx.Message(id); err != nil {
			return err
		}
		if tx.msgs == nil {
			tx.msgs = make(map[string]*Message, 1)
		}
		tx.msgs[id] = m
	}
	change(m)
	return nil
}

// flushMessages writes the messages changed in this update. A message is
// often changed twice in one (parse records its sender, create notes the
// outcome, run ahead in the same update): it is decoded and encoded once.
func (tx *Tx) flushMessages() error {
	for id, m := range tx.msgs {
		if err := tx.put(bMessages, []byte(id), m); err != nil {
			return err
		}
	}
	tx.msgs = nil
	return nil
}
