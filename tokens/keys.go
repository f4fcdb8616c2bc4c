package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors; the functions of this package wrap them with %w.
var (
	// ErrUnsupportedKey: the key is not one both distribution v3 and 2.8
	// verify: ECDSA on P-256, P-384 or P-521, or RSA of 2048 bits or more.
	ErrUnsupportedKey = errors.New("unsupported key")
	// ErrEncryptedKey: the PEM key is protected by a passphrase.
	ErrEncryptedKey = errors.New("encrypted PEM keys are not supported")
	// ErrKeyMismatch: the certificate is not for the signing key.
	ErrKeyMismatch = errors.New("certificate does not match the signing key")
)

// Algorithms GenerateKey makes keys for.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

const (
	minRSABits      = 2048
	generateRSABits = 3072
	// certValidity is how long a GenerateKey certificate is valid.
	certValidity = 10 * 365 * 24 * time.Hour
	// certBackdate covers clock skew between the bridge and the registry.
	certBackdate = time.Hour
)

// Key is a token signing key: the private key, the algorithm it signs with,
// its key ID, and the optional certificate chain that tokens carry as x5c.
// A Key is immutable and safe for concurrent use.
type Key struct {
	private crypto.Signer
	method  jwt.SigningMethod
	kid     string
	chain   []*x509.Certificate
}

// NewKey makes a Key of a private key, with the key ID in kidFormat (see
// KeyID) and an optional certificate chain, leaf first, whose leaf must be
// for the key.
func NewKey(private crypto.Signer, chain []*x509.Certificate, kidFormat string) (*Key, error) {
	k, err := newKey(private, chain, kidFormat)
	if err != nil {
		return nil, fmt.Errorf("tokens: new key: %w", err)
	}
	return k, nil
}

func newKey(private crypto.Signer, chain []*x509.Certificate, kidFormat string) (*Key, error) {
	switch private.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		// golang-jwt signs with these two types only.
		return nil, fmt.Errorf("%w: %T (want *ecdsa.PrivateKey or *rsa.PrivateKey)", ErrUnsupportedKey, private)
	}
	alg, err := algorithmFor(private.Public())
	if err != nil {
		return nil, err
	}
	kid, err := keyID(private.Public(), kidFormat)
	if err != nil {
		return nil, err
	}
	if len(chain) > 0 && !samePublic(chain[0].PublicKey, private.Public()) {
		return nil, ErrKeyMismatch
	}
	return &Key{private: private, method: jwt.GetSigningMethod(alg), kid: kid, chain: slices.Clone(chain)}, nil
}

// Algorithm returns the JWS algorithm the key signs with: ES256, ES384,
// ES512 or RS256.
func (k *Key) Algorithm() string { return k.method.Alg() }

// KeyID returns the kid tokens signed with k carry.
func (k *Key) KeyID() string { return k.kid }

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.private.Public() }

// Certificates returns a copy of the certificate chain, leaf first, or nil
// when no certificate is configured.
func (k *Key) Certificates() []*x509.Certificate { return slices.Clone(k.chain) }

// CertificatePEM returns the certificate chain PEM-encoded, leaf first, or
// nil when no certificate is configured.
func (k *Key) CertificatePEM() []byte {
	var out []byte
	for _, c := range k.chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// LoadSigningKey reads a PEM private key from keyFile (PKCS#8 "PRIVATE KEY",
// SEC 1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY") and, when certFile is
// not "", the certificate chain tokens then carry as x5c: leaf first, and
// the leaf must be for the key. kidFormat is KeyIDThumbprint (or "") or
// KeyIDLibtrust.
func LoadSigningKey(keyFile, certFile, kidFormat string) (*Key, error) {
	private, err := readPrivateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tokens: load signing key: %w", err)
	}
	var chain []*x509.Certificate
	if certFile != "" {
		if chain, err = readCertificates(certFile); err != nil {
			return nil, fmt.Errorf("tokens: load certificate: %w", err)
		}
	}
	k, err := newKey(private, chain, kidFormat)
	switch {
	case errors.Is(err, ErrKeyMismatch):
		return nil, fmt.Errorf("tokens: load certificate %s: %w %s", certFile, err, keyFile)
	case err != nil:
		return nil, fmt.Errorf("tokens: load signing key %s: %w", keyFile, err)
	}
	return k, nil
}

// readPrivateKey reads and parses the PEM private key in file.
func readPrivateKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	private, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return private, nil
}

// readCertificates reads and parses the PEM certificate chain in file.
func readCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	chain, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return chain, nil
}

// VerificationKey is a public key a registry may trust, with the kid tokens
// signed by its private key carried.
type VerificationKey struct {
	Public crypto.PublicKey
	KeyID  string
}

// LoadVerificationKey reads the public key of a PEM file, for the JWKS of
// key rotation (previous_keys). The file's first PEM block decides: a
// "PUBLIC KEY" or "RSA PUBLIC KEY", a "CERTIFICATE" (the leaf of a chain),
// or a private key in any form LoadSigningKey reads. It returns the key and
// its kid in kidFormat.
func LoadVerificationKey(file, kidFormat string) (crypto.PublicKey, string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("tokens: load verification key: %w", err)
	}
	pub, err := parsePublicKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("tokens: load verification key %s: %w", file, err)
	}
	kid, err := keyID(pub, kidFormat)
	if err != nil {
		return nil, "", fmt.Errorf("tokens: load verification key %s: %w", file, err)
	}
	return pub, kid, nil
}

// GenerateKey makes a signing key for alg, AlgES256 (P-256; also for "") or
// AlgRS256 (RSA 3072), and a self-signed certificate for it, valid for ten
// years from an hour before now, that serves as the registry's
// rootcertbundle. It returns both PEM-encoded: the key as PKCS#8 "PRIVATE
// KEY", which its writer should keep mode 0600.
//
// EC keys whose X or Y coordinate starts with a zero byte are drawn again,
// so that the key's Thumbprint is also its RFC 7638 thumbprint and every
// verifier agrees on its kid.
func GenerateKey(alg, commonName string, now time.Time) (keyPEM, certPEM []byte, err error) {
	var private crypto.Signer
	switch alg {
	case "", AlgES256:
		for {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, nil, fmt.Errorf("tokens: generate key: %w", err)
			}
			if !hasLeadingZero(&k.PublicKey) {
				private = k
				break
			}
		}
	case AlgRS256:
		k, err := rsa.GenerateKey(rand.Reader, generateRSABits)
		if err != nil {
			return nil, nil, fmt.Errorf("tokens: generate key: %w", err)
		}
		private = k
	default:
		return nil, nil, fmt.Errorf("tokens: generate key: unknown algorithm %q (want %s or %s)", alg, AlgES256, AlgRS256)
	}
	der, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return nil, nil, fmt.Errorf("tokens: generate key: %w", err)
	}
	cert, err := selfSign(private, commonName, now)
	if err != nil {
		return nil, nil, fmt.Errorf("tokens: generate key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})
	return keyPEM, certPEM, nil
}

// selfSign returns the DER of a self-signed CA certificate for private.
func selfSign(private crypto.Signer, commonName string, now time.Time) ([]byte, error) {
	if commonName == "" {
		commonName = "registry-bridge token signing"
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, private.Public(), private)
}

// parsePrivateKey returns the one private key of a PEM file. It skips
// "EC PARAMETERS" blocks, which `openssl ecparam -genkey` writes first.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	var found crypto.Signer
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		k, err := parsePrivateBlock(block)
		if err != nil {
			return nil, err
		}
		if found != nil {
			return nil, errors.New("more than one private key")
		}
		found = k
	}
	if found == nil {
		return nil, errors.New("no PEM private key found")
	}
	if _, err := algorithmFor(found.Public()); err != nil {
		return nil, err
	}
	return found, nil
}

func parsePrivateBlock(block *pem.Block) (crypto.Signer, error) {
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, fmt.Errorf("%w; decrypt it first, e.g. openssl pkey -in KEY -out PLAIN", ErrEncryptedKey)
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", block.Type, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, k)
	}
	return s, nil
}

// parsePublicKey returns the public key of the first PEM block of data.
func parsePublicKey(data []byte) (crypto.PublicKey, error) {
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM key or certificate found")
		}
		if block.Type != "EC PARAMETERS" {
			break
		}
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = c.PublicKey
		}
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		var s crypto.Signer
		if s, err = parsePrivateBlock(block); err == nil {
			pub = s.Public()
		}
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE or a private key)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", block.Type, err)
	}
	if _, err := algorithmFor(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// parseCertificates returns every certificate of a PEM file, in file order.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unsupported PEM block %q (want CERTIFICATE)", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return chain, nil
}

// algorithmFor returns the JWS algorithm for pub, or ErrUnsupportedKey.
func algorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("%w: ECDSA on %s (want P-256, P-384 or P-521)", ErrUnsupportedKey, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("%w: RSA %d bits (want %d or more)", ErrUnsupportedKey, k.N.BitLen(), minRSABits)
		}
		return "RS256", nil
	default:
		return "", fmt.Errorf("%w: %T (distribution 2.8 verifies only ECDSA and RSA)", ErrUnsupportedKey, pub)
	}
}

func samePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
