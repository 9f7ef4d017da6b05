package mailer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/emersion/go-msgauth/dkim"
)

// Sender is what delivers a rendered message: a Relay or an Outbox.
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg []byte) error
}

// Signer DKIM-signs every message before handing it to Next.
type Signer struct {
	Next     Sender
	Domain   string // d=
	Selector string // s=
	Key      crypto.Signer
}

// signedHeaders are the header fields signed, each also once more than
// present so none can be added after signing (RFC 6376 section 8.15).
var signedHeaders = []string{
	"From", "From", "To", "To", "Subject", "Subject", "Date", "Message-ID", "Reply-To",
	"MIME-Version", "Content-Type", "List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted",
}

// Send signs msg and sends it.
func (s *Signer) Send(ctx context.Context, from string, to []string, msg []byte) error {
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: s.Domain, Selector: s.Selector, Signer: s.Key, HeaderKeys: signedHeaders,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		return &PermanentError{Message: "cannot DKIM-sign the message: " + err.Error(), Err: err}
	}
	return s.Next.Send(ctx, from, to, out.Bytes())
}

// Close closes Next if it can be closed.
func (s *Signer) Close() error {
	if c, ok := s.Next.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// GenerateDKIMKey makes a 2048-bit RSA key (what every receiver verifies;
// Ed25519 is not yet) and returns it as PKCS #8 PEM, with the DNS TXT
// record that publishes it.
func GenerateDKIMKey() (pemKey []byte, txt string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	pemKey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	txt, err = DKIMRecord(key)
	return pemKey, txt, err
}

// DKIMRecord is the DNS TXT record (at SELECTOR._domainkey.DOMAIN) that
// publishes key's public half.
func DKIMRecord(key crypto.Signer) (string, error) {
	switch key.(type) {
	case *rsa.PrivateKey:
		pub, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub), nil
	case ed25519.PrivateKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)), nil
	}
	return "", errors.New("mailer: unsupported DKIM key type")
}

// LoadDKIMKey reads a PEM private key (PKCS #8, or PKCS #1 RSA).
func LoadDKIMKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("mailer: DKIM key %s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("mailer: DKIM key %s: not a signing key", path)
	}
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM key %s: %w", path, err)
	}
	return k, nil
}
