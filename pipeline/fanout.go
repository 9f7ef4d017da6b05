package pipeline

import (
	"context"
	"errors"

	"github.com/invited/invited/store"
)

// fanout queues one send per attendee of an updated or cancelled event,
// FanoutBatch attendees per transaction, and re-queues itself with where
// it stopped until every attendee has one. An attendee's status is reset
// to needs-action in the same transaction when the time changed.
func (p *Pipeline) fanout(ctx context.Context, j *store.Job) (func(*store.Tx) error, error) {
	f, err := decode[fanoutJob](j)
	if err != nil {
		return nil, err
	}
	return func(tx *store.Tx) error {
		now := p.cfg.Now()
		e, err := tx.Event(f.UID)
		if errors.Is(err, store.ErrNotFound) {
			return reject("event %s is gone", f.UID)
		} else if err != nil {
			return err
		}
		n, last := 0, ""
		var reset store.Counters
		err = tx.Attendees(f.UID, f.After, func(a *store.Attendee) (bool, error) {
			if n == p.cfg.FanoutBatch {
				return false, nil
			}
			n++
			last = a.Email
			// Reset answers given before the change, not those that answer
			// it (from someone invited after it was applied, say).
			if f.Reset && a.Status != store.PartNeedsAction && f.Kind == kindUpdate && !a.LastDTStamp.After(f.ResetAt) {
				reset.Add(store.StatusChange(a.Status, store.PartNeedsAction))
				a.Status = store.PartNeedsAction
				a.LastDTStamp = f.ResetAt
				a.AddHistory(store.RSVP{Status: store.PartNeedsAction, DTStamp: f.ResetAt, Received: now, Message: j.Message})
				if err := tx.PutAttendee(a); err != nil {
					return false, err
				}
			}
			return true, p.enqueue(tx, StageSend, f.Kind, j.Message,
				sendJob{UID: f.UID, Email: a.Email, Kind: f.Kind, Sequence: f.Sequence, RecurrenceID: f.RecurrenceID})
		})
		if err != nil {
			return err
		}
		if err := tx.Count(f.UID, e.OrganizerEmail, reset); err != nil {
			return err
		}
		if n == p.cfg.FanoutBatch {
			next := *f
			next.After = last
			return p.enqueue(tx, StageStage, j.Kind, j.Message, next)
		}
		return nil
	}, nil
}
