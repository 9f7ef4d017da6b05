package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// bulkJob is a CSV of invites mailed to bulk@, worked through in batches:
// Next is the first row not done yet. The rows themselves are read again
// from the stored message for each batch, so the job stays small.
type bulkJob struct {
	From     itip.Address `json:"from"`
	Subject  string       `json:"subject,omitempty"`
	Part     int          `json:"part"` // index among the message's CSV attachments
	Filename string       `json:"filename,omitempty"`
	// Believed is set by verify when the sender is a known organizer (under
	// the aligned policy): only then is the report mailed back.
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

// csvRow is one data row of a bulk CSV.
type csvRow struct {
	Line             int
	UID, Email, Name string
}

// isCSV reports whether an attachment is a CSV file.
func isCSV(a itip.Attachment) bool {
	switch a.ContentType {
	case "text/csv", "application/csv", "text/comma-separated-values", "application/vnd.ms-excel":
		return true
	}
	return strings.HasSuffix(strings.ToLower(a.Filename), ".csv")
}

// readBulkCSV reads uid,email,name rows: a header line is optional (and
// may order the columns), UTF-8 with or without a BOM, CRLF or LF, quoted
// fields. A file that is not UTF-8 text, or has more than maxRows rows, is
// refused whole.
func readBulkCSV(data []byte, maxRows int) ([]csvRow, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}), bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		return nil, errors.New("the file is UTF-16 text; save it as \"CSV UTF-8\"")
	case bytes.IndexByte(data, 0) >= 0:
		return nil, errors.New("the file is not text (it holds NUL bytes); send a CSV file")
	case !utf8.Valid(data):
		return nil, errors.New("the file is not UTF-8 text; save it as \"CSV UTF-8\"")
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	cols := map[string]int{"uid": 0, "email": 1, "name": 2}
	var rows []csvRow
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the file is not valid CSV: %v", err)
		}
		if first && isHeader(rec) {
			cols = map[string]int{}
			for i, h := range rec {
				cols[strings.ToLower(strings.TrimSpace(h))] = i
			}
			if _, ok := cols["email"]; !ok {
				return nil, errors.New("the header has no email column")
			}
			if _, ok := cols["uid"]; !ok {
				return nil, errors.New("the header has no uid column")
			}
			continue
		}
		if len(rows) == maxRows {
			return nil, fmt.Errorf("the file has more than %d rows; split it into smaller files", maxRows)
		}
		line, _ := r.FieldPos(0)
		field := func(name string) string {
			if i, ok := cols[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		rows = append(rows, csvRow{Line: line, UID: field("uid"), Email: field("email"), Name: field("name")})
	}
}

func isHeader(rec []string) bool {
	for _, f := range rec {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(f, "\ufeff"))) {
		case "uid", "email":
			return true
		}
	}
	return false
}

// bulkRows reads the CSV of job b from its stored message.
func (p *Pipeline) bulkRows(message string, b *bulkJob) ([]csvRow, error) {
	var raw []byte
	if err := p.db.View(func(tx *store.Tx) (err error) { raw, err = tx.Raw(message); return err }); err != nil {
		return nil, err
	}
	msg, err := itip.ReadMessage(bytes.NewReader(raw), itip.Limits{})
	if err != nil && !errors.Is(err, itip.ErrNoCalendar) {
		return nil, reject("the message cannot be read: %v", err)
	}
	n := 0
	for _, a := range msg.Attachments {
		if !isCSV(a) {
			continue
		}
		if n == b.Part {
			b.Filename = a.Filename
			rows, err := readBulkCSV(a.Data, p.cfg.MaxBulkRows)
			if err != nil {
				return nil, reject("%s: %v", a.Filename, err)
			}
			return rows, nil
		}
		n++
	}
	return nil, reject("the message has no CSV attachment (uid,email,name)")
}

// verifyBulk checks who sent a bulk CSV and whether they may.
func (p *Pipeline) verifyBulk(j *store.Job, b *bulkJob) error {
	var org *store.Organizer
	err := p.db.View(func(tx *store.Tx) (err error) {
		org, err = tx.Organizer(strings.ToLower(b.From.Email))
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	known := org != nil
	b.Believed = known && p.cfg.AuthPolicy == PolicyAligned
	rows, err := p.bulkRows(j.Message, b)
	switch {
	case err != nil:
	case !known:
		err = reject("%s has registered no events, so cannot send bulk invites", b.From.Email)
	case org.Suspended:
		err = reject("organizer %s is suspended%s", org.Email, reasonSuffix(org.SuspendedReason))
	case !org.BulkAuthorized:
		err = reject("%s is not authorized to send bulk invites; ask the administrator", org.Email)
	case len(rows) == 0:
		err = reject("%s has no rows", b.Filename)
	}
	if err != nil {
		return p.bulkReport(j, b, err)
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
func (p *Pipeline) createBulk(ctx context.Context, j *store.Job) (func(*store.Tx) error, error) {
	b, err := decode[bulkJob](j)
	if err != nil {
		return nil, err
	}
	rows, err := p.bulkRows(j.Message, b)
	if err != nil {
		return nil, err
	}
	end := min(b.Next+p.cfg.FanoutBatch, len(rows))
	batch := rows[b.Next:end]
	return func(tx *store.Tx) error {
		next := *b
		next.Rows = append([]templates.BulkRow(nil), b.Rows...)
		sender := strings.ToLower(b.From.Email)
		for _, row := range batch {
			if reason := p.bulkInvite(tx, j, sender, row, &next); reason != "" {
				next.Rejected++
				if len(next.Rows) < maxListed {
					next.Rows = append(next.Rows, templates.BulkRow{Line: row.Line, Email: row.Email, Name: row.Name, Reason: reason})
				} else {
					next.Truncated++
				}
				continue
			}
			next.Queued++
		}
		next.Next = end
		if end < len(rows) {
			return p.enqueue(tx, StageCreate, kindBulk, j.Message, next)
		}
		if next.Believed {
			if err := p.sendBulkReport(tx, j, &next); err != nil {
				return err
			}
		}
		return p.processed(tx, j, "bulk invites from %s: %d rows, %d queued, %d rejected", b.Filename, next.Total, next.Queued, next.Rejected)
	}, nil
}

// bulkInvite invites one row, or returns why not.
func (p *Pipeline) bulkInvite(tx *store.Tx, j *store.Job, sender string, row csvRow, b *bulkJob) string {
	email, err := NormalizeEmail(row.Email)
	if err != nil {
		return "not an e-mail address"
	}
	if row.UID == "" {
		return "no event uid"
	}
	e, err := tx.Event(row.UID)
	if err != nil {
		return "unknown event " + truncate(row.UID, 60)
	}
	if b.UID == "" {
		b.UID, b.Summary = e.UID, e.Summary
	}
	if e.OrganizerEmail != sender {
		return "event " + e.UID + " is not yours"
	}
	if e.Status == store.StatusCancelled {
		return "event " + e.UID + " is cancelled"
	}
	now := p.cfg.Now()
	if err := p.mayInvite(tx, e, email, now); err != nil {
		var rej *Rejection
		if errors.As(err, &rej) {
			return rej.Reason
		}
		return err.Error()
	}
	if err := p.addInvitee(tx, j, e, email, cleanName(row.Name), store.OriginBulk, now); err != nil {
		return "not queued: " + err.Error()
	}
	return ""
}
