package tokens

import (
	"errors"
	"fmt"
	"os"
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
// starting with its key path ("token.lifetime: ..."). It reads no files;
// Load does.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("token.%s: %s", key, fmt.Sprintf(format, args...)))
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
// section's own (as Validate), then each named file that is missing or
// does not load.
func (c *Config) Load() (Options, error) {
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	files := []struct{ key, path string }{{"signing_key_file", c.SigningKeyFile}, {"certificate_file", c.CertificateFile}}
	for i, f := range c.PreviousKeys {
		files = append(files, struct{ key, path string }{fmt.Sprintf("previous_keys[%d]", i), f})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("token.%s: %w", f.key, err))
		}
	}
	if len(errs) > 0 {
		return Options{}, errors.Join(errs...)
	}
	o := Options{Issuer: c.Issuer, Service: c.Service, Lifetime: c.Lifetime}
	key, err := LoadSigningKey(c.SigningKeyFile, c.CertificateFile, c.KeyIDFormat)
	if err != nil {
		errs = append(errs, fmt.Errorf("token.signing_key_file: %w", err))
	}
	o.Key = key
	for i, f := range c.PreviousKeys {
		pub, kid, err := LoadVerificationKey(f, c.KeyIDFormat)
		if err != nil {
			errs = append(errs, fmt.Errorf("token.previous_keys[%d]: %w", i, err))
			continue
		}
		o.Previous = append(o.Previous, VerificationKey{Public: pub, KeyID: kid})
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
