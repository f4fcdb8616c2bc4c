package passwords

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
)

// Prefixes of the two credential kinds.
const (
	PasswordPrefix = "rbp_"
	RefreshPrefix  = "rbr_"
)

const (
	idBytes     = 10 // 80 bits: unguessable ids, so a record id leaks nothing
	secretBytes = 32 // 256 bits
)

var (
	encoding  = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	idLen     = encoding.EncodedLen(idBytes)
	secretLen = encoding.EncodedLen(secretBytes)
	// Length is the length of every password and refresh token.
	Length = len(PasswordPrefix) + idLen + 1 + secretLen

	refreshLabel = []byte("registry-bridge refresh token v1")
)

// ErrMalformed: the string is not an app password or refresh token.
var ErrMalformed = errors.New("malformed app password")

// Kind tells a password from a refresh token.
type Kind int

const (
	KindPassword Kind = iota + 1
	KindRefresh
)

// Minted is a new app password: show Password once, store the rest.
type Minted struct {
	ID            string
	Password      string
	Digest        []byte
	RefreshDigest []byte
}

// Mint generates a new app password from crypto/rand.
func Mint() (Minted, error) {
	var raw [idBytes + secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Minted{}, err
	}
	id := encoding.EncodeToString(raw[:idBytes])
	secret := encoding.EncodeToString(raw[idBytes:])
	return Minted{
		ID:            id,
		Password:      PasswordPrefix + id + "_" + secret,
		Digest:        digest(secret),
		RefreshDigest: digest(refreshSecret(secret)),
	}, nil
}

// Credential is a parsed password or refresh token.
type Credential struct {
	Kind   Kind
	ID     string
	secret string
}

// Parse parses an app password or a refresh token. It checks the form only;
// Matches checks the secret against the stored record.
func Parse(s string) (Credential, error) {
	if len(s) != Length || s[len(PasswordPrefix)+idLen] != '_' {
		return Credential{}, ErrMalformed
	}
	var kind Kind
	switch s[:len(PasswordPrefix)] {
	case PasswordPrefix:
		kind = KindPassword
	case RefreshPrefix:
		kind = KindRefresh
	default:
		return Credential{}, ErrMalformed
	}
	id := s[len(PasswordPrefix) : len(PasswordPrefix)+idLen]
	secret := s[len(PasswordPrefix)+idLen+1:]
	if !valid(id) || !valid(secret) {
		return Credential{}, ErrMalformed
	}
	return Credential{Kind: kind, ID: id, secret: secret}, nil
}

// LooksLike reports whether s has the shape of an app password or refresh
// token, so callers can tell one from other input without a store lookup.
func LooksLike(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Matches reports, in constant time, whether the credential's secret has
// the digest the store holds for its kind: digest for a password,
// refreshDigest for a refresh token.
func (c Credential) Matches(digest, refreshDigest []byte) bool {
	want := digest
	if c.Kind == KindRefresh {
		want = refreshDigest
	}
	return VerifyDigest(want, c.secret)
}

// VerifyDigest reports, in constant time, whether SHA-256(secret) equals
// want. It does the same work whatever want holds, so callers without a
// record can call it with DummyDigest to keep their timing uniform.
func VerifyDigest(want []byte, secret string) bool {
	got := digest(secret)
	return subtle.ConstantTimeCompare(got, want) == 1
}

// DummyDigest is a digest no secret has in practice; compare against it
// when there is no record, so that unknown ids cost what wrong secrets cost.
var DummyDigest = make([]byte, sha256.Size)

// Secret returns the credential's secret part, for VerifyDigest.
func (c Credential) Secret() string { return c.secret }

// RefreshToken returns the refresh token of an app password. It is stable:
// every login with the same password gets the same refresh token.
func RefreshToken(password string) (string, error) {
	c, err := Parse(password)
	if err != nil || c.Kind != KindPassword {
		return "", ErrMalformed
	}
	return c.RefreshToken(), nil
}

// RefreshToken returns the refresh token of the credential: derived from
// it for a password, the credential itself for a refresh token.
func (c Credential) RefreshToken() string {
	if c.Kind == KindRefresh {
		return RefreshPrefix + c.ID + "_" + c.secret
	}
	return RefreshPrefix + c.ID + "_" + refreshSecret(c.secret)
}

// Redact returns the credential's public part, "rbp_<id>_…", for logs.
func Redact(s string) string {
	c, err := Parse(s)
	if err != nil {
		return "(not an app password)"
	}
	return s[:len(PasswordPrefix)] + c.ID + "_…"
}

func refreshSecret(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(refreshLabel)
	return encoding.EncodeToString(m.Sum(nil)[:secretBytes])
}

func digest(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func valid(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") == ""
}
