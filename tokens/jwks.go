package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"math/big"
)

// JWKS is a JSON Web Key Set (RFC 7517 §5): the form of the registry's
// `auth.token.jwks` file and of GET /.well-known/jwks.json.
type JWKS struct {
	// Keys is never nil, so that it encodes as [] and not null.
	Keys []JWK `json:"keys"`
}

// JWK is one public verification key (RFC 7517, RFC 7518 §6). Distribution
// v3 trusts it under its literal Kid, so Kid is the kid tokens carry.
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	// Crv, X and Y are set for EC keys; X and Y are padded to the curve
	// size, as RFC 7518 §6.2.1.2 requires and go-jose enforces.
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	// N and E are set for RSA keys.
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
}

// NewJWK returns the JWK of pub under kid.
func NewJWK(pub crypto.PublicKey, kid string) (JWK, error) {
	alg, err := algorithmFor(pub)
	if err != nil {
		return JWK{}, fmt.Errorf("tokens: jwk: %w", err)
	}
	j := JWK{Use: "sig", Alg: alg, Kid: kid}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		x, y, err := coordinates(k)
		if err != nil {
			return JWK{}, fmt.Errorf("tokens: jwk: %w", err)
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", k.Curve.Params().Name, b64(x), b64(y)
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	}
	return j, nil
}
