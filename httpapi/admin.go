package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/invited/invited/store"
)

// message shows an inbound message's envelope and what became of it: the
// id is the one in the SMTP answer "250 OK: queued as ID".
func (h *Handler) message(w http.ResponseWriter, r *http.Request) {
	var m *store.Message
	err := h.db.View(func(tx *store.Tx) (err error) {
		m, err = tx.Message(r.PathValue("id"))
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// deadLetters lists jobs that failed every attempt, oldest first:
// ?limit=&cursor= where cursor is the last id of the previous page.
func (h *Handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit, ok := h.limit(w, r)
	if !ok {
		return
	}
	var after uint64
	if c := r.URL.Query().Get("cursor"); c != "" {
		var err error
		if after, err = strconv.ParseUint(c, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "bad cursor")
			return
		}
	}
	var jobs []store.Job
	err := h.db.View(func(tx *store.Tx) (err error) {
		jobs, err = tx.DeadLetters(after, limit+1)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	next := ""
	if len(jobs) > limit {
		jobs = jobs[:limit]
		next = strconv.FormatUint(jobs[limit-1].ID, 10)
	}
	if jobs == nil {
		jobs = []store.Job{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": jobs, "next": next})
}

func (h *Handler) deadLetter(w http.ResponseWriter, r *http.Request) {
	id, ok := jobID(w, r)
	if !ok {
		return
	}
	var j *store.Job
	err := h.db.View(func(tx *store.Tx) (err error) {
		j, err = tx.DeadLetter(id)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// retryDeadLetter puts a dead letter back in its stage's queue, with its
// attempts reset.
func (h *Handler) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, ok := jobID(w, r)
	if !ok {
		return
	}
	var j *store.Job
	err := h.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		j, err = tx.Resurrect(id, time.Now())
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func jobID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad id")
		return 0, false
	}
	return id, true
}
