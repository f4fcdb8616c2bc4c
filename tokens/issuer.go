package tokens

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/scope"
)

// ErrInvalidAccess: an access entry with actions lacks its type or name.
var ErrInvalidAccess = errors.New("invalid access entry")

// jtiBytes is the entropy of a token's "jti".
const jtiBytes = 16

// Options are the live values of an Issuer.
type Options struct {
	// Issuer is the tokens' "iss"; Service their "aud". Both required.
	Issuer, Service string
	// Lifetime is how long tokens are valid: whole seconds between
	// MinLifetime and MaxLifetime, or 0 for DefaultLifetime.
	Lifetime time.Duration
	// Key signs the tokens; required.
	Key *Key
	// Previous are keys tokens were signed with before a rotation; the
	// JWKS lists them after Key.
	Previous []VerificationKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issuer signs registry tokens. It is safe for concurrent use.
type Issuer struct {
	key      *Key
	now      func() time.Time
	lifetime int64 // seconds
	// header is the encoded JOSE header and the '.' after it.
	header string
	// claimsPrefix opens the claims object with "iss" and "aud".
	claimsPrefix []byte
	// sigLen is the length of a raw signature.
	sigLen int
	jwks   JWKS
}

// NewIssuer returns an Issuer for o. It fails if an option is missing or
// out of range, or if Key's certificate is not valid at o.Now().
func NewIssuer(o Options) (*Issuer, error) {
	var errs []error
	if o.Issuer == "" {
		errs = append(errs, errors.New("issuer required"))
	}
	if o.Service == "" {
		errs = append(errs, errors.New("service required"))
	}
	if err := checkLifetime(o.Lifetime); err != nil {
		errs = append(errs, fmt.Errorf("lifetime %w", err))
	}
	if o.Key == nil {
		errs = append(errs, errors.New("signing key required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tokens: new issuer: %w", err)
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if chain := o.Key.chain; len(chain) > 0 {
		now := o.Now()
		if leaf := chain[0]; now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return nil, fmt.Errorf("tokens: new issuer: certificate %q is valid only from %s to %s; registries would reject every token",
				leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}

	h := struct {
		Alg string   `json:"alg"`
		Typ string   `json:"typ"`
		Kid string   `json:"kid"`
		X5c []string `json:"x5c,omitempty"`
	}{Alg: o.Key.Algorithm(), Typ: "JWT", Kid: o.Key.kid}
	for _, c := range o.Key.chain {
		h.X5c = append(h.X5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("tokens: new issuer: %w", err)
	}

	i := &Issuer{
		key:      o.Key,
		now:      o.Now,
		lifetime: int64(o.Lifetime / time.Second),
		header:   base64.RawURLEncoding.EncodeToString(hj) + ".",
		sigLen:   signatureLength(o.Key),
	}
	i.claimsPrefix = append(i.claimsPrefix, `{"iss":`...)
	i.claimsPrefix = appendJSONString(i.claimsPrefix, o.Issuer)
	i.claimsPrefix = append(i.claimsPrefix, `,"aud":`...)
	i.claimsPrefix = appendJSONString(i.claimsPrefix, o.Service)
	i.claimsPrefix = append(i.claimsPrefix, `,"sub":`...)

	current, err := NewJWK(o.Key.Public(), o.Key.kid)
	if err != nil {
		return nil, fmt.Errorf("tokens: new issuer: %w", err)
	}
	i.jwks.Keys = append(i.jwks.Keys, current)
	seen := map[string]bool{current.Kid: true}
	for _, p := range o.Previous {
		if seen[p.KeyID] {
			continue
		}
		seen[p.KeyID] = true
		j, err := NewJWK(p.Public, p.KeyID)
		if err != nil {
			return nil, fmt.Errorf("tokens: new issuer: previous key %s: %w", p.KeyID, err)
		}
		i.jwks.Keys = append(i.jwks.Keys, j)
	}
	return i, nil
}

// Token is a signed registry token and the times the token endpoint
// reports with it.
type Token struct {
	// Raw is the compact JWS, the "token" and "access_token" of the
	// response.
	Raw string
	// ID is the token's "jti"; it may be logged.
	ID string
	// IssuedAt is the token's "iat", for the response's "issued_at".
	IssuedAt time.Time
	// ExpiresAt is the token's "exp".
	ExpiresAt time.Time
	// ExpiresIn is ExpiresAt − IssuedAt in whole seconds, at least 60, for
	// the response's "expires_in".
	ExpiresIn int
}

// Issue signs a token for subject ("" for an anonymous request) granting
// access. Entries without actions are left out; the "access" claim is []
// when nothing is granted, never null. An entry with actions but no type or
// name is an error wrapping ErrInvalidAccess.
func (i *Issuer) Issue(subject string, access []scope.Scope) (Token, error) {
	size := len(i.claimsPrefix) + len(subject) + 160
	for _, a := range access {
		if len(a.Actions) == 0 {
			continue
		}
		if a.Type == "" || a.Name == "" {
			return Token{}, fmt.Errorf("tokens: issue: %w: %q", ErrInvalidAccess, a.String())
		}
		size += 48 + len(a.Type) + len(a.Class) + len(a.Name)
		for _, act := range a.Actions {
			size += len(act) + 3
		}
	}

	var jti [jtiBytes]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return Token{}, fmt.Errorf("tokens: issue: %w", err)
	}
	iat := i.now().Unix()
	exp := iat + i.lifetime

	// One buffer holds the claims JSON and, after it, their encoding; it
	// is then reused for the encoded signature.
	buf := make([]byte, 0, size+base64.RawURLEncoding.EncodedLen(size))
	buf = append(buf, i.claimsPrefix...)
	buf = appendJSONString(buf, subject)
	buf = append(buf, `,"exp":`...)
	buf = strconv.AppendInt(buf, exp, 10)
	buf = append(buf, `,"nbf":`...)
	buf = strconv.AppendInt(buf, iat, 10)
	buf = append(buf, `,"iat":`...)
	buf = strconv.AppendInt(buf, iat, 10)
	buf = append(buf, `,"jti":"`...)
	jtiStart := len(buf)
	buf = base64.RawURLEncoding.AppendEncode(buf, jti[:])
	id := string(buf[jtiStart:])
	buf = append(buf, `","access":[`...)
	first := true
	for _, a := range access {
		if len(a.Actions) == 0 {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendAccess(buf, a)
	}
	buf = append(buf, "]}"...)

	claims := buf
	encoded := base64.RawURLEncoding.AppendEncode(buf[len(buf):], claims)
	var b strings.Builder
	b.Grow(len(i.header) + len(encoded) + 1 + base64.RawURLEncoding.EncodedLen(i.sigLen))
	b.WriteString(i.header)
	b.Write(encoded)
	// The signing input is a prefix of the token: b keeps appending after
	// it without touching the bytes String already returned.
	sig, err := i.key.method.Sign(b.String(), i.key.private)
	if err != nil {
		return Token{}, fmt.Errorf("tokens: issue: sign: %w", err)
	}
	b.WriteByte('.')
	b.Write(base64.RawURLEncoding.AppendEncode(buf[:0], sig))

	return Token{
		Raw:       b.String(),
		ID:        id,
		IssuedAt:  time.Unix(iat, 0).UTC(),
		ExpiresAt: time.Unix(exp, 0).UTC(),
		ExpiresIn: int(i.lifetime),
	}, nil
}

// JWKS returns the verification keys: the signing key first, then the
// previous keys, each under the kid its tokens carry.
func (i *Issuer) JWKS() JWKS {
	keys := make([]JWK, len(i.jwks.Keys))
	copy(keys, i.jwks.Keys)
	return JWKS{Keys: keys}
}

// KeyID returns the kid of the tokens i signs.
func (i *Issuer) KeyID() string { return i.key.kid }

func appendAccess(buf []byte, a scope.Scope) []byte {
	buf = append(buf, `{"type":`...)
	buf = appendJSONString(buf, a.Type)
	if a.Class != "" {
		buf = append(buf, `,"class":`...)
		buf = appendJSONString(buf, a.Class)
	}
	buf = append(buf, `,"name":`...)
	buf = appendJSONString(buf, a.Name)
	buf = append(buf, `,"actions":[`...)
	for j, act := range a.Actions {
		if j > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, act)
	}
	return append(buf, "]}"...)
}

// signatureLength returns the length of k's raw JWS signatures: R||S for
// ECDSA (RFC 7518 §3.4), the modulus size for RSA.
func signatureLength(k *Key) int {
	switch p := k.Public().(type) {
	case *ecdsa.PublicKey:
		return 2 * ((p.Curve.Params().BitSize + 7) / 8)
	case *rsa.PublicKey:
		return p.Size()
	}
	return 0
}
