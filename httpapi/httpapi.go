// Package httpapi serves invited's HTTP API: events, statistics,
// attendees and invites, with the field names of the Calendar Invite
// Server so its frontends keep working.
package httpapi

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/invited/invited/store"
)

// Pipeline is where the API queues work (pipeline.Pipeline).
type Pipeline interface {
	// Invite queues invites; each row gets an error or nil (queued). An
	// unknown event fails the call with store.ErrNotFound.
	Invite(ctx context.Context, uid string, rows []store.Invitee) ([]error, error)
	// Report queues the attendee report mail to the event's organizer.
	Report(ctx context.Context, uid string) error
	// Enroll records paid subscriptions for an organizer and queues the
	// enrollment notice; it returns how many were new.
	Enroll(ctx context.Context, organizer string, subs []store.Subscription) (int, error)
	// Unsubscribe makes the attendee holding an invite's token block its
	// organizer; an unknown token is store.ErrNotFound.
	Unsubscribe(ctx context.Context, token, source string) (attendee, organizer string, err error)
	// Busy reports that the inbound queue is past its high-water mark:
	// SMTP answers 451 until it drains.
	Busy() bool
}

// Config configures a Handler. Zero fields take the defaults noted.
type Config struct {
	// AdminKey grants every endpoint that needs a key.
	AdminKey string
	// LandingHosts are the hosts the public invite endpoint may redirect
	// to; a landing page on any other host gets a 202 instead.
	LandingHosts []string
	// ShopifySecret checks the signature of POST /order (Shopify's webhook
	// secret); empty disables enrollment.
	ShopifySecret string
	// Rates bound the public invite endpoint (zero value: DefaultRateLimits).
	Rates *RateLimits
	// TrustForwarded takes the client address from the last hop of
	// X-Forwarded-For (set it only behind a reverse proxy that adds it).
	TrustForwarded bool
	// MaxBody bounds request bodies (default 5 MiB); MaxRows bounds the rows
	// of one invite request (default 10000); MaxList bounds one page of a
	// list (default 500, 50 when no limit is asked).
	MaxBody int64
	MaxRows int
	MaxList int
	// Metrics serves GET /metrics (Prometheus; admin key, sent as a bearer
	// token); nil: 404.
	Metrics http.Handler
}

// Handler is the API's http.Handler.
type Handler struct {
	cfg      Config
	db       *store.DB
	pl       Pipeline
	log      *slog.Logger
	mux      *http.ServeMux
	adminKey [32]byte

	perIP, perAttendee, perEvent *limiter
	aead                         cipher.AEAD
	landingHosts                 map[string]bool // cfg.LandingHosts, lower-cased
}

// New returns the API handler.
func New(cfg Config, db *store.DB, pl Pipeline, log *slog.Logger) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 5 << 20
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 10000
	}
	if cfg.MaxList <= 0 {
		cfg.MaxList = 500
	}
	h := &Handler{cfg: cfg, db: db, pl: pl, log: log, mux: http.NewServeMux()}
	h.adminKey = sha256.Sum256([]byte(cfg.AdminKey))
	rates := DefaultRateLimits
	if cfg.Rates != nil {
		rates = *cfg.Rates
	}
	d := DefaultRateLimits
	h.perIP = newLimiter(rates.PerIP.withBurst(d.PerIP))
	h.perAttendee = newLimiter(rates.PerAttendee.withBurst(d.PerAttendee))
	h.perEvent = newLimiter(rates.PerEvent.withBurst(d.PerEvent))
	h.aead = newAEAD(cfg.AdminKey)
	h.landingHosts = make(map[string]bool, len(cfg.LandingHosts))
	for _, host := range cfg.LandingHosts {
		h.landingHosts[strings.ToLower(host)] = true
	}

	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	if cfg.Metrics != nil {
		h.mux.Handle("GET /metrics", h.admin(cfg.Metrics.ServeHTTP))
	}
	h.mux.HandleFunc("GET /event/{uid}/invite", h.inviteOne)
	h.mux.Handle("POST /event/{uid}/invites", h.forEvent(h.inviteMany))
	h.mux.Handle("GET /event/{uid}", h.forEvent(h.event))
	h.mux.Handle("GET /event/{uid}/statistics", h.forEvent(h.eventStats))
	h.mux.Handle("GET /event/{uid}/attendees", h.forEvent(h.attendees))
	h.mux.Handle("GET /organizer/{organizer}/events", h.forOrganizer(h.organizerEvents))
	h.mux.Handle("GET /shadow/organizer/{organizer}/events", h.forOrganizer(h.organizerEvents))
	h.mux.Handle("GET /event/{uid}/report", h.forEvent(h.report))
	h.mux.Handle("GET /event/{uid}/report.csv", h.forEvent(h.reportCSV))
	h.mux.Handle("GET /organizer/{organizer}/statistics", h.forOrganizer(h.organizerStats))
	h.mux.Handle("GET /shadow/organizer/{organizer}/statistics", h.forOrganizer(h.organizerStats))
	h.mux.Handle("GET /system/events", h.admin(h.systemEvents))
	h.mux.Handle("GET /system/statistics", h.admin(h.systemStats))
	h.mux.HandleFunc("POST /order", h.order)
	h.mux.HandleFunc("GET /unsubscribe", h.unsubscribeForm)
	h.mux.HandleFunc("POST /unsubscribe", h.unsubscribe)
	h.mux.Handle("GET /admin/organizers/{organizer}", h.admin(h.organizer))
	h.mux.Handle("PATCH /admin/organizers/{organizer}", h.admin(h.updateOrganizer))
	h.mux.Handle("POST /admin/organizers/{organizer}/suspend", h.admin(h.suspend))
	h.mux.Handle("POST /admin/organizers/{organizer}/reinstate", h.admin(h.reinstate))
	h.mux.Handle("GET /admin/keys", h.admin(h.listKeys))
	h.mux.Handle("POST /admin/keys", h.admin(h.createKey))
	h.mux.Handle("DELETE /admin/keys/{id}", h.admin(h.revokeKey))
	h.mux.Handle("GET /admin/messages/{id}", h.admin(h.message))
	h.mux.Handle("GET /admin/dead-letters", h.admin(h.deadLetters))
	h.mux.Handle("GET /admin/dead-letters/{id}", h.admin(h.deadLetter))
	h.mux.Handle("POST /admin/dead-letters/{id}/retry", h.admin(h.retryDeadLetter))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is 200 while the daemon takes work, 503 with the reason when it
// would refuse it (its inbound queue is past the high-water mark).
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.pl.Busy() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "busy",
			"reason": "inbound queue past its high-water mark: SMTP answers 451 until it drains"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// fail answers err with the status it maps to, logging what is not the
// client's fault.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, store.ErrBadCursor):
		status, msg = http.StatusBadRequest, "bad cursor"
	case errors.Is(err, context.Canceled):
		return
	default:
		h.log.Error("http", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // which escapes <, > and & in strings
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
