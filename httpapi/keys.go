package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/invited/invited/store"
)

// ValidScope checks a key scope: "admin" or "organizer:EMAIL". It returns
// the scope normalized.
func ValidScope(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == ScopeAdmin {
		return s, nil
	}
	if email, ok := strings.CutPrefix(s, ScopeOrganizer); ok && isASCII(email) {
		if a, err := mail.ParseAddress(email); err == nil && a.Address == email {
			return ScopeOrganizer + strings.ToLower(email), nil
		}
	}
	return "", fmt.Errorf("scope %q is not %q or %q followed by an address", s, ScopeAdmin, ScopeOrganizer)
}

// KeyJSON is a key as the admin API shows it: without its hash.
type KeyJSON struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
	Revoked time.Time `json:"revoked,omitzero"`
	Key     string    `json:"key,omitempty"` // only when created
}

// ToKeyJSON is k as the admin API shows it.
func ToKeyJSON(k *store.APIKey) KeyJSON {
	return KeyJSON{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Created: k.Created, Revoked: k.Revoked}
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	var keys []*store.APIKey
	err := h.db.View(func(tx *store.Tx) (err error) {
		keys, err = tx.Keys()
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]KeyJSON, len(keys))
	for i, k := range keys {
		out[i] = ToKeyJSON(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// createKey takes {"name": "…", "scopes": ["organizer:a@example.com"]} and
// answers the new key, the only time its secret is shown.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad body: %v", err))
		return
	}
	if len(body.Scopes) == 0 {
		writeError(w, http.StatusBadRequest, "a key needs at least one scope")
		return
	}
	for i, s := range body.Scopes {
		var err error
		if body.Scopes[i], err = ValidScope(s); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	k, token := store.NewAPIKey(body.Name, body.Scopes, time.Now())
	if err := h.db.Update(r.Context(), func(tx *store.Tx) error { return tx.PutKey(k) }); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("API key created", "id", k.ID, "scopes", k.Scopes, "by", principalOf(r).keyID)
	j := ToKeyJSON(k)
	j.Key = token
	writeJSON(w, http.StatusCreated, j)
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	var k *store.APIKey
	err := h.db.Update(r.Context(), func(tx *store.Tx) (err error) {
		k, err = tx.RevokeKey(r.PathValue("id"), time.Now())
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("API key revoked", "id", k.ID, "by", principalOf(r).keyID)
	writeJSON(w, http.StatusOK, ToKeyJSON(k))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
