package pipeline

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/invited/invited/internal/invitecsv"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// bulkJob is a CSV of invites mailed to bulk@, worked through in batches:
// Next is the first row not done yet. The rows themselves are read again
// from the stored message for each batch, so the job stays small.
type bulkJob struct {
	From     itip.Address       `json:"from"`
	Subject  string             `json:"subject,omitempty"`
	Part     int                `json:"part"` // index among the message's CSV attachments
	Filename string             `json:"filename,omitempty"`
	Auth     senderauth.Verdict `json:"auth"`
	// Believed is set by verify when the sender is a known organizer and
	// proven: only then is the report mailed back.
	Believed bool `json:"believed,omitempty"`

	Next      int                 `json:"next"`
	Total     int                 `json:"total"`
	Queued    int                 `json:"queued"`
	Rejected  int                 `json:"rejected"`
	Rows      []templates.BulkRow `json:"rows,omitempty"` // rejected rows, at most maxListed
	Truncated int                 `json:"truncated,omitempty"`
	UID       string              `json:"uid,omitempty"` // first event named
	Summary   string              `json:"summary,omitempty"`
}

// maxListed bounds the rejected rows a bulk report lists.
const maxListed = 500

// The rows of the CSV files being worked are kept (Pipeline.bulk), so that
// each batch of a file does not read its message and parse the whole file
// again. It is only a cache: a file not there (after a restart, or
// evicted) is read again from the stored message.
type bulkFile struct {
	filename string
	rows     []invitecsv.Row
}

// maxBulkCachedRows bounds the rows kept; past it the oldest files go.
const maxBulkCachedRows = 200000

// bulkRows reads the CSV of job b: kept from an earlier batch, or from its
// stored message.
func (p *Pipeline) bulkRows(ctx context.Context, message string, b *bulkJob) ([]invitecsv.Row, error) {
	k := calKey{message, b.Part}
	if f, ok := p.bulk.Get(k); ok {
		b.Filename = f.filename
		return f.rows, nil
	}
	_, raw, held, err := p.readRaw(ctx, message)
	defer p.cfg.Memory.Release(held)
	if err != nil {
		return nil, err
	}
	msg, err := itip.ReadMessage(bytes.NewReader(raw), p.cfg.MIME)
	if err != nil && !errors.Is(err, itip.ErrNoCalendar) {
		return nil, reject("the message cannot be read: %v", err)
	}
	if b.Part < 0 || b.Part >= len(msg.Attachments) { // itip keeps only CSV attachments
		return nil, reject("the message has no CSV attachment (uid,email,name)")
	}
	a := msg.Attachments[b.Part]
	b.Filename = a.Filename
	rows, err := invitecsv.Read(a.Data, p.cfg.MaxBulkRows, true)
	if err != nil {
		return nil, reject("%s: %v", a.Filename, err)
	}
	p.bulk.Put(k, bulkFile{filename: a.Filename, rows: rows})
	return rows, nil
}

// verifyBulk checks who sent a bulk CSV and whether they may.
func (p *Pipeline) verifyBulk(ctx context.Context, j *store.Job, b *bulkJob) error {
	var org *store.Organizer
	err := p.db.View(func(tx *store.Tx) (err error) {
		org, err = tx.Organizer(strings.ToLower(b.From.Email))
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	known := org != nil
	b.Believed = known && b.Auth.Authenticated
	// The file is read only for a sender who may send one.
	var rows []invitecsv.Row
	switch {
	case !b.Auth.Pass:
		err = reject("the sender is not authenticated: %s", b.Auth.Reason)
	case !known:
		err = reject("%s has registered no events, so cannot send bulk invites", b.From.Email)
	case org.Suspended:
		err = reject("organizer %s is suspended%s", org.Email, reasonSuffix(org.SuspendedReason))
	case !org.BulkAuthorized:
		err = reject("%s is not authorized to send bulk invites; ask the administrator", org.Email)
	default:
		if rows, err = p.bulkRows(ctx, j.Message, b); err == nil && len(rows) == 0 {
			err = reject("%s has no rows", b.Filename)
		}
	}
	if err != nil {
		return p.bulkReport(j, b, err) // its rejection or burial forgets the rows
	}
	b.Total = len(rows)
	return nil
}

// bulkReport adds the bulk report to a rejection of a whole file, when
// the sender is believed.
func (p *Pipeline) bulkReport(j *store.Job, b *bulkJob, err error) error {
	var rej *Rejection
	if !errors.As(err, &rej) || !b.Believed {
		return err
	}
	b.Rows = []templates.BulkRow{{Reason: rej.Reason}}
	rej.apply = func(tx *store.Tx) error { return p.sendBulkReport(tx, j, b) }
	return rej
}

func (p *Pipeline) sendBulkReport(tx *store.Tx, j *store.Job, b *bulkJob) error {
	data := templates.BulkReport{
		Organizer: b.From.Name, Mailto: b.From.Email, Filename: b.Filename, UID: b.UID, Summary: b.Summary,
		Total: b.Total, Queued: b.Queued, Rejected: b.Rejected, Rows: b.Rows, Truncated: b.Truncated,
	}
	return p.notify(tx, j.Message, itip.Address{Email: strings.ToLower(b.From.Email), Name: b.From.Name}, noticeBulk, data, "")
}

// createBulk invites the rows of one batch, each under the same rules as
// any invite plus: the event is the sender's own. It queues the next
// batch, or the report after the last one.
func (p *Pipeline) createBulk(ctx context.Context, j *store.Job) (outcome, error) {
	b, err := decode[bulkJob](j)
	if err != nil {
		return outcome{}, err
	}
	rows, err := p.bulkRows(ctx, j.Message, b)
	if err != nil {
		return outcome{}, err
	}
	end := min(b.Next+p.cfg.FanoutBatch, len(rows))
	batch := rows[b.Next:end]
	more := end < len(rows)
	return outcome{more: more, apply: func(tx *store.Tx) error {
		next := *b
		next.Rows = append([]templates.BulkRow(nil), b.Rows...)
		sender := strings.ToLower(b.From.Email)
		// Authorization is checked again for every batch: an admin may
		// withdraw it, or suspend the organizer, while a file is worked.
		org, err := tx.OrganizerOrNew(sender, p.cfg.Now())
		if err != nil {
			return err
		}
		stop := ""
		switch {
		case org.Suspended:
			stop = "organizer " + sender + " was suspended"
		case !org.BulkAuthorized:
			stop = sender + " is no longer authorized to send bulk invites"
		}
		for _, row := range batch {
			reason := stop
			if reason == "" {
				if reason, err = p.bulkInvite(tx, j, org, row, &next); err != nil {
					return err
				}
			}
			if reason == "" {
				next.Queued++
				continue
			}
			next.Rejected++
			if len(next.Rows) < maxListed {
				next.Rows = append(next.Rows, templates.BulkRow{Line: row.Line, Email: itip.Truncate(row.Email, 120),
					Name: itip.Truncate(row.Name, 120), Reason: reason})
			} else {
				next.Truncated++
			}
		}
		next.Next = end
		if more {
			return p.enqueue(tx, StageCreate, kindBulk, j.Message, next)
		}
		// The last batch: the file's rows are no longer needed.
		tx.OnCommit(func() { p.bulk.Delete(calKey{j.Message, b.Part}) })
		if next.Believed {
			if err := p.sendBulkReport(tx, j, &next); err != nil {
				return err
			}
		}
		return p.processed(tx, j, "bulk invites from %s: %d rows, %d queued, %d rejected", b.Filename, next.Total, next.Queued, next.Rejected)
	}}, nil
}

// bulkInvite invites one row, or returns why not. An error is a store
// failure: the whole batch is tried again.
func (p *Pipeline) bulkInvite(tx *store.Tx, j *store.Job, org *store.Organizer, row invitecsv.Row, b *bulkJob) (string, error) {
	email, err := NormalizeEmail(row.Email)
	if err != nil {
		return "not an e-mail address", nil
	}
	if row.UID == "" {
		return "no event uid", nil
	}
	e, err := tx.Event(row.UID)
	if errors.Is(err, store.ErrNotFound) {
		return "unknown event " + itip.Truncate(row.UID, 60), nil
	} else if err != nil {
		return "", err
	}
	if e.OrganizerEmail != org.Email {
		return "event " + itip.Truncate(row.UID, 60) + " is not yours", nil
	}
	if e.Status == store.StatusCancelled {
		return "event " + e.UID + " is cancelled", nil
	}
	if b.UID == "" {
		b.UID, b.Summary = e.UID, e.Summary
	}
	invited, err := invitedSoFar(tx, e.UID) // counted row by row below
	if err != nil {
		return "", err
	}
	old, err := p.mayInvite(tx, e, org, invited, email)
	if err != nil {
		var rej *Rejection
		if errors.As(err, &rej) {
			return rej.Reason, nil
		}
		return "", err
	}
	return "", p.addInvitee(tx, j, e, old, email, cleanName(row.Name), store.OriginBulk, p.cfg.Now())
}
