package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// Key ID formats: the value of Config.KeyIDFormat and the kidFormat
// arguments.
const (
	// KeyIDThumbprint is the JWK thumbprint (RFC 7638, SHA-256, base64url
	// without padding) as distribution v3 computes it for the keys of its
	// rootcertbundle. See Thumbprint.
	KeyIDThumbprint = "thumbprint"
	// KeyIDLibtrust is the libtrust key ID that distribution 2.8 computes for
	// the keys of its rootcertbundle. See LibtrustKeyID.
	KeyIDLibtrust = "libtrust"
)

// KeyID returns the key ID of pub in format, KeyIDThumbprint or
// KeyIDLibtrust; "" means KeyIDThumbprint.
func KeyID(pub crypto.PublicKey, format string) (string, error) {
	kid, err := keyID(pub, format)
	if err != nil {
		return "", fmt.Errorf("tokens: key id: %w", err)
	}
	return kid, nil
}

func keyID(pub crypto.PublicKey, format string) (string, error) {
	switch format {
	case "", KeyIDThumbprint:
		return thumbprint(pub)
	case KeyIDLibtrust:
		return libtrustKeyID(pub)
	default:
		return "", fmt.Errorf("unknown kid format %q (want %q or %q)", format, KeyIDThumbprint, KeyIDLibtrust)
	}
}

// LibtrustKeyID returns the key ID docker/libtrust gives pub, the one
// distribution 2.8 looks up a token's kid in: the SHA-256 of the DER
// SubjectPublicKeyInfo, truncated to 240 bits, base32 without padding, in 12
// groups of 4 characters joined by ':'.
func LibtrustKeyID(pub crypto.PublicKey) (string, error) {
	kid, err := libtrustKeyID(pub)
	if err != nil {
		return "", fmt.Errorf("tokens: libtrust key id: %w", err)
	}
	return kid, nil
}

func libtrustKeyID(pub crypto.PublicKey) (string, error) {
	if _, err := algorithmFor(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:30])
	var b strings.Builder
	b.Grow(len(enc) + len(enc)/4)
	for i := 0; i < len(enc); i += 4 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(enc[i : i+4])
	}
	return b.String(), nil
}

// Thumbprint returns the SHA-256 JWK thumbprint of pub, base64url without
// padding, computed the way distribution v3 computes the kid of each
// rootcertbundle key (GetJWKThumbprint): the RFC 7638 members in
// lexicographic order, with every number in its minimal big-endian form.
//
// For EC keys this is not quite RFC 7638, which wants the coordinates padded
// to the curve size: when X or Y starts with a zero byte (about one P-256
// key in 128) the two differ, and only this form is what v3 trusts.
// GenerateKey avoids such keys, so that both conventions agree on the keys
// it makes.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	kid, err := thumbprint(pub)
	if err != nil {
		return "", fmt.Errorf("tokens: thumbprint: %w", err)
	}
	return kid, nil
}

func thumbprint(pub crypto.PublicKey) (string, error) {
	if _, err := algorithmFor(pub); err != nil {
		return "", err
	}
	var members string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		x, y, err := coordinates(k)
		if err != nil {
			return "", err
		}
		members = `{"crv":"` + k.Curve.Params().Name +
			`","kty":"EC","x":"` + b64(trimZeros(x)) +
			`","y":"` + b64(trimZeros(y)) + `"}`
	case *rsa.PublicKey:
		members = `{"e":"` + b64(big.NewInt(int64(k.E)).Bytes()) +
			`","kty":"RSA","n":"` + b64(k.N.Bytes()) + `"}`
	}
	sum := sha256.Sum256([]byte(members))
	return b64(sum[:]), nil
}

// coordinates returns the EC point's X and Y, each padded to the curve
// size, as RFC 7518 §6.2.1 wants them in a JWK.
func coordinates(k *ecdsa.PublicKey) (x, y []byte, err error) {
	raw, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, nil, err
	}
	n := (len(raw) - 1) / 2
	return raw[1 : 1+n], raw[1+n:], nil
}

// hasLeadingZero reports whether X or Y of k starts with a zero byte, so
// that Thumbprint differs from a padded RFC 7638 thumbprint.
func hasLeadingZero(k *ecdsa.PublicKey) bool {
	x, y, err := coordinates(k)
	return err == nil && (x[0] == 0 || y[0] == 0)
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
