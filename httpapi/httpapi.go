// Package httpapi serves invited's HTTP API: events, statistics,
// attendees and invites, with the field names of the Calendar Invite
// Server so its frontends keep working.
package httpapi

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/invited/invited/store"
)

// Inviter queues invites (pipeline.Pipeline). Each row gets an error or
// nil (queued); an unknown event fails the call with store.ErrNotFound.
type Inviter interface {
	Invite(ctx context.Context, uid string, rows []store.Invitee) ([]error, error)
}

// Config configures a Handler. Zero fields take the defaults noted.
type Config struct {
	// AdminKey grants every endpoint that needs a key.
	AdminKey string
	// LandingHosts are the hosts the public invite endpoint may redirect
	// to; a landing page on any other host gets a 202 instead.
	LandingHosts []string
	// MaxBody bounds request bodies (default 5 MiB); MaxRows bounds the rows
	// of one invite request (default 10000); MaxList bounds one page of a
	// list (default 500, 50 when no limit is asked).
	MaxBody int64
	MaxRows int
	MaxList int
}

// Handler is the API's http.Handler.
type Handler struct {
	cfg      Config
	db       *store.DB
	inviter  Inviter
	log      *slog.Logger
	mux      *http.ServeMux
	adminKey [32]byte
	aead     cipher.AEAD
}

// New returns the API handler.
func New(cfg Config, db *store.DB, inviter Inviter, log *slog.Logger) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 5 << 20
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 10000
	}
	if cfg.MaxList <= 0 {
		cfg.MaxList = 500
	}
	h := &Handler{cfg: cfg, db: db, inviter: inviter, log: log, mux: http.NewServeMux()}
	h.adminKey = sha256.Sum256([]byte(cfg.AdminKey))
	h.aead = newAEAD(cfg.AdminKey)

	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /event/{uid}/invite", h.inviteOne)
	h.mux.Handle("POST /event/{uid}/invites", h.admin(h.inviteMany))
	h.mux.Handle("GET /event/{uid}", h.admin(h.event))
	h.mux.Handle("GET /event/{uid}/statistics", h.admin(h.eventStats))
	h.mux.Handle("GET /event/{uid}/attendees", h.admin(h.attendees))
	h.mux.Handle("GET /organizer/{organizer}/events", h.admin(h.organizerEvents))
	h.mux.Handle("GET /shadow/organizer/{organizer}/events", h.admin(h.organizerEvents))
	h.mux.Handle("GET /admin/messages/{id}", h.admin(h.message))
	h.mux.Handle("GET /admin/dead-letters", h.admin(h.deadLetters))
	h.mux.Handle("GET /admin/dead-letters/{id}", h.admin(h.deadLetter))
	h.mux.Handle("POST /admin/dead-letters/{id}/retry", h.admin(h.retryDeadLetter))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// admin wraps a handler that needs the admin key.
func (h *Handler) admin(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		if key == "" {
			if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				key = strings.TrimSpace(v)
			}
		}
		sum := sha256.Sum256([]byte(key))
		if key == "" || h.cfg.AdminKey == "" || subtle.ConstantTimeCompare(sum[:], h.adminKey[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="invited"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API key")
			return
		}
		next(w, r)
	})
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
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
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
