package pipeline

import (
	"context"
	"time"

	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/store"
)

// A stage reads a large message only with memory from its budget
// (Config.Memory). It waits for it at most
// memoryWait, then puts its job off by memoryRetry and takes another: a
// worker never sits on a large message while small ones queue behind it.
const (
	memoryWait  = 100 * time.Millisecond
	memoryRetry = 250 * time.Millisecond
)

// readWeight is what reading a message of size bytes takes from the
// memory budget: the message, and about as much again twice over while
// its MIME parts are decoded and its calendars parsed. A message under
// membudget.Small takes nothing.
func readWeight(size int) int64 {
	if size <= membudget.Small {
		return 0
	}
	return 3 * int64(size)
}

// takeMemory takes what reading a message of size bytes needs, or returns
// a deferral. The caller gives back what it took.
func (p *Pipeline) takeMemory(ctx context.Context, size int) (int64, error) {
	w := readWeight(size)
	if w == 0 || p.cfg.Memory == nil {
		return 0, nil
	}
	wctx, cancel := context.WithTimeout(ctx, memoryWait)
	defer cancel()
	held, err := p.cfg.Memory.Acquire(wctx, w)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &deferral{wait: memoryRetry, why: "waiting for memory to read a large message"}
	}
	return held, nil
}

// memoryHeldFor is the context key of the message whose memory the job
// that runs stages ahead holds already.
type memoryHeldFor struct{}

// readRaw reads message id and its raw bytes, those of a large message
// once takeMemory has taken what reading it needs (unless ctx says it is
// held already). The caller gives back what it took (held), also when err
// is not nil.
func (p *Pipeline) readRaw(ctx context.Context, id string) (m *store.Message, raw []byte, held int64, err error) {
	limited := p.cfg.Memory != nil && ctx.Value(memoryHeldFor{}) != id
	later := false
	err = p.db.View(func(tx *store.Tx) (err error) {
		if m, err = tx.Message(id); err != nil {
			return err
		}
		if later = limited && readWeight(m.Size) > 0; later {
			return nil
		}
		raw, err = tx.Raw(id)
		return err
	})
	if err != nil || !later {
		return m, raw, 0, err
	}
	if held, err = p.takeMemory(ctx, m.Size); err != nil {
		return m, nil, held, err
	}
	err = p.db.View(func(tx *store.Tx) (err error) { raw, err = tx.Raw(id); return err })
	return m, raw, held, err
}
