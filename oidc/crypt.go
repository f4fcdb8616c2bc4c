package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sealer encrypts refresh tokens at rest, and the logins in flight that
// browsers carry (SealLogin), with AES-256-GCM. The two uses have keys of
// their own, both derived from the one key the Sealer is made with, so
// every replica given the same key seals and opens the same values.
type Sealer struct {
	aead  cipher.AEAD // refresh tokens: the key itself
	login cipher.AEAD // login states: HKDF(key, loginKeyInfo)
}

// loginKeyInfo is the HKDF info that derives the login-state key; a
// different purpose would use a different string.
const loginKeyInfo = "registry-bridge login-state sealing v1"

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("oidc: encryption key must be 32 bytes, got %d", len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	loginKey, err := hkdf.Key(sha256.New, key, nil, loginKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	login, err := newGCM(loginKey)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, login: login}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// RandomSealer returns a Sealer with a fresh random key, for the embedded
// store, which forgets everything on restart anyway.
func RandomSealer() (*Sealer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return NewSealer(key)
}

// DerivedSealer returns a Sealer whose key is derived from a secret with
// HKDF-SHA256, for deployments without a dedicated encryption key.
func DerivedSealer(secret string) (*Sealer, error) {
	if secret == "" {
		return nil, errors.New("oidc: cannot derive an encryption key from an empty secret")
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "registry-bridge refresh-token sealing v1", 32)
	if err != nil {
		return nil, err
	}
	return NewSealer(key)
}

// LoadEncryptionKey reads a 32-byte key from a file holding the raw bytes
// or their standard or URL base64 (as `openssl rand -base64 32` prints).
func LoadEncryptionKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == 32 {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("want 32 random bytes, raw or base64 (openssl rand -base64 32)")
}

// Seal encrypts plaintext; the associated data binds the ciphertext to its
// owner, so a sealed token cannot be moved to another user's record.
func (s *Sealer) Seal(plaintext, associated string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(associated)), nil
}

// Open decrypts what Seal produced for the same associated data.
func (s *Sealer) Open(sealed []byte, associated string) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("oidc: sealed value too short")
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(associated))
	if err != nil {
		return "", errors.New("oidc: sealed value does not decrypt (wrong key or tampered)")
	}
	return string(pt), nil
}
