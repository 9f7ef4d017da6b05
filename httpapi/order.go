package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/invited/invited/store"
)

// shopifyOrder is what we read of a Shopify order webhook.
type shopifyOrder struct {
	ID          json.Number `json:"id"`
	OrderNumber json.Number `json:"order_number"`
	Email       string      `json:"email"`
	LineItems   []struct {
		ProductID  json.Number `json:"product_id"`
		Name       string      `json:"name"`
		Title      string      `json:"title"`
		Properties []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"properties"`
	} `json:"line_items"`
}

// organizerProperties are the line-item properties that name the
// organizer a purchase is for (case-insensitive).
var organizerProperties = []string{"organizer", "organizer email", "organizer_email", "organizer-email", "calendar email"}

// order is the Shopify "order paid" webhook: each line item becomes a
// subscription for the organizer it names (a custom property) or the
// purchase address. The body must carry a valid X-Shopify-Hmac-Sha256.
func (h *Handler) order(w http.ResponseWriter, r *http.Request) {
	if h.cfg.ShopifySecret == "" {
		writeError(w, http.StatusNotFound, "enrollment is not configured")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	mac := hmac.New(sha256.New, []byte(h.cfg.ShopifySecret))
	mac.Write(body)
	got, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Shopify-Hmac-Sha256"))
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		h.log.Warn("order webhook with a bad signature", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "bad signature")
		return
	}
	var o shopifyOrder
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&o); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad order: %v", err))
		return
	}
	number := o.OrderNumber.String()
	if number == "" {
		number = o.ID.String()
	}
	purchase := strings.ToLower(strings.TrimSpace(o.Email))
	now := time.Now()
	byOrganizer := map[string][]store.Subscription{}
	var order []string
	for _, li := range o.LineItems {
		org := purchase
		for _, p := range li.Properties {
			if v, ok := p.Value.(string); ok && isOrganizerProperty(p.Name) && strings.TrimSpace(v) != "" {
				org = strings.ToLower(strings.TrimSpace(v))
			}
		}
		if a, err := mail.ParseAddress(org); err != nil || a.Address != org || li.ProductID.String() == "" || number == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("line item %q has no product id, order number or valid organizer address", li.Name))
			return
		}
		name := li.Name
		if name == "" {
			name = li.Title
		}
		if _, ok := byOrganizer[org]; !ok {
			order = append(order, org)
		}
		byOrganizer[org] = append(byOrganizer[org], store.Subscription{OrderNumber: number, ProductID: li.ProductID.String(),
			Product: name, Email: purchase, Created: now})
	}
	if len(order) == 0 {
		writeError(w, http.StatusBadRequest, "order has no line items")
		return
	}
	added := 0
	for _, org := range order {
		n, err := h.pl.Enroll(r.Context(), org, byOrganizer[org])
		if err != nil {
			h.fail(w, r, err)
			return
		}
		added += n
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": number, "organizers": order, "new_subscriptions": added})
}

func isOrganizerProperty(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, p := range organizerProperties {
		if name == p {
			return true
		}
	}
	return false
}
