package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	v3token "github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/docker/libtrust"
)

// jwtMDKey is the example key of the distribution spec's jwt.md, whose kids
// docs/protocol.md §1.4 records.
func jwtMDKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	x, err := base64.RawURLEncoding.DecodeString("m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q")
	if err != nil {
		t.Fatal(err)
	}
	y, err := base64.RawURLEncoding.DecodeString("dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestKeyIDVectors(t *testing.T) {
	pub := jwtMDKey(t)
	tests := []struct {
		name   string
		format string
		want   string
	}{
		{"default is thumbprint", "", "8qjioA3ZA7ti2JIE7c-U8smBFuZolQZvhSHDPU3hhB8"},
		{"thumbprint", KeyIDThumbprint, "8qjioA3ZA7ti2JIE7c-U8smBFuZolQZvhSHDPU3hhB8"},
		{"libtrust", KeyIDLibtrust, "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KeyID(pub, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("KeyID(%q) = %s, want %s", tt.format, got, tt.want)
			}
		})
	}
	if _, err := KeyID(pub, "sha1"); err == nil {
		t.Fatal("KeyID with an unknown format: no error")
	}
}

// TestKeyIDsMatchRegistries checks both kid forms against the code the
// registries run: distribution v3's GetJWKThumbprint and docker/libtrust's
// KeyID, which distribution 2.8 uses.
func TestKeyIDsMatchRegistries(t *testing.T) {
	tests := []struct {
		name string
		key  crypto.PublicKey
	}{
		{"P-256", newPrivateKey(t, "ES256").Public()},
		{"P-256 leading zero", leadingZeroKey(t).Public()},
		{"P-384", newPrivateKey(t, "ES384").Public()},
		{"P-521", newPrivateKey(t, "ES512").Public()},
		{"RSA", newPrivateKey(t, "RS256").Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := Thumbprint(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if want := v3token.GetJWKThumbprint(tt.key); tp != want {
				t.Errorf("Thumbprint = %s, distribution v3 computes %s", tp, want)
			}
			lt, err := LibtrustKeyID(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			ltk, err := libtrust.FromCryptoPublicKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if want := ltk.KeyID(); lt != want {
				t.Errorf("LibtrustKeyID = %s, libtrust computes %s", lt, want)
			}
		})
	}
}

// TestThumbprintLeadingZero pins the v3 quirk: for a coordinate with a
// leading zero byte, Thumbprint drops it, unlike RFC 7638.
func TestThumbprintLeadingZero(t *testing.T) {
	k := leadingZeroKey(t)
	x, y, err := coordinates(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rfc := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`))
	got, err := Thumbprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got == b64(rfc[:]) {
		t.Fatalf("Thumbprint = padded RFC 7638 thumbprint %s; distribution v3 does not trust that one", got)
	}
}

func TestKeyIDUnsupported(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  crypto.PublicKey
	}{
		{"ed25519", edPub},
		{"P-224", &p224.PublicKey},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, format := range []string{KeyIDThumbprint, KeyIDLibtrust} {
				_, err := KeyID(tt.key, format)
				if !errors.Is(err, ErrUnsupportedKey) {
					t.Errorf("KeyID(%s) error = %v, want ErrUnsupportedKey", format, err)
				}
			}
		})
	}
}

func TestLibtrustKeyIDForm(t *testing.T) {
	id, err := LibtrustKeyID(newPrivateKey(t, "ES256").Public())
	if err != nil {
		t.Fatal(err)
	}
	groups := strings.Split(id, ":")
	if len(groups) != 12 {
		t.Fatalf("%s: %d groups, want 12", id, len(groups))
	}
	for _, g := range groups {
		if len(g) != 4 || strings.Trim(g, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("%s: group %q is not 4 base32 characters", id, g)
		}
	}
}
