package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/invited/invited/store"
)

// organizerJSON is an organizer as admins see it.
type organizerJSON struct {
	*store.Organizer
	Paid bool `json:"paid"`
}

func (h *Handler) organizer(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(r.PathValue("organizer"))
	var o *store.Organizer
	err := h.db.View(func(tx *store.Tx) (err error) {
		o, err = tx.Organizer(email)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, organizerJSON{o, o.Paid(time.Now())})
}

// organizerChange is the body of PATCH /admin/organizers/{organizer}:
// every field is optional.
type organizerChange struct {
	Suspended       *bool   `json:"suspended"`
	SuspendedReason *string `json:"suspended_reason"`
	EventLimit      *int    `json:"event_limit"`
	InviteLimit     *int    `json:"invite_limit"`
	BulkAuthorized  *bool   `json:"bulk_authorized"`
	// LandingHosts replaces the organizer's landing page hosts.
	LandingHosts *[]string `json:"landing_hosts"`
	// ClearLimits drops event_limit and invite_limit overrides: the
	// configured defaults apply again.
	ClearLimits bool `json:"clear_limits"`
}

// updateOrganizer (PATCH /admin/organizers/{organizer}) suspends or
// reinstates an organizer, sets its limits and its bulk authorization.
func (h *Handler) updateOrganizer(w http.ResponseWriter, r *http.Request) {
	var c organizerChange
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad body: %v", err))
		return
	}
	h.changeOrganizer(w, r, c)
}

// suspend (POST …/suspend, optional body {"reason": "…"}) and reinstate
// (POST …/reinstate) are shorthands for PATCH {"suspended": …}.
func (h *Handler) suspend(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad body: %v", err))
		return
	}
	on := true
	h.changeOrganizer(w, r, organizerChange{Suspended: &on, SuspendedReason: &body.Reason})
}

func (h *Handler) reinstate(w http.ResponseWriter, r *http.Request) {
	off := false
	h.changeOrganizer(w, r, organizerChange{Suspended: &off})
}

// changeOrganizer applies c to the organizer of the path, creating the
// record if the organizer never registered an event (to authorize them
// ahead).
func (h *Handler) changeOrganizer(w http.ResponseWriter, r *http.Request, c organizerChange) {
	email := strings.ToLower(r.PathValue("organizer"))
	if !strings.Contains(email, "@") {
		writeError(w, http.StatusBadRequest, "organizer must be an e-mail address")
		return
	}
	now := time.Now()
	var o *store.Organizer
	err := h.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		if o, err = tx.OrganizerOrNew(email, now); err != nil {
			return err
		}
		if c.Suspended != nil {
			o.Suspended = *c.Suspended
			o.SuspendedAt, o.SuspendedReason = time.Time{}, ""
			if o.Suspended {
				o.SuspendedAt = now
			}
		}
		if c.SuspendedReason != nil && o.Suspended {
			o.SuspendedReason = *c.SuspendedReason
		}
		if c.ClearLimits {
			o.EventLimit, o.InviteLimit = nil, nil
		}
		if c.EventLimit != nil {
			o.EventLimit = c.EventLimit
		}
		if c.InviteLimit != nil {
			o.InviteLimit = c.InviteLimit
		}
		if c.BulkAuthorized != nil {
			o.BulkAuthorized = *c.BulkAuthorized
		}
		if c.LandingHosts != nil {
			o.LandingHosts = nil
			for _, host := range *c.LandingHosts {
				if host = strings.ToLower(strings.TrimSpace(host)); host != "" {
					o.LandingHosts = append(o.LandingHosts, host)
				}
			}
		}
		return tx.PutOrganizer(o)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("organizer changed", "organizer", email, "key", principalOf(r).keyID, "suspended", o.Suspended,
		"bulk_authorized", o.BulkAuthorized)
	writeJSON(w, http.StatusOK, organizerJSON{o, o.Paid(now)})
}
