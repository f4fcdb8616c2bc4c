package tokens

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Lifetime bounds and default.
const (
	// DefaultLifetime is the token lifetime when none is configured.
	DefaultLifetime = 5 * time.Minute
	// MinLifetime is the shortest lifetime: the token spec says expires_in
	// "should never be returned with less than 60 seconds", and moby,
	// containers/image and regclient round shorter values up to 60.
	MinLifetime = 60 * time.Second
	// MaxLifetime is the longest lifetime. A registry token cannot be
	// revoked, so it must not outlive a revoked app password by much.
	MaxLifetime = time.Hour
)

// Config is the `token:` section of the configuration file.
//
// JSON encodes Lifetime as nanoseconds, as encoding/json does every
// time.Duration; YAML (go.yaml.in/yaml/v3) reads and writes "5m".
type Config struct {
	// Issuer is the tokens' "iss", the registry's auth.token.issuer.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Service is the tokens' "aud", the registry's auth.token.service.
	Service string `yaml:"service" json:"service"`
	// Lifetime is how long a token is valid, whole seconds between
	// MinLifetime and MaxLifetime; 0 means DefaultLifetime.
	Lifetime time.Duration `yaml:"lifetime" json:"lifetime"`
	// SigningKeyFile is the PEM private key tokens are signed with.
	SigningKeyFile string `yaml:"signing_key_file" json:"signing_key_file"`
	// CertificateFile, optional, is the PEM certificate of the signing key,
	// leaf first, then intermediates. When set, tokens carry it as x5c and
	// verify on every registry whose rootcertbundle holds the chain's
	// root; but distribution v3 configured with only a jwks file rejects
	// any token carrying x5c.
	CertificateFile string `yaml:"certificate_file,omitempty" json:"certificate_file,omitempty"`
	// PreviousKeys are PEM files of keys tokens were signed with before
	// (public keys, certificates or private keys); the JWKS lists them so
	// that tokens signed before a key rotation keep verifying.
	PreviousKeys []string `yaml:"previous_keys,omitempty" json:"previous_keys,omitempty"`
	// KeyIDFormat is the form of the kid: KeyIDThumbprint (the default),
	// which distribution v3 looks up among its rootcertbundle keys, or
	// KeyIDLibtrust, which distribution 2.8 does. A registry configured
	// with this package's JWKS accepts either.
	KeyIDFormat string `yaml:"kid_format,omitempty" json:"kid_format,omitempty"`
}

// SetDefaults fills in the defaults of unset fields.
func (c *Config) SetDefaults() {
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.KeyIDFormat == "" {
		c.KeyIDFormat = KeyIDThumbprint
	}
}

// Validate reports every problem of the section at once, each message
// starting with its key path under prefix (normally "token", giving
// "token.lifetime: ..."). It reads no files; Load does.
func (c *Config) Validate(prefix string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if c.Issuer == "" {
		bad("issuer", "required")
	} else if strings.TrimSpace(c.Issuer) != c.Issuer {
		bad("issuer", "%q has leading or trailing space; the registry compares it exactly", c.Issuer)
	}
	if c.Service == "" {
		bad("service", "required")
	} else if strings.TrimSpace(c.Service) != c.Service {
		bad("service", "%q has leading or trailing space; the registry compares it exactly", c.Service)
	}
	if err := checkLifetime(c.Lifetime); err != nil {
		bad("lifetime", "%v", err)
	}
	if c.SigningKeyFile == "" {
		bad("signing_key_file", "required (create one with `bridge keys generate`)")
	}
	for i, f := range c.PreviousKeys {
		if f == "" {
			bad(fmt.Sprintf("previous_keys[%d]", i), "empty file name")
		}
	}
	switch c.KeyIDFormat {
	case "", KeyIDThumbprint, KeyIDLibtrust:
	default:
		bad("kid_format", "%q: want %q or %q", c.KeyIDFormat, KeyIDThumbprint, KeyIDLibtrust)
	}
	return errors.Join(errs...)
}

// Load validates the section and reads the signing key, certificate and
// previous keys it names, returning the Options for NewIssuer with Now
// unset. It reports every problem at once, each with its key path: the
// section's own (as Validate), then each named file that cannot be read or
// parsed, and a certificate that is not for the signing key. Key paths
// start with prefix, as Validate's.
func (c *Config) Load(prefix string) (Options, error) {
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("%s.%s: %w", prefix, key, err)) }
	if err := c.Validate(prefix); err != nil {
		errs = append(errs, err)
	}
	var private crypto.Signer
	if c.SigningKeyFile != "" {
		var err error
		if private, err = readPrivateKey(c.SigningKeyFile); err != nil {
			bad("signing_key_file", err)
		}
	}
	var chain []*x509.Certificate
	if c.CertificateFile != "" {
		var err error
		if chain, err = readCertificates(c.CertificateFile); err != nil {
			bad("certificate_file", err)
		}
	}
	o := Options{Issuer: c.Issuer, Service: c.Service, Lifetime: c.Lifetime}
	for i, f := range c.PreviousKeys {
		if f == "" {
			continue // Validate reported it
		}
		pub, kid, err := LoadVerificationKey(f, c.KeyIDFormat)
		if err != nil {
			bad(fmt.Sprintf("previous_keys[%d]", i), err)
			continue
		}
		o.Previous = append(o.Previous, VerificationKey{Public: pub, KeyID: kid})
	}
	if private != nil && len(errs) == 0 {
		key, err := newKey(private, chain, c.KeyIDFormat)
		switch {
		case errors.Is(err, ErrKeyMismatch):
			bad("certificate_file", fmt.Errorf("%s: %w %s", c.CertificateFile, err, c.SigningKeyFile))
		case err != nil:
			bad("signing_key_file", fmt.Errorf("%s: %w", c.SigningKeyFile, err))
		}
		o.Key = key
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, err
	}
	return o, nil
}

// checkLifetime checks a lifetime; 0 stands for DefaultLifetime.
func checkLifetime(d time.Duration) error {
	switch {
	case d == 0:
		return nil
	case d < MinLifetime || d > MaxLifetime:
		return fmt.Errorf("%s: want between %s and %s", d, MinLifetime, MaxLifetime)
	case d%time.Second != 0:
		return fmt.Errorf("%s: want whole seconds", d)
	}
	return nil
}
