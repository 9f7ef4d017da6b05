package httpapi

import (
	"encoding/csv"
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
	errs, err := h.pl.Invite(r.Context(), uid, []store.Invitee{{Email: email, Name: q.Get("name"), Origin: origin}})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if errs[0] != nil {
		writeError(w, http.StatusBadRequest, errs[0].Error())
		return
	}
	if to, ok := h.landing(q.Get("landing")); ok {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "uid": uid, "email": email})
}

// landing returns the landing page to redirect to, if its host is allowed.
func (h *Handler) landing(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	for _, allowed := range h.cfg.LandingHosts {
		if host == strings.ToLower(allowed) {
			return u.String(), true
		}
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
		rows []store.Invitee
		err  error
	)
	switch mt {
	case "text/csv", "application/csv":
		rows, err = readCSV(body, uid, h.cfg.MaxRows)
	case "application/json", "":
		rows, err = readJSON(body, h.cfg.MaxRows)
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
	for i := range rows {
		rows[i].Origin = store.OriginAPI
	}
	errs, err := h.pl.Invite(r.Context(), uid, rows)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	results := make([]rowResult, len(rows))
	queued := 0
	for i, e := range errs {
		results[i] = rowResult{Row: i + 1, Email: rows[i].Email, Status: "queued"}
		if e != nil {
			results[i].Status, results[i].Error = "rejected", e.Error()
		} else {
			queued++
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{
		"uid": uid, "queued": queued, "rejected": len(rows) - queued, "results": results,
	})
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

// readCSV reads email,name rows (or uid,email,name, where uid must be
// this event's), with an optional header line.
func readCSV(r io.Reader, uid string, maxRows int) ([]store.Invitee, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var rows []store.Invitee
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, err
			}
			return nil, fmt.Errorf("csv: %v", err)
		}
		if line == 1 && len(rec) > 0 {
			rec[0] = strings.TrimPrefix(rec[0], "\ufeff")
			if first := strings.ToLower(strings.TrimSpace(rec[0])); first == "email" || first == "uid" {
				continue
			}
		}
		var row store.Invitee
		switch len(rec) {
		case 1:
			row.Email = rec[0]
		case 2:
			row.Email, row.Name = rec[0], rec[1]
		default:
			if strings.TrimSpace(rec[0]) != uid {
				return nil, fmt.Errorf("csv line %d: uid %q is not this event", line, rec[0])
			}
			row.Email, row.Name = rec[1], rec[2]
		}
		row.Email = strings.TrimSpace(row.Email)
		row.Name = strings.TrimSpace(row.Name)
		if len(rows) == maxRows {
			return nil, fmt.Errorf("%w: more than %d", errTooManyRows, maxRows)
		}
		rows = append(rows, row)
	}
}
