package httpapi

import (
	"html"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/invited/invited/store"
)

// eventJSON is an event as the Calendar Invite Server's dashboard reads
// it. Times are Unix seconds.
type eventJSON struct {
	UID             string `json:"uid"`
	OriginalUID     string `json:"original_uid"`
	Mailto          string `json:"mailto"`
	Organizer       string `json:"organizer"`
	Status          string `json:"status"`
	Sequence        int    `json:"sequence"`
	Created         int64  `json:"created"`
	LastModified    int64  `json:"last_modified"`
	DTStart         int64  `json:"dtstart"`
	DTEnd           int64  `json:"dtend"`
	TZID            string `json:"tzid,omitempty"`
	AllDay          bool   `json:"all_day,omitempty"`
	Summary         string `json:"summary"`
	SummaryHTML     string `json:"summary_html"`
	DescriptionHTML string `json:"description_html"`
	LocationHTML    string `json:"location_html"`
}

func toEventJSON(e *store.Event) eventJSON {
	return eventJSON{
		UID: e.UID, OriginalUID: e.OriginalUID, Mailto: e.OrganizerEmail, Organizer: e.OrganizerName,
		Status: e.Status, Sequence: e.Sequence, Created: e.Created.Unix(), LastModified: e.LastModified.Unix(),
		DTStart: e.Start.Unix(), DTEnd: e.End.Unix(), TZID: e.TZID, AllDay: e.AllDay,
		Summary: e.Summary, SummaryHTML: html.EscapeString(e.Summary),
		DescriptionHTML: html.EscapeString(e.Description), LocationHTML: html.EscapeString(e.Location),
	}
}

func (h *Handler) event(w http.ResponseWriter, r *http.Request, e *store.Event) {
	writeJSON(w, http.StatusOK, toEventJSON(e))
}

// statsJSON are an event's statistics.
type statsJSON struct {
	EventID       string `json:"event_id"`
	AttendeeCount int64  `json:"attendee_count"`
	InvitesSent   int64  `json:"invites_sent"`
	Confirmed     int64  `json:"rsvp_confirmed"`
	Declined      int64  `json:"rsvp_declined"`
	Tentative     int64  `json:"rsvp_tentative"`
	Pending       int64  `json:"rsvp_pending"`
	Delegated     int64  `json:"rsvp_delegated"`
	UpdatesSent   int64  `json:"updates_sent"`
	CancelsSent   int64  `json:"cancels_sent"`
	SendFailed    int64  `json:"send_failed"`
}

func (h *Handler) eventStats(w http.ResponseWriter, r *http.Request, e *store.Event) {
	uid := e.UID
	var c store.Counters
	err := h.db.View(func(tx *store.Tx) (err error) {
		c, err = tx.EventStats(uid)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statsJSON{
		EventID: uid, AttendeeCount: c.Attendees, InvitesSent: c.InvitesSent,
		Confirmed: c.Accepted, Declined: c.Declined, Tentative: c.Tentative, Pending: c.Pending,
		Delegated: c.Delegated, UpdatesSent: c.UpdatesSent, CancelsSent: c.CancelsSent, SendFailed: c.SendFailed,
	})
}

// attendeeJSON is an attendee with address and name masked.
type attendeeJSON struct {
	Email   string `json:"email"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Origin  string `json:"origin"`
	ProdID  string `json:"prodid,omitempty"`
	Created int64  `json:"created"`
	Replied int64  `json:"replied,omitempty"`
}

func (h *Handler) attendees(w http.ResponseWriter, r *http.Request, e *store.Event) {
	uid := e.UID
	limit, ok := h.limit(w, r)
	if !ok {
		return
	}
	out := []attendeeJSON{}
	last, next := "", ""
	err := h.db.View(func(tx *store.Tx) error {
		after := ""
		if c := r.URL.Query().Get("cursor"); c != "" {
			var ok bool
			if after, ok = h.openCursor(c); !ok {
				return store.ErrBadCursor
			}
		}
		return tx.Attendees(uid, after, func(a *store.Attendee) (bool, error) {
			if len(out) == limit {
				next = h.sealCursor(last) // there is more after the last one listed
				return false, nil
			}
			j := attendeeJSON{Email: MaskEmail(a.Email), Name: MaskName(a.Name), Status: a.Status, Origin: a.Origin,
				ProdID: a.ProdID, Created: a.Created.Unix()}
			if !a.LastDTStamp.IsZero() {
				j.Replied = a.LastDTStamp.Unix()
			}
			out = append(out, j)
			last = a.Email
			return true, nil
		})
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"attendees": out, "next": next})
}

func (h *Handler) organizerEvents(w http.ResponseWriter, r *http.Request) {
	org := strings.ToLower(r.PathValue("organizer"))
	h.listEvents(w, r, func(tx *store.Tx, cursor string, limit int) ([]*store.Event, string, error) {
		return tx.OrganizerEvents(org, cursor, limit)
	})
}

// listEvents answers one page of an event index: {"events": […], "next"}.
func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request, list func(tx *store.Tx, cursor string, limit int) ([]*store.Event, string, error)) {
	limit, ok := h.limit(w, r)
	if !ok {
		return
	}
	var (
		evs  []*store.Event
		next string
	)
	err := h.db.View(func(tx *store.Tx) (err error) {
		evs, next, err = list(tx, r.URL.Query().Get("cursor"), limit)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": eventsJSON(evs), "next": next})
}

// limit reads the limit parameter: default 50, at most MaxList.
func (h *Handler) limit(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return min(50, h.cfg.MaxList), true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, "limit must be a positive number")
		return 0, false
	}
	return min(n, h.cfg.MaxList), true
}

// MaskEmail keeps the first character of the local part and the domain:
// j*******@example.com. The mask has a fixed length so it hides the
// address's.
func MaskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok {
		return MaskName(email)
	}
	return MaskName(local) + "@" + domain
}

// MaskName keeps the first character: J*******.
func MaskName(s string) string {
	if s == "" {
		return ""
	}
	r, _ := utf8.DecodeRuneInString(s)
	return string(r) + "*******"
}
