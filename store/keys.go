package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadKey is returned for an API key that does not exist, does not match
// or was revoked.
var ErrBadKey = errors.New("store: bad API key")

// APIKey is a key for the HTTP API. Only a hash of its secret is kept.
type APIKey struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Scopes  []string  `json:"scopes"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
	Revoked time.Time `json:"revoked,omitzero"`
}

// keyPrefix starts every token, so a key is recognisable in a config file
// or a leaked log.
const keyPrefix = "inv_"

// NewAPIKey makes a key with the given scopes and returns it with its
// token, the only time the secret is seen. Store it with PutKey.
func NewAPIKey(name string, scopes []string, now time.Time) (*APIKey, string) {
	id := make([]byte, 6)
	secret := make([]byte, 24)
	rand.Read(id)
	rand.Read(secret)
	k := &APIKey{
		ID:      hex.EncodeToString(id),
		Name:    name,
		Scopes:  scopes,
		Created: now,
	}
	s := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(s))
	k.Hash = sum[:]
	return k, keyPrefix + k.ID + "_" + s
}

// PutKey stores a key (new, or revoked).
func (tx *Tx) PutKey(k *APIKey) error { return tx.put(bKeys, []byte(k.ID), k) }

// Key reads key id.
func (tx *Tx) Key(id string) (*APIKey, error) {
	var k APIKey
	if err := tx.get(bKeys, []byte(id), &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Keys lists every key, revoked ones included.
func (tx *Tx) Keys() ([]*APIKey, error) {
	var out []*APIKey
	err := tx.tx.Bucket(bKeys).ForEach(func(_, v []byte) error {
		k := new(APIKey)
		if err := json.Unmarshal(v, k); err != nil {
			return fmt.Errorf("store: decode key: %w", err)
		}
		out = append(out, k)
		return nil
	})
	return out, err
}

// CheckKey returns the live key a token stands for, or ErrBadKey.
func (tx *Tx) CheckKey(token string) (*APIKey, error) {
	rest, ok := strings.CutPrefix(token, keyPrefix)
	if !ok {
		return nil, ErrBadKey
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok {
		return nil, ErrBadKey
	}
	k, err := tx.Key(id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrBadKey
	} else if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], k.Hash) != 1 || !k.Revoked.IsZero() {
		return nil, ErrBadKey
	}
	return k, nil
}

// RevokeKey marks key id revoked at now (a key already revoked keeps its
// time) and returns it.
func (tx *Tx) RevokeKey(id string, now time.Time) (*APIKey, error) {
	k, err := tx.Key(id)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	if k.Revoked.IsZero() {
		k.Revoked = now
	}
	return k, tx.PutKey(k)
}
