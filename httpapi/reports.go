package httpapi

import (
	"net/http"
	"strings"

	"github.com/invited/invited/store"
)

// countsJSON are organizer or system statistics.
type countsJSON struct {
	Organizer     string `json:"organizer,omitempty"`
	Organizers    int64  `json:"organizers,omitempty"`
	Events        int64  `json:"events"`
	Invites       int64  `json:"invites"`
	InvitesSent   int64  `json:"invites_sent"`
	AttendeeCount int64  `json:"attendee_count"`
	Confirmed     int64  `json:"rsvp_confirmed"`
	Declined      int64  `json:"rsvp_declined"`
	Tentative     int64  `json:"rsvp_tentative"`
	Pending       int64  `json:"rsvp_pending"`
	Delegated     int64  `json:"rsvp_delegated"`
}

func toCountsJSON(c store.Counters) countsJSON {
	return countsJSON{
		Organizers: c.Organizers, Events: c.Events, Invites: c.Invited, InvitesSent: c.InvitesSent,
		AttendeeCount: c.Attendees, Confirmed: c.Accepted, Declined: c.Declined, Tentative: c.Tentative,
		Pending: c.Pending, Delegated: c.Delegated,
	}
}

func (h *Handler) organizerStats(w http.ResponseWriter, r *http.Request) {
	org := strings.ToLower(r.PathValue("organizer"))
	var c store.Counters
	err := h.db.View(func(tx *store.Tx) (err error) {
		c, err = tx.OrganizerStats(org)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	j := toCountsJSON(c)
	j.Organizer = org
	writeJSON(w, http.StatusOK, j)
}

func (h *Handler) systemStats(w http.ResponseWriter, r *http.Request) {
	var c store.Counters
	err := h.db.View(func(tx *store.Tx) (err error) {
		c, err = tx.SystemStats()
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toCountsJSON(c))
}

func (h *Handler) systemEvents(w http.ResponseWriter, r *http.Request) {
	h.listEvents(w, r, (*store.Tx).SystemEvents)
}

func eventsJSON(evs []*store.Event) []eventJSON {
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = toEventJSON(e)
	}
	return out
}

// reportCSV streams the attendee report: email,name,status,origin,prodid.
func (h *Handler) reportCSV(w http.ResponseWriter, r *http.Request, e *store.Event) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="attendees-`+e.UID+`.csv"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := h.db.View(func(tx *store.Tx) error { return tx.WriteAttendeeCSV(w, e.UID) }); err != nil {
		h.log.Error("attendee report", "uid", e.UID, "err", err)
	}
}

// report mails the attendee report to the organizer.
func (h *Handler) report(w http.ResponseWriter, r *http.Request, e *store.Event) {
	if err := h.pl.Report(r.Context(), e.UID); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "uid": e.UID, "to": e.OrganizerEmail})
}
