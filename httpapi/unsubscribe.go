package httpapi

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/invited/invited/store"
)

// unsubscribePage asks to confirm (GET, which mail scanners follow, so it
// changes nothing) or says it is done (POST).
var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Unsubscribe</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">
{{if .Done}}<h1>Done</h1>
<p>{{.Attendee}} will not receive invitations from {{.Organizer}} any more.</p>
{{else if .Unknown}}<h1>Unknown link</h1>
<p>This unsubscribe link is not one of ours, or it was cut short.</p>
{{else}}<h1>Unsubscribe</h1>
<p>Stop invitations from {{.Organizer}} to {{.Attendee}}?</p>
<form method="post"><input type="hidden" name="t" value="{{.Token}}">
<button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

type unsubscribeData struct {
	Token, Attendee, Organizer string
	Done, Unknown              bool
}

// unsubscribeForm is GET /unsubscribe?t=TOKEN: what the link in an
// invite's List-Unsubscribe shows.
func (h *Handler) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	d := unsubscribeData{Token: r.URL.Query().Get("t")}
	err := h.db.View(func(tx *store.Tx) (err error) {
		d.Attendee, d.Organizer, err = tx.TagParties(d.Token)
		return err
	})
	h.page(w, r, d, err)
}

// unsubscribe is POST /unsubscribe?t=TOKEN: a person's click on the page,
// or a mail client's one-click unsubscribe (RFC 8058, body
// "List-Unsubscribe=One-Click").
func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	d := unsubscribeData{Token: r.FormValue("t"), Done: true}
	var err error
	d.Attendee, d.Organizer, err = h.pl.Unsubscribe(r.Context(), d.Token, "unsubscribe link")
	if err == nil {
		h.log.Info("unsubscribed", "attendee", d.Attendee, "organizer", d.Organizer)
	}
	h.page(w, r, d, err)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request, d unsubscribeData, err error) {
	status := http.StatusOK
	if errors.Is(err, store.ErrNotFound) || d.Token == "" {
		status, d.Unknown, d.Done = http.StatusNotFound, true, false
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	w.WriteHeader(status)
	unsubscribePage.Execute(w, d)
}
