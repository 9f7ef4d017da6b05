package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// A command's calendar goes from parse to verify to create. Usually each
// stage runs straight after the one before, in memory (Pipeline.ahead),
// and the job passed on keeps the decoded command, calendar and all
// (commandJobOf). A job that is queued instead must not write its calendar
// into its payload: that would write it to disk twice more and delete it
// twice (most of what those commits write). Its payload names the
// calendar (the message and which of its calendars), and the calendar is
// left here, encoded, for the stage that runs the job (encodeCommand). The
// raw message stays on disk until the command is done, so a calendar not
// here (after a restart, or evicted) is read again from it: the hand-off
// (Pipeline.handoff) is only a cache.
type calKey struct {
	message string
	part    int
}

// maxHandoffBytes bounds the calendars held; past it the oldest go.
const maxHandoffBytes = 16 << 20

// command decodes a command job of verify or create and finds its
// calendar: kept in memory by the stage before (run straight after it), in
// the job itself (jobs queued before the hand-off existed), handed off
// when the job was queued, or read again from the message.
func (p *Pipeline) command(ctx context.Context, j *store.Job) (*commandJob, error) {
	if c, ok := j.Carry.(*commandJob); ok {
		cp := *c // the stage may change its copy; the calendar is only read
		return &cp, nil
	}
	c, err := decode[commandJob](j)
	if err != nil || c.Calendar != nil {
		return c, err
	}
	k := calKey{j.Message, c.Part}
	b, ok := p.handoff.Get(k)
	if !ok {
		if b, err = p.rereadCalendar(ctx, k); err != nil {
			return nil, err
		}
		if calendarSum(b) != c.Sum {
			return nil, reject("calendar %d of message %s reads differently than when it was checked; send it again", c.Part, j.Message)
		}
		p.handoff.Put(k, b) // for the stage after
	}
	if err := json.Unmarshal(b, &c.Calendar); err != nil || c.Calendar == nil {
		return nil, reject("unreadable calendar %d of message %s: %v", c.Part, j.Message, err)
	}
	return c, nil
}

// encodeCommand gives j, a job made by commandJobOf that is about to be
// queued, its payload: the command without its calendar, which goes to
// the hand-off, and the calendar's checksum. Other jobs are left as they
// are. Only queued jobs pay for this: the JSON gives back the calendar
// kept in memory (FuzzParseCalendar checks it), so a job judges the same
// whichever way its calendar reached it.
func (p *Pipeline) encodeCommand(j *store.Job) error {
	c, ok := j.Carry.(*commandJob)
	if !ok || j.Payload != nil {
		return nil
	}
	b, err := json.Marshal(c.Calendar)
	if err != nil {
		return fmt.Errorf("pipeline: encode calendar: %w", err)
	}
	cp := *c
	cp.Calendar, cp.Sum = nil, calendarSum(b)
	if j.Payload, err = json.Marshal(&cp); err != nil {
		return fmt.Errorf("pipeline: encode %s job: %w", j.Kind, err)
	}
	p.handoff.Put(calKey{j.Message, c.Part}, b)
	return nil
}

// calendarSum identifies an encoded calendar.
func calendarSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// rereadCalendar reads calendar k.part of message k.message again, as
// parse did, with the memory that takes (see readRaw).
func (p *Pipeline) rereadCalendar(ctx context.Context, k calKey) ([]byte, error) {
	_, raw, held, err := p.readRaw(ctx, k.message)
	defer p.cfg.Memory.Release(held)
	if errors.Is(err, store.ErrNotFound) {
		return nil, reject("message %s is gone", k.message)
	} else if err != nil {
		return nil, err
	}
	msg, err := itip.ReadMessage(bytes.NewReader(raw), p.cfg.MIME)
	if err != nil {
		return nil, reject("message %s no longer reads: %v", k.message, err)
	}
	if k.part < 0 || k.part >= len(msg.Calendars) {
		return nil, reject("message %s has no calendar %d", k.message, k.part)
	}
	b, err := json.Marshal(msg.Calendars[k.part])
	if err != nil {
		return nil, fmt.Errorf("pipeline: encode calendar: %w", err)
	}
	return b, nil
}
