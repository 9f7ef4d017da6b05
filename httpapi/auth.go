package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/invited/invited/store"
)

// Scopes a key can hold.
const (
	ScopeAdmin     = "admin"
	ScopeOrganizer = "organizer:" // followed by the organizer's address
)

// principal is who a request's key speaks for.
type principal struct {
	admin      bool
	organizers []string // addresses of organizer:EMAIL scopes
	keyID      string   // "" for the configured admin key
}

// may reports whether p may see and act on organizer's events.
func (p *principal) may(organizer string) bool {
	if p.admin {
		return true
	}
	// Exact comparison of lower-cased addresses: strings.EqualFold would
	// also fold Unicode look-alikes (ſ and s).
	organizer = strings.ToLower(organizer)
	for _, o := range p.organizers {
		if o == organizer {
			return true
		}
	}
	return false
}

type principalKey struct{}

func principalOf(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// token reads the key of a request: X-Api-Key, or Authorization: Bearer.
func token(r *http.Request) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// authenticate finds the principal of a request's key, or answers 401.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*principal, bool) {
	key := token(r)
	if key != "" && h.cfg.AdminKey != "" {
		sum := sha256.Sum256([]byte(key))
		if subtle.ConstantTimeCompare(sum[:], h.adminKey[:]) == 1 {
			return &principal{admin: true}, true
		}
	}
	if key != "" {
		var k *store.APIKey
		err := h.db.View(func(tx *store.Tx) (err error) {
			k, err = tx.CheckKey(key)
			return err
		})
		if err == nil {
			p := &principal{keyID: k.ID}
			for _, s := range k.Scopes {
				switch {
				case s == ScopeAdmin:
					p.admin = true
				case strings.HasPrefix(s, ScopeOrganizer):
					p.organizers = append(p.organizers, strings.ToLower(strings.TrimPrefix(s, ScopeOrganizer)))
				}
			}
			return p, true
		}
		if !errors.Is(err, store.ErrBadKey) {
			h.fail(w, r, err)
			return nil, false
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="invited"`)
	writeError(w, http.StatusUnauthorized, "missing or wrong API key")
	return nil, false
}

// keyed wraps a handler that needs a valid key; the handler checks scopes.
func (h *Handler) keyed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := h.authenticate(w, r)
		if !ok {
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// admin wraps a handler that needs the admin scope.
func (h *Handler) admin(next http.HandlerFunc) http.Handler {
	return h.keyed(func(w http.ResponseWriter, r *http.Request) {
		if !principalOf(r).admin {
			writeError(w, http.StatusForbidden, "this key has no admin scope")
			return
		}
		next(w, r)
	})
}

// forOrganizer wraps a handler of /…/organizer/{organizer}/…: an organizer
// key only reaches its own.
func (h *Handler) forOrganizer(next http.HandlerFunc) http.Handler {
	return h.keyed(func(w http.ResponseWriter, r *http.Request) {
		if !principalOf(r).may(r.PathValue("organizer")) {
			writeError(w, http.StatusForbidden, "this key does not speak for that organizer")
			return
		}
		next(w, r)
	})
}

// eventHandler serves /event/{uid}/… with the event loaded.
type eventHandler func(w http.ResponseWriter, r *http.Request, e *store.Event)

// forEvent loads {uid} and lets through only keys that speak for its
// organizer (404 for an unknown event, 403 for someone else's).
func (h *Handler) forEvent(next eventHandler) http.Handler {
	return h.keyed(func(w http.ResponseWriter, r *http.Request) {
		var e *store.Event
		err := h.db.View(func(tx *store.Tx) (err error) {
			e, err = tx.Event(r.PathValue("uid"))
			return err
		})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if !principalOf(r).may(e.OrganizerEmail) {
			writeError(w, http.StatusForbidden, "this key does not speak for this event's organizer")
			return
		}
		next(w, r, e)
	})
}
