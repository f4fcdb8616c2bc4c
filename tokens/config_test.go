package tokens

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
issuer: registry-bridge
service: registry.example.com
lifetime: 5m
signing_key_file: keys/signing.key
certificate_file: keys/signing.crt
previous_keys: [keys/old.crt]
kid_format: libtrust
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Issuer: "registry-bridge", Service: "registry.example.com", Lifetime: 5 * time.Minute,
		SigningKeyFile: "keys/signing.key", CertificateFile: "keys/signing.crt",
		PreviousKeys: []string{"keys/old.crt"}, KeyIDFormat: KeyIDLibtrust,
	}
	if c.Issuer != want.Issuer || c.Service != want.Service || c.Lifetime != want.Lifetime ||
		c.SigningKeyFile != want.SigningKeyFile || c.CertificateFile != want.CertificateFile ||
		len(c.PreviousKeys) != 1 || c.PreviousKeys[0] != want.PreviousKeys[0] || c.KeyIDFormat != want.KeyIDFormat {
		t.Fatalf("decoded %+v\nwant    %+v", c, want)
	}
	if err := c.Validate("token"); err != nil {
		t.Fatal(err)
	}
}

func TestConfigSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Lifetime != DefaultLifetime || c.KeyIDFormat != KeyIDThumbprint {
		t.Fatalf("defaults %+v", c)
	}
	c = Config{Lifetime: time.Minute, KeyIDFormat: KeyIDLibtrust}
	c.SetDefaults()
	if c.Lifetime != time.Minute || c.KeyIDFormat != KeyIDLibtrust {
		t.Fatalf("SetDefaults overwrote set fields: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{Issuer: "registry-bridge", Service: "registry.example.com", SigningKeyFile: "k"}
	tests := []struct {
		name string
		edit func(*Config)
		want []string // message prefixes, one per problem; none: valid
	}{
		{"minimal", func(*Config) {}, nil},
		{"all set", func(c *Config) {
			c.Lifetime, c.CertificateFile, c.PreviousKeys, c.KeyIDFormat = time.Hour, "c", []string{"p"}, KeyIDLibtrust
		}, nil},
		{"shortest lifetime", func(c *Config) { c.Lifetime = time.Minute }, nil},
		{"empty", func(c *Config) { *c = Config{} }, []string{"token.issuer: required", "token.service: required", "token.signing_key_file: required"}},
		{"padded issuer", func(c *Config) { c.Issuer = " x" }, []string{"token.issuer: "}},
		{"padded service", func(c *Config) { c.Service = "x\n" }, []string{"token.service: "}},
		{"lifetime too short", func(c *Config) { c.Lifetime = 30 * time.Second }, []string{"token.lifetime: 30s"}},
		{"lifetime too long", func(c *Config) { c.Lifetime = 61 * time.Minute }, []string{"token.lifetime: 1h1m0s"}},
		{"negative lifetime", func(c *Config) { c.Lifetime = -time.Minute }, []string{"token.lifetime: "}},
		{"fractional lifetime", func(c *Config) { c.Lifetime = 90500 * time.Millisecond }, []string{"token.lifetime: 1m30.5s: want whole seconds"}},
		{"empty previous key", func(c *Config) { c.PreviousKeys = []string{"a", ""} }, []string{"token.previous_keys[1]: "}},
		{"bad kid format", func(c *Config) { c.KeyIDFormat = "x5t" }, []string{"token.kid_format: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate("token")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d problems reported, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestConfigLoad(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	keyPEM, certPEM, err := GenerateKey(AlgES256, "", now)
	if err != nil {
		t.Fatal(err)
	}
	oldPEM, _, err := GenerateKey(AlgES256, "", now)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, dir, "signing.key", keyPEM)
	certFile := writeFile(t, dir, "signing.crt", certPEM)
	oldFile := writeFile(t, dir, "old.key", oldPEM)
	missing := filepath.Join(dir, "missing.pem")

	c := Config{Issuer: "i", Service: "s", SigningKeyFile: keyFile, CertificateFile: certFile, PreviousKeys: []string{oldFile}, KeyIDFormat: KeyIDLibtrust}
	c.SetDefaults()
	o, err := c.Load("token")
	if err != nil {
		t.Fatal(err)
	}
	if o.Issuer != "i" || o.Service != "s" || o.Lifetime != DefaultLifetime || o.Key == nil || len(o.Key.Certificates()) != 1 || len(o.Previous) != 1 {
		t.Fatalf("Load = %+v", o)
	}
	_, oldKid, err := LoadVerificationKey(oldFile, KeyIDLibtrust)
	if err != nil {
		t.Fatal(err)
	}
	if o.Previous[0].KeyID != oldKid || !strings.Contains(o.Key.KeyID(), ":") {
		t.Errorf("kids %s, %s are not in the configured libtrust form", o.Key.KeyID(), o.Previous[0].KeyID)
	}
	iss, err := NewIssuer(o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(iss.JWKS().Keys); n != 2 {
		t.Errorf("JWKS has %d keys, want 2", n)
	}

	bad := Config{Issuer: "i", Service: "s", SigningKeyFile: missing, PreviousKeys: []string{oldFile, missing}}
	_, err = bad.Load("token")
	if err == nil {
		t.Fatal("no error for missing files")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "token.signing_key_file: ") || !strings.HasPrefix(lines[1], "token.previous_keys[1]: ") {
		t.Fatalf("error = %v, want one line per bad key path", err)
	}
	if !strings.Contains(lines[0], missing) {
		t.Errorf("error %q does not name the file", lines[0])
	}

	mismatch := Config{Issuer: "i", Service: "s", SigningKeyFile: oldFile, CertificateFile: certFile}
	if _, err := mismatch.Load("token"); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("error %v, want ErrKeyMismatch", err)
	}
}

// TestConfigLoadReportsEveryFile: a broken signing key, an unreadable
// certificate and a missing previous key are all reported, each under its
// own key path.
func TestConfigLoadReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage.pem", []byte("not a key"))
	missing := filepath.Join(dir, "missing.pem")
	c := Config{Issuer: "i", Service: "s", SigningKeyFile: garbage, CertificateFile: missing, PreviousKeys: []string{missing}}
	_, err := c.Load("token")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"token.signing_key_file: ", "token.certificate_file: ", "token.previous_keys[0]: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
