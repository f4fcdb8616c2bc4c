package oidc

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of OpenLogin, for callers that branch.
var (
	// ErrLoginInvalid: the value is not one SealLogin made with this key
	// (another key, a changed byte, garbage).
	ErrLoginInvalid = errors.New("login state is not valid")
	// ErrLoginExpired: the value is genuine but its lifetime has passed.
	ErrLoginExpired = errors.New("login state has expired")
)

const (
	// loginVersion is the first byte of a sealed login's plaintext.
	loginVersion = 1
	// loginAD is the associated data of every sealed login.
	loginAD = "registry-bridge login-state v1"
	// maxLoginField bounds each field; NewLoginState's are 32 to 43
	// characters, and RFC 7636 §4.1 caps a verifier at 128.
	maxLoginField = 128
	// MaxSealedLogin is the longest value SealLogin returns (base64url of
	// version, expiry, three length-prefixed fields, GCM nonce and tag):
	// a caller may refuse anything longer without trying to open it.
	MaxSealedLogin = (1 + 8 + 3*(1+maxLoginField) + 12 + 16 + 2) / 3 * 4
)

// SealLogin returns st and its expiry sealed for the browser to carry, as
// base64url text of about 200 characters: the caller keeps nothing. Only a
// Sealer with the same key opens it, and any change to it is detected.
func (s *Sealer) SealLogin(st LoginState, expires time.Time) (string, error) {
	pt, err := encodeLogin(st, expires)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.login.NonceSize(), s.login.NonceSize()+len(pt)+s.login.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.login.Seal(nonce, nonce, pt, []byte(loginAD))), nil
}

// OpenLogin returns the login state and expiry that SealLogin sealed. It
// fails with ErrLoginInvalid for anything SealLogin did not make with this
// key, and with ErrLoginExpired once now has reached the expiry. It does
// not know whether the login was used already: that is the caller's to
// record.
func (s *Sealer) OpenLogin(sealed string, now time.Time) (LoginState, time.Time, error) {
	if len(sealed) > MaxSealedLogin {
		return LoginState{}, time.Time{}, fmt.Errorf("%w: %d characters", ErrLoginInvalid, len(sealed))
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	n := s.login.NonceSize()
	if err != nil || len(raw) < n+s.login.Overhead() {
		return LoginState{}, time.Time{}, fmt.Errorf("%w: malformed", ErrLoginInvalid)
	}
	pt, err := s.login.Open(nil, raw[:n], raw[n:], []byte(loginAD))
	if err != nil {
		return LoginState{}, time.Time{}, fmt.Errorf("%w: does not decrypt (wrong key or tampered)", ErrLoginInvalid)
	}
	st, expires, err := decodeLogin(pt)
	if err != nil {
		// Only this key's holder could have sealed it: a bug, not an
		// attack; still, refuse it.
		return LoginState{}, time.Time{}, fmt.Errorf("%w: %v", ErrLoginInvalid, err)
	}
	if !now.Before(expires) {
		return LoginState{}, time.Time{}, fmt.Errorf("%w: at %s", ErrLoginExpired, expires.UTC().Format(time.RFC3339))
	}
	return st, expires, nil
}

// encodeLogin lays out a login as: version byte, expiry in Unix
// milliseconds (8 bytes, big endian), then state, nonce and verifier, each
// a length byte and its bytes.
func encodeLogin(st LoginState, expires time.Time) ([]byte, error) {
	b := make([]byte, 0, 1+8+3*(1+maxLoginField))
	b = append(b, loginVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.UnixMilli()))
	for _, f := range []string{st.State, st.Nonce, st.Verifier} {
		if f == "" || len(f) > maxLoginField {
			return nil, fmt.Errorf("oidc: seal login: a field is empty or longer than %d bytes", maxLoginField)
		}
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// decodeLogin is the inverse of encodeLogin; it refuses anything
// encodeLogin would not produce.
func decodeLogin(b []byte) (LoginState, time.Time, error) {
	if len(b) < 1+8 || b[0] != loginVersion {
		return LoginState{}, time.Time{}, errors.New("unknown version")
	}
	ms := int64(binary.BigEndian.Uint64(b[1:9]))
	rest := b[9:]
	var fields [3]string
	for i := range fields {
		if len(rest) < 1 || rest[0] == 0 || int(rest[0]) > maxLoginField || len(rest) < 1+int(rest[0]) {
			return LoginState{}, time.Time{}, errors.New("truncated or bad field")
		}
		fields[i], rest = string(rest[1:1+rest[0]]), rest[1+rest[0]:]
	}
	if len(rest) != 0 {
		return LoginState{}, time.Time{}, errors.New("trailing bytes")
	}
	return LoginState{State: fields[0], Nonce: fields[1], Verifier: fields[2]}, time.UnixMilli(ms), nil
}
