package doctor_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/doctor"
	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/tokens"
)

const (
	service = "registry.test"
	issuer  = "registry-bridge-doctor"
)

// keyPair is a signing key and its self-signed certificate on disk.
type keyPair struct{ key, cert string }

func newKeyPair(t *testing.T, alg string) keyPair {
	t.Helper()
	dir := t.TempDir()
	k, c, err := tokens.GenerateKey(alg, "doctor-test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPair{filepath.Join(dir, "signing.key"), filepath.Join(dir, "signing.crt")}
	if err := os.WriteFile(kp.key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.cert, c, 0o600); err != nil {
		t.Fatal(err)
	}
	return kp
}

// jwksFile writes the JWKS `bridge keys jwks` prints for kp.
func jwksFile(t *testing.T, kp keyPair, kidFormat string) string {
	t.Helper()
	key, err := tokens.LoadSigningKey(kp.key, "", kidFormat)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tokens.NewIssuer(tokens.Options{Issuer: issuer, Service: service, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// registryConfigFile writes a registry config.yml with auth's token
// section, the one --registry-config reads.
func registryConfigFile(t *testing.T, auth testenv.TokenAuth) string {
	t.Helper()
	text := fmt.Sprintf("version: 0.1\nauth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
		auth.Realm, auth.Service, auth.Issuer, auth.RootCertBundle)
	if auth.JWKS != "" {
		text += fmt.Sprintf("    jwks: %q\n", auth.JWKS)
	}
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func client() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func result(rep *doctor.Report, check string) (doctor.Result, bool) {
	for _, r := range rep.Results {
		if r.Check == check {
			return r, true
		}
	}
	return doctor.Result{}, false
}

func fixKeys(r doctor.Result) []string {
	var keys []string
	for _, f := range r.Fixes {
		keys = append(keys, f.Side+":"+f.Key)
	}
	return keys
}

func text(t *testing.T, rep *doctor.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRegistries makes each wiring mistake on purpose against real
// registries and checks that doctor fails naming the key to change, and
// that the right setups pass.
func TestRegistries(t *testing.T) {
	testenv.SkipUnlessE2E(t)
	ours := newKeyPair(t, tokens.AlgES256)
	other := newKeyPair(t, tokens.AlgES256)
	// The bridge is not running: its own checks only warn.
	publicURL := fmt.Sprintf("http://localhost:%d", testenv.FreePort(t))
	realm := publicURL + "/token"

	type want struct {
		check string   // the result that must fail ("" for a passing setup)
		keys  []string // side:key its fixes must name
		not   []string // side:key they must not name
	}
	for _, tc := range []struct {
		name    string
		v28     bool
		auth    testenv.TokenAuth
		token   tokens.Config // Issuer, Service and SigningKeyFile default to ours
		regFile bool          // pass --registry-config
		want    []want
	}{
		{name: "v3 correct, x5c", auth: testenv.TokenAuth{RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert}},
		{name: "v3 correct, thumbprint kid", auth: testenv.TokenAuth{RootCertBundle: ours.cert}},
		{name: "v3 correct, jwks", auth: testenv.TokenAuth{RootCertBundle: other.cert, JWKS: jwksFile(t, ours, tokens.KeyIDLibtrust)},
			token: tokens.Config{KeyIDFormat: tokens.KeyIDLibtrust}},
		{name: "2.8 correct, x5c", v28: true, auth: testenv.TokenAuth{RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert}},
		{name: "2.8 correct, libtrust kid", v28: true, auth: testenv.TokenAuth{RootCertBundle: ours.cert},
			token: tokens.Config{KeyIDFormat: tokens.KeyIDLibtrust}, regFile: true},

		{name: "v3 wrong service", auth: testenv.TokenAuth{Service: "other.test", RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert},
			want: []want{
				{check: "registry.challenge", keys: []string{"registry:auth.token.service", "bridge:token.service"}},
				{check: "registry.token", keys: []string{"bridge:token.service"}, not: []string{"registry:auth.token.issuer"}},
			}},
		{name: "2.8 wrong service", v28: true, auth: testenv.TokenAuth{Service: "other.test", RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert},
			want: []want{
				{check: "registry.challenge", keys: []string{"registry:auth.token.service", "bridge:token.service"}},
				{check: "registry.token", keys: []string{"bridge:token.service"}},
			}},
		{name: "v3 wrong realm", auth: testenv.TokenAuth{Realm: "http://localhost:1/token", RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert},
			want:  []want{{check: "registry.challenge", keys: []string{"registry:auth.token.realm", "bridge:public_url"}, not: []string{"registry:auth.token.service"}}}},
		{name: "2.8 wrong realm", v28: true, auth: testenv.TokenAuth{Realm: "http://localhost:1/token", RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert},
			want:  []want{{check: "registry.challenge", keys: []string{"registry:auth.token.realm"}}}},
		{name: "v3 wrong issuer", auth: testenv.TokenAuth{Issuer: "someone-else", RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert},
			want: []want{{check: "registry.token", keys: []string{"registry:auth.token.issuer", "bridge:token.issuer"},
				not: []string{"registry:auth.token.rootcertbundle"}}}},
		{name: "2.8 wrong issuer", v28: true, auth: testenv.TokenAuth{Issuer: "someone-else", RootCertBundle: ours.cert},
			token: tokens.Config{CertificateFile: ours.cert}, regFile: true,
			want: []want{
				// 2.8 cannot tell; the live check names both candidates…
				{check: "registry.token", keys: []string{"registry:auth.token.issuer", "registry:auth.token.rootcertbundle"}},
				// …and the registry's file settles it.
				{check: "registry.config", keys: []string{"registry:auth.token.issuer"}, not: []string{"registry:auth.token.rootcertbundle"}},
			}},
		{name: "v3 wrong certificate", auth: testenv.TokenAuth{RootCertBundle: other.cert},
			token: tokens.Config{CertificateFile: ours.cert},
			want: []want{{check: "registry.token", keys: []string{"registry:auth.token.rootcertbundle", "bridge:token.signing_key_file"},
				not: []string{"registry:auth.token.issuer"}}}},
		{name: "2.8 wrong certificate", v28: true, auth: testenv.TokenAuth{RootCertBundle: other.cert},
			token: tokens.Config{KeyIDFormat: tokens.KeyIDLibtrust}, regFile: true,
			want: []want{
				{check: "registry.token", keys: []string{"registry:auth.token.rootcertbundle"}},
				{check: "registry.config", keys: []string{"registry:auth.token.rootcertbundle"}, not: []string{"registry:auth.token.issuer"}},
			}},
		{name: "v3 jwks only with x5c", auth: testenv.TokenAuth{RootCertBundle: other.cert, JWKS: jwksFile(t, ours, tokens.KeyIDThumbprint)},
			token: tokens.Config{CertificateFile: ours.cert}, regFile: true,
			want: []want{
				{check: "registry.token", keys: []string{"bridge:token.certificate_file"}, not: []string{"registry:auth.token.issuer"}},
				{check: "registry.config", keys: []string{"bridge:token.certificate_file"}},
			}},
		{name: "2.8 thumbprint kid", v28: true, auth: testenv.TokenAuth{RootCertBundle: ours.cert},
			want: []want{{check: "registry.token", keys: []string{"bridge:token.kid_format"}, not: []string{"registry:auth.token.issuer"}}}},
		{name: "v3 libtrust kid", auth: testenv.TokenAuth{RootCertBundle: ours.cert},
			token: tokens.Config{KeyIDFormat: tokens.KeyIDLibtrust},
			want:  []want{{check: "registry.token", keys: []string{"bridge:token.kid_format"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := tc.auth
			if auth.Realm == "" {
				auth.Realm = realm
			}
			if auth.Service == "" {
				auth.Service = service
			}
			if auth.Issuer == "" {
				auth.Issuer = issuer
			}
			var host string
			if tc.v28 {
				host = testenv.Registry28(t, auth)
			} else {
				host = testenv.RegistryV3(t, auth)
			}
			tc.token.Issuer, tc.token.Service, tc.token.SigningKeyFile = issuer, service, ours.key
			tc.token.SetDefaults()
			if err := tc.token.Validate("token"); err != nil {
				t.Fatal(err)
			}
			o := doctor.Options{Registry: "http://" + host, PublicURL: publicURL, Token: tc.token, Client: client()}
			if tc.regFile {
				o.RegistryConfig = registryConfigFile(t, auth)
			}
			rep := doctor.Run(t.Context(), o)
			out := text(t, rep)
			if len(tc.want) == 0 {
				if rep.Failed() {
					t.Fatalf("doctor failed a correct setup:\n%s", out)
				}
				if r, _ := result(rep, "registry.token"); r.Status != doctor.StatusOK {
					t.Fatalf("registry.token = %s:\n%s", r.Status, out)
				}
				return
			}
			if !rep.Failed() {
				t.Fatalf("doctor passed a broken setup:\n%s", out)
			}
			for _, w := range tc.want {
				r, ok := result(rep, w.check)
				if !ok || r.Status != doctor.StatusFail {
					t.Errorf("%s did not fail:\n%s", w.check, out)
					continue
				}
				got := fixKeys(r)
				for _, k := range w.keys {
					if !contains(got, k) {
						t.Errorf("%s: fixes %v lack %s:\n%s", w.check, got, k, out)
					}
				}
				for _, k := range w.not {
					if contains(got, k) {
						t.Errorf("%s: fixes %v name %s, which is right:\n%s", w.check, got, k, out)
					}
				}
			}
			if t.Failed() {
				return
			}
			t.Logf("doctor's report:\n%s", out)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
