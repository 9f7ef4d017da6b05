package store

import "time"

// Send states.
const (
	SendSent   = "sent"
	SendFailed = "failed" // the relay refused it for good
)

// SendRecord is one outbound message, keyed by its Message-ID.
type SendRecord struct {
	MessageID string    `json:"message_id"`
	UID       string    `json:"uid"`
	Email     string    `json:"email"`
	Kind      string    `json:"kind"`
	Sequence  int       `json:"sequence"`
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	Attempts  int       `json:"attempts"`
	Time      time.Time `json:"time"`
}

// PutSend records an outbound message (replacing an earlier record of the
// same Message-ID).
func (tx *Tx) PutSend(s *SendRecord) error {
	return tx.put(bSends, []byte(s.MessageID), s)
}

// Send reads the record of Message-ID id.
func (tx *Tx) Send(id string) (*SendRecord, error) {
	var s SendRecord
	if err := tx.get(bSends, []byte(id), &s); err != nil {
		return nil, err
	}
	return &s, nil
}
