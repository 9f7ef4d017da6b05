package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/invited/invited/internal/invitecsv"
	"github.com/invited/invited/store"
)

// Origins are the sources an invite may name, as in the Calendar Invite
// Server.
var Origins = []string{
	"api", "bulk", "button", "convertkit", "emailcta", "hubspot", "klaviyo", "landingpage",
	"mailchimpcta", "rsvpbutton", "sendgrid", "webform", "wix", "zoho",
}

// uidPattern is what a UID in a URL may look like.
var uidPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$`)

// inviteOne is the public endpoint behind RSVP buttons and landing pages:
// GET /event/{uid}/invite?email=&name=&origin=&landing=.
func (h *Handler) inviteOne(w http.ResponseWriter, r *http.Request) {
	uid := r.PathValue("uid")
	q := r.URL.Query()
	if !uidPattern.MatchString(uid) {
		writeError(w, http.StatusBadRequest, "bad event uid")
		return
	}
	email := strings.TrimSpace(q.Get("email"))
	origin := strings.ToLower(q.Get("origin"))
	if origin == "" {
		origin = "api"
	}
	if !slices.Contains(Origins, origin) {
		writeError(w, http.StatusBadRequest, "unknown origin")
		return
	}
	if !h.limitInvite(w, r, uid, email) {
		return
	}
	errs, err := h.pl.Invite(r.Context(), uid, []store.Invitee{{Email: email, Name: q.Get("name"), Origin: origin}})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if errs[0] != nil {
		writeError(w, http.StatusBadRequest, errs[0].Error())
		return
	}
	if landing := q.Get("landing"); landing != "" {
		if to, ok := h.landing(landing, uid); ok {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "uid": uid, "email": email})
}

// organizerHosts are the landing hosts allowed for the organizer of event
// uid.
func (h *Handler) organizerHosts(uid string) []string {
	var hosts []string
	err := h.db.View(func(tx *store.Tx) error {
		e, err := tx.Event(uid)
		if err != nil {
			return err
		}
		o, err := tx.Organizer(e.OrganizerEmail)
		if err == nil {
			hosts = o.LandingHosts
		}
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Error("read the organizer's landing hosts", "uid", uid, "err", err)
	}
	return hosts
}

// landing returns the landing page to redirect to, if its host is allowed
// by the configuration or for the organizer (never an open redirect).
func (h *Handler) landing(s, uid string) (string, bool) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	// The configured hosts first: only when none matches is the
	// organizer's own list (kept lower-cased) read from the store.
	if h.landingHosts[host] || slices.Contains(h.organizerHosts(uid), host) {
		return u.String(), true
	}
	if host != "" {
		h.log.Info("limit: landing page host not allowed", "host", host)
	}
	return "", false
}

// rowResult is the outcome of one row of a POST /event/{uid}/invites.
type rowResult struct {
	Row    int    `json:"row"`
	Email  string `json:"email"`
	Status string `json:"status"` // queued or rejected
	Error  string `json:"error,omitempty"`
}

// inviteMany takes a JSON array of {"email","name"} or a CSV
// (email,name; or uid,email,name) and answers per-row results.
func (h *Handler) inviteMany(w http.ResponseWriter, r *http.Request, e *store.Event) {
	uid := e.UID
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var (
		rows    []store.Invitee
		results []rowResult
		err     error
	)
	switch mt {
	case "text/csv", "application/csv":
		if !h.mayBulk(w, r, e) {
			return
		}
		rows, results, err = h.readCSV(body, uid)
	case "application/json", "":
		rows, err = readJSON(body, h.cfg.MaxRows)
		results = make([]rowResult, len(rows))
		for i := range rows {
			rows[i].Origin = store.OriginAPI
			results[i] = rowResult{Row: i + 1, Email: rows[i].Email}
		}
	default:
		writeError(w, http.StatusUnsupportedMediaType, "send application/json or text/csv")
		return
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBody))
		return
	case errors.Is(err, errTooManyRows):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	errs, err := h.pl.Invite(r.Context(), uid, rows)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// results holds a row for every input row; those already rejected (a
	// CSV row for another event) were not sent to Invite.
	k, queued := 0, 0
	for i := range results {
		if results[i].Status != "" {
			continue
		}
		results[i].Status = "queued"
		if errs[k] != nil {
			results[i].Status, results[i].Error = "rejected", errs[k].Error()
		} else {
			queued++
		}
		k++
	}
	writeJSON(w, http.StatusAccepted, map[string]any{
		"uid": uid, "queued": queued, "rejected": len(results) - queued, "results": results,
	})
}

// mayBulk allows a CSV of invites only from an admin key or for an
// organizer authorized to send bulk invites, as by mail.
func (h *Handler) mayBulk(w http.ResponseWriter, r *http.Request, e *store.Event) bool {
	if principalOf(r).admin {
		return true
	}
	var o *store.Organizer
	err := h.db.View(func(tx *store.Tx) (err error) {
		o, err = tx.Organizer(e.OrganizerEmail)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, err)
		return false
	}
	if o == nil || !o.BulkAuthorized {
		writeError(w, http.StatusForbidden, "this organizer is not authorized to send bulk invites")
		return false
	}
	return true
}

// readCSV reads a CSV of invites (see invitecsv.Read); rows naming
// another event are rejected here, the others returned with origin bulk.
func (h *Handler) readCSV(body io.Reader, uid string) ([]store.Invitee, []rowResult, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, nil, err
	}
	csvRows, err := invitecsv.Read(data, h.cfg.MaxRows, false)
	if errors.Is(err, invitecsv.ErrTooManyRows) {
		return nil, nil, fmt.Errorf("%w: %v", errTooManyRows, err)
	} else if err != nil {
		return nil, nil, err
	}
	var rows []store.Invitee
	results := make([]rowResult, len(csvRows))
	for i, cr := range csvRows {
		results[i] = rowResult{Row: cr.Line, Email: cr.Email}
		if cr.UID != "" && cr.UID != uid {
			results[i].Status, results[i].Error = "rejected", "the row is for another event"
			continue
		}
		rows = append(rows, store.Invitee{Email: cr.Email, Name: cr.Name, Origin: store.OriginBulk})
	}
	return rows, results, nil
}

var errTooManyRows = errors.New("too many rows")

func readJSON(r io.Reader, maxRows int) ([]store.Invitee, error) {
	var rows []store.Invitee
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rows); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, fmt.Errorf(`body must be a JSON array of {"email","name"}: %v`, err)
	}
	if len(rows) > maxRows {
		return nil, fmt.Errorf("%w: %d, at most %d", errTooManyRows, len(rows), maxRows)
	}
	return rows, nil
}
