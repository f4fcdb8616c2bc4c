package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSigningKey(t *testing.T) {
	dir := t.TempDir()
	ec := newPrivateKey(t, "ES256").(*ecdsa.PrivateKey)
	ec384 := newPrivateKey(t, "ES384")
	rs := newPrivateKey(t, "RS256").(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	encrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   []byte("ciphertext"),
	})
	ecCert := selfSigned(t, ec)
	otherCert := selfSigned(t, newPrivateKey(t, "ES256"))

	tests := []struct {
		name    string
		key     []byte
		cert    []byte // nil: no certificate file
		wantAlg string
		wantPub crypto.PublicKey
		wantErr error  // errors.Is target, when set
		errHas  string // substring of the error, when wantAlg is ""
	}{
		{name: "PKCS#8 EC", key: pkcs8PEM(t, ec), wantAlg: "ES256", wantPub: ec.Public()},
		{name: "SEC1 EC", key: pemBlock("EC PRIVATE KEY", sec1), wantAlg: "ES256", wantPub: ec.Public()},
		{name: "openssl ecparam -genkey", key: append(ecParams, pemBlock("EC PRIVATE KEY", sec1)...), wantAlg: "ES256", wantPub: ec.Public()},
		{name: "PKCS#8 P-384", key: pkcs8PEM(t, ec384), wantAlg: "ES384", wantPub: ec384.Public()},
		{name: "PKCS#1 RSA", key: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rs)), wantAlg: "RS256", wantPub: rs.Public()},
		{name: "PKCS#8 RSA", key: pkcs8PEM(t, rs), wantAlg: "RS256", wantPub: rs.Public()},
		{name: "with certificate", key: pkcs8PEM(t, ec), cert: certsPEM(ecCert), wantAlg: "ES256", wantPub: ec.Public()},
		{name: "certificate for another key", key: pkcs8PEM(t, ec), cert: certsPEM(otherCert), wantErr: ErrKeyMismatch},
		{name: "certificate file holds a key", key: pkcs8PEM(t, ec), cert: pkcs8PEM(t, ec), errHas: `unsupported PEM block "PRIVATE KEY"`},
		{name: "empty certificate file", key: pkcs8PEM(t, ec), cert: []byte{}, errHas: "no PEM certificate"},
		{name: "passphrase, legacy PEM", key: encrypted, wantErr: ErrEncryptedKey},
		{name: "passphrase, PKCS#8", key: pemBlock("ENCRYPTED PRIVATE KEY", []byte("x")), wantErr: ErrEncryptedKey},
		{name: "unknown PEM type", key: pemBlock("OPENSSH PRIVATE KEY", []byte("x")), errHas: `unsupported PEM block "OPENSSH PRIVATE KEY"`},
		{name: "public key", key: pkixPEM(t, ec.Public()), errHas: `unsupported PEM block "PUBLIC KEY"`},
		{name: "not PEM", key: []byte("hello"), errHas: "no PEM private key"},
		{name: "two keys", key: append(pkcs8PEM(t, ec), pkcs8PEM(t, rs)...), errHas: "more than one private key"},
		{name: "corrupt DER", key: pemBlock("EC PRIVATE KEY", []byte("junk")), errHas: "EC PRIVATE KEY:"},
		{name: "ed25519", key: pkcs8PEM(t, edKey), wantErr: ErrUnsupportedKey},
		{name: "RSA 1024", key: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), wantErr: ErrUnsupportedKey},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyFile := writeFile(t, dir, "key"+string(rune('a'+i))+".pem", tt.key)
			certFile := ""
			if tt.cert != nil {
				certFile = writeFile(t, dir, "cert"+string(rune('a'+i))+".pem", tt.cert)
			}
			k, err := LoadSigningKey(keyFile, certFile, "")
			if tt.wantAlg == "" {
				if err == nil {
					t.Fatal("no error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not contain %q", err, tt.errHas)
				}
				named := keyFile
				if tt.cert != nil && (tt.wantErr == ErrKeyMismatch || tt.errHas != "") {
					named = certFile
				}
				if !strings.Contains(err.Error(), named) {
					t.Errorf("error %q does not name the file %s", err, named)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tt.wantAlg {
				t.Errorf("Algorithm = %s, want %s", k.Algorithm(), tt.wantAlg)
			}
			if !samePublic(k.Public(), tt.wantPub) {
				t.Error("Public is not the file's key")
			}
			want, err := Thumbprint(tt.wantPub)
			if err != nil {
				t.Fatal(err)
			}
			if k.KeyID() != want {
				t.Errorf("KeyID = %s, want the thumbprint %s", k.KeyID(), want)
			}
			if (tt.cert != nil) != (len(k.Certificates()) > 0) {
				t.Errorf("Certificates = %d, want a chain iff a certificate file is given", len(k.Certificates()))
			}
		})
	}
}

func TestLoadSigningKeyMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.key")
	_, err := LoadSigningKey(missing, "", "")
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want one naming %s", err, missing)
	}
}

func TestLoadSigningKeyChainAndKidFormat(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	root := newPrivateKey(t, "ES256")
	rootCert := newCert(t, root.Public(), nil, root, "root", true, now.Add(-time.Hour), now.Add(time.Hour))
	inter := newPrivateKey(t, "ES256")
	interCert := newCert(t, inter.Public(), rootCert, root, "intermediate", true, now.Add(-time.Hour), now.Add(time.Hour))
	leaf := newPrivateKey(t, "ES256")
	leafCert := newCert(t, leaf.Public(), interCert, inter, "leaf", false, now.Add(-time.Hour), now.Add(time.Hour))

	k, err := LoadSigningKey(writeFile(t, dir, "k", pkcs8PEM(t, leaf)), writeFile(t, dir, "c", certsPEM(leafCert, interCert)), KeyIDLibtrust)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Certificates(); len(got) != 2 || !got[0].Equal(leafCert) || !got[1].Equal(interCert) {
		t.Fatalf("Certificates = %d certs, want leaf then intermediate", len(got))
	}
	if want, _ := LibtrustKeyID(leaf.Public()); k.KeyID() != want {
		t.Errorf("KeyID = %s, want libtrust %s", k.KeyID(), want)
	}
	if got, want := string(k.CertificatePEM()), string(certsPEM(leafCert, interCert)); got != want {
		t.Errorf("CertificatePEM is not the chain")
	}
	if _, err := LoadSigningKey(writeFile(t, dir, "k2", pkcs8PEM(t, leaf)), "", "x509"); err == nil {
		t.Error("unknown kid format: no error")
	}
}

func TestLoadVerificationKey(t *testing.T) {
	dir := t.TempDir()
	ec := newPrivateKey(t, "ES256")
	rs := newPrivateKey(t, "RS256").(*rsa.PrivateKey)
	cert := selfSigned(t, ec)
	tests := []struct {
		name    string
		data    []byte
		want    crypto.PublicKey
		wantErr error
	}{
		{name: "PKIX public key", data: pkixPEM(t, ec.Public()), want: ec.Public()},
		{name: "PKCS#1 public key", data: pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rs.PublicKey)), want: rs.Public()},
		{name: "certificate chain", data: certsPEM(cert, selfSigned(t, rs)), want: ec.Public()},
		{name: "private key", data: pkcs8PEM(t, rs), want: rs.Public()},
		{name: "encrypted private key", data: pemBlock("ENCRYPTED PRIVATE KEY", []byte("x")), wantErr: ErrEncryptedKey},
		{name: "unknown type", data: pemBlock("SSH2 PUBLIC KEY", []byte("x"))},
		{name: "empty", data: nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, dir, "pub"+string(rune('a'+i)), tt.data)
			for _, format := range []string{KeyIDThumbprint, KeyIDLibtrust} {
				pub, kid, err := LoadVerificationKey(file, format)
				if tt.want == nil {
					if err == nil || !strings.Contains(err.Error(), file) {
						t.Fatalf("error %v, want one naming %s", err, file)
					}
					if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
						t.Fatalf("error %v, want %v", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if !samePublic(pub, tt.want) {
					t.Fatal("wrong key")
				}
				if want, _ := KeyID(tt.want, format); kid != want {
					t.Errorf("%s kid = %s, want %s", format, kid, want)
				}
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		alg     string
		wantAlg string
	}{
		{"", "ES256"},
		{"ES256", "ES256"},
		{"RS256", "RS256"},
	}
	for _, tt := range tests {
		t.Run("alg="+tt.alg, func(t *testing.T) {
			keyPEM, certPEM, err := GenerateKey(tt.alg, "bridge.example", now)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("key PEM is not PKCS#8: %.40q", keyPEM)
			}
			dir := t.TempDir()
			k, err := LoadSigningKey(writeFile(t, dir, "signing.key", keyPEM), writeFile(t, dir, "signing.crt", certPEM), "")
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tt.wantAlg {
				t.Errorf("Algorithm = %s, want %s", k.Algorithm(), tt.wantAlg)
			}
			if rk, ok := k.Public().(*rsa.PublicKey); ok && rk.N.BitLen() != generateRSABits {
				t.Errorf("RSA key of %d bits, want %d", rk.N.BitLen(), generateRSABits)
			}
			c := k.Certificates()[0]
			if c.Subject.CommonName != "bridge.example" {
				t.Errorf("CommonName = %q", c.Subject.CommonName)
			}
			if !c.NotBefore.Before(now) || c.NotAfter.Before(now.AddDate(9, 11, 0)) {
				t.Errorf("valid %s to %s, want from before now for about ten years", c.NotBefore, c.NotAfter)
			}
			// The certificate is its own root: a registry's rootcertbundle.
			pool := x509.NewCertPool()
			pool.AddCert(c)
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("certificate does not verify as its own root: %v", err)
			}
		})
	}
	if _, _, err := GenerateKey("EdDSA", "", now); err == nil {
		t.Error("GenerateKey(EdDSA): no error")
	}
}

// TestGenerateKeyNoLeadingZero draws enough keys that, were leading-zero
// keys not redrawn, one would show up with probability 1-(127/128)^400 ≈ 96%.
func TestGenerateKeyNoLeadingZero(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for range 400 {
		keyPEM, _, err := GenerateKey(AlgES256, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(keyPEM)
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if hasLeadingZero(&k.(*ecdsa.PrivateKey).PublicKey) {
			t.Fatal("GenerateKey returned a key with a leading zero coordinate")
		}
	}
}

func TestNewKey(t *testing.T) {
	ec := newPrivateKey(t, "ES256")
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	tests := []struct {
		name    string
		key     crypto.Signer
		chain   []*x509.Certificate
		wantErr error
	}{
		{"ok", ec, []*x509.Certificate{selfSigned(t, ec)}, nil},
		{"ed25519", ed, nil, ErrUnsupportedKey},
		{"P-224", p224, nil, ErrUnsupportedKey},
		{"foreign signer", signerOnly{ec}, nil, ErrUnsupportedKey},
		{"mismatched chain", ec, []*x509.Certificate{selfSigned(t, newPrivateKey(t, "ES256"))}, ErrKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKey(tt.key, tt.chain, "")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// signerOnly hides the concrete key type, as an HSM or KMS signer would.
type signerOnly struct{ crypto.Signer }
