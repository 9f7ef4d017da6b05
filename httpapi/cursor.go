package httpapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// sealCursor makes an opaque cursor of a position that must not be
// readable by the client (an attendee's address in a masked list).
func (h *Handler) sealCursor(pos string) string {
	nonce := make([]byte, h.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(h.aead.Seal(nonce, nonce, []byte(pos), nil))
}

// openCursor reverses sealCursor; ok is false for a cursor we did not make.
func (h *Handler) openCursor(c string) (pos string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	n := h.aead.NonceSize()
	if err != nil || len(b) < n {
		return "", false
	}
	p, err := h.aead.Open(nil, b[:n], b[n:], nil)
	return string(p), err == nil
}

func newAEAD(secret string) cipher.AEAD {
	key := sha256.Sum256([]byte("invited cursor\x00" + secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}
