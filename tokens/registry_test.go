package tokens

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	v3auth "github.com/distribution/distribution/v3/registry/auth"
	v3token "github.com/distribution/distribution/v3/registry/auth/token"
	dcontext "github.com/docker/distribution/context"
	v2auth "github.com/docker/distribution/registry/auth"
	v2token "github.com/docker/distribution/registry/auth/token"

	"github.com/registry-bridge/bridge/scope"
)

// The tests of this file verify issued tokens with the access controllers
// of distribution v3.1.2 and 2.8.3 themselves, configured from files as a
// registry is: auth.token.rootcertbundle and, for v3, auth.token.jwks.

const (
	testIssuer  = "registry-bridge"
	testService = "registry.example.com"
)

// registry is the verifying side of one setup.
type registry struct {
	version string // "v3" or "v2.8"
	bundle  bool   // rootcertbundle holds the signer's root certificate
	jwks    bool   // (v3) jwks holds the Issuer's JWKS
}

func (r registry) String() string {
	s := r.version
	if r.bundle {
		s += " bundle"
	}
	if r.jwks {
		s += " jwks"
	}
	return s
}

// authorizer asks a registry's access controller whether a bearer token
// grants want (nil: the bare /v2/ check). Like the registry's handlers
// (handlers/app.go appendAccessRecords), it asks by type and name only:
// a class never takes part in the check. It returns the granted user name,
// or the controller's error.
type authorizer func(ctx context.Context, raw string, want []scope.Scope) (string, error)

// newAuthorizer writes the registry's key files from root (the bundle's
// certificate) and iss, and builds the registry's access controller.
func newAuthorizer(t *testing.T, r registry, root *x509.Certificate, iss *Issuer) authorizer {
	t.Helper()
	dir := t.TempDir()
	opts := map[string]any{"realm": "http://localhost:5001/token", "issuer": testIssuer, "service": testService}
	if r.bundle {
		opts["rootcertbundle"] = writeFile(t, dir, "bundle.crt", certsPEM(root))
	}
	if r.jwks {
		js, err := json.Marshal(iss.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		opts["jwks"] = writeFile(t, dir, "jwks.json", js)
	}
	switch r.version {
	case "v3":
		ac, err := v3auth.GetAccessController("token", opts)
		if err != nil {
			t.Fatal(err)
		}
		return func(_ context.Context, raw string, want []scope.Scope) (string, error) {
			req := httptest.NewRequest("GET", "/v2/", nil)
			req.Header.Set("Authorization", "Bearer "+raw)
			var access []v3auth.Access
			for _, s := range want {
				for _, a := range s.Actions {
					access = append(access, v3auth.Access{Resource: v3auth.Resource{Type: s.Type, Name: s.Name}, Action: a})
				}
			}
			g, err := ac.Authorized(req, access...)
			if err != nil {
				return "", err
			}
			return g.User.Name, nil
		}
	case "v2.8":
		ac, err := v2auth.GetAccessController("token", opts)
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context, raw string, want []scope.Scope) (string, error) {
			req := httptest.NewRequest("GET", "/v2/", nil)
			req.Header.Set("Authorization", "Bearer "+raw)
			var access []v2auth.Access
			for _, s := range want {
				for _, a := range s.Actions {
					access = append(access, v2auth.Access{Resource: v2auth.Resource{Type: s.Type, Name: s.Name}, Action: a})
				}
			}
			ctx, err := ac.Authorized(dcontext.WithRequest(ctx, req), access...)
			if err != nil {
				return "", err
			}
			u, _ := ctx.Value(v2auth.UserNameKey).(string)
			return u, nil
		}
	}
	t.Fatalf("unknown registry version %q", r.version)
	return nil
}

// insufficientScope reports whether err is the registry's "valid token,
// missing action" answer, as opposed to a rejected token.
func insufficientScope(err error) bool {
	return err != nil && (err.Error() == v3token.ErrInsufficientScope.Error() || err.Error() == v2token.ErrInsufficientScope.Error())
}

var (
	pullPush = scope.Scope{Type: scope.TypeRepository, Name: "alice/app", Actions: []string{scope.ActionPull, scope.ActionPush}}
	plugin   = scope.Scope{Type: scope.TypeRepository, Class: scope.ClassPlugin, Name: "vieux/sshfs", Actions: []string{scope.ActionPull}}
	catalog  = scope.Scope{Type: scope.TypeRegistry, Name: scope.CatalogName, Actions: []string{scope.ActionAll}}
	deletion = scope.Scope{Type: scope.TypeRepository, Name: "alice/app", Actions: []string{scope.ActionDelete}}
)

// checkAccepted checks that registry ac accepts iss's tokens: a login token
// with no access, an anonymous one, and a token that grants exactly what it
// carries.
func checkAccepted(t *testing.T, ac authorizer, iss *Issuer) {
	t.Helper()
	ctx := t.Context()
	login, err := iss.Issue("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if user, err := ac(ctx, login.Raw, nil); err != nil || user != "alice" {
		t.Fatalf("login token on /v2/: user %q, error %v; want alice, nil", user, err)
	}
	if _, err := ac(ctx, login.Raw, []scope.Scope{pullPush}); !insufficientScope(err) {
		t.Fatalf("login token on a repository: %v, want insufficient scope", err)
	}

	anon, err := iss.Issue("", []scope.Scope{{Type: scope.TypeRepository, Name: "public/x", Actions: []string{scope.ActionPull}}})
	if err != nil {
		t.Fatal(err)
	}
	if user, err := ac(ctx, anon.Raw, []scope.Scope{{Type: scope.TypeRepository, Name: "public/x", Actions: []string{scope.ActionPull}}}); err != nil || user != "" {
		t.Fatalf("anonymous pull: user %q, error %v; want \"\", nil", user, err)
	}

	tok, err := iss.Issue("alice", []scope.Scope{pullPush, plugin, catalog})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []scope.Scope{pullPush, plugin, catalog} {
		if _, err := ac(ctx, tok.Raw, []scope.Scope{want}); err != nil {
			t.Errorf("%s: %v", want, err)
		}
	}
	if _, err := ac(ctx, tok.Raw, []scope.Scope{deletion}); !insufficientScope(err) {
		t.Errorf("%s without delete granted: %v, want insufficient scope", deletion, err)
	}
}

// checkRejected checks that registry ac rejects iss's tokens outright.
func checkRejected(t *testing.T, ac authorizer, iss *Issuer) {
	t.Helper()
	tok, err := iss.Issue("alice", []scope.Scope{pullPush})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac(t.Context(), tok.Raw, nil); err == nil || insufficientScope(err) {
		t.Fatalf("token accepted (error %v), want it rejected", err)
	}
}

func TestRegistriesVerify(t *testing.T) {
	v3Bundle := registry{version: "v3", bundle: true}
	v3JWKS := registry{version: "v3", jwks: true}
	v3Both := registry{version: "v3", bundle: true, jwks: true}
	v28 := registry{version: "v2.8", bundle: true}

	tests := []struct {
		name      string
		alg       string
		withCert  bool // certificate_file set: tokens carry x5c
		kidFormat string
		accept    []registry
		reject    []registry
	}{
		// docs/protocol.md §5.3 recipe (a): x5c works on v2.8 and on v3 with a
		// bundle, whatever the kid; v3 with only a jwks rejects x5c.
		{"x5c ES256", "ES256", true, KeyIDThumbprint, []registry{v3Bundle, v3Both, v28}, []registry{v3JWKS}},
		{"x5c RS256", "RS256", true, KeyIDThumbprint, []registry{v3Bundle, v28}, []registry{v3JWKS}},
		{"x5c libtrust kid", "ES256", true, KeyIDLibtrust, []registry{v3Bundle, v28}, nil},
		// No certificate: the kid alone finds the key.
		{"kid thumbprint ES256", "ES256", false, KeyIDThumbprint, []registry{v3Bundle, v3JWKS, v3Both}, []registry{v28}},
		{"kid thumbprint ES384", "ES384", false, KeyIDThumbprint, []registry{v3Bundle, v3JWKS}, []registry{v28}},
		{"kid thumbprint RS256", "RS256", false, KeyIDThumbprint, []registry{v3Bundle, v3JWKS}, []registry{v28}},
		// docs/protocol.md §5.3 recipe (b).
		{"kid libtrust ES256", "ES256", false, KeyIDLibtrust, []registry{v28, v3JWKS, v3Both}, []registry{v3Bundle}},
		{"kid libtrust RS256", "RS256", false, KeyIDLibtrust, []registry{v28, v3JWKS}, []registry{v3Bundle}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv := newPrivateKey(t, tt.alg)
			root := selfSigned(t, priv)
			var chain []*x509.Certificate
			if tt.withCert {
				chain = []*x509.Certificate{root}
			}
			iss := newRegistryIssuer(t, priv, chain, tt.kidFormat)
			for _, r := range tt.accept {
				t.Run("accepted by "+r.String(), func(t *testing.T) {
					checkAccepted(t, newAuthorizer(t, r, root, iss), iss)
				})
			}
			for _, r := range tt.reject {
				t.Run("rejected by "+r.String(), func(t *testing.T) {
					checkRejected(t, newAuthorizer(t, r, root, iss), iss)
				})
			}
		})
	}
}

// TestRegistriesVerifyChain: a leaf signed by an intermediate, the
// certificate file holding leaf and intermediate, the bundle only the root.
func TestRegistriesVerifyChain(t *testing.T) {
	now := time.Now()
	rootKey := newPrivateKey(t, "ES256")
	root := newCert(t, rootKey.Public(), nil, rootKey, "root", true, now.Add(-time.Hour), now.Add(time.Hour))
	interKey := newPrivateKey(t, "RS256")
	inter := newCert(t, interKey.Public(), root, rootKey, "intermediate", true, now.Add(-time.Hour), now.Add(time.Hour))
	leafKey := newPrivateKey(t, "ES256")
	leaf := newCert(t, leafKey.Public(), inter, interKey, "leaf", false, now.Add(-time.Hour), now.Add(time.Hour))

	iss := newRegistryIssuer(t, leafKey, []*x509.Certificate{leaf, inter}, "")
	for _, r := range []registry{{version: "v3", bundle: true}, {version: "v2.8", bundle: true}} {
		t.Run(r.String(), func(t *testing.T) {
			checkAccepted(t, newAuthorizer(t, r, root, iss), iss)
		})
	}
}

// TestRegistriesVerifyLeadingZero: an EC key with a leading zero coordinate
// (loaded, not generated: GenerateKey never makes one) still verifies on v3
// by kid thumbprint, through the bundle and through the JWKS.
func TestRegistriesVerifyLeadingZero(t *testing.T) {
	priv := leadingZeroKey(t)
	root := selfSigned(t, priv)
	iss := newRegistryIssuer(t, priv, nil, KeyIDThumbprint)
	for _, r := range []registry{{version: "v3", bundle: true}, {version: "v3", jwks: true}} {
		t.Run(r.String(), func(t *testing.T) {
			checkAccepted(t, newAuthorizer(t, r, root, iss), iss)
		})
	}
}

// TestRegistriesVerifyRotation: after a key rotation, tokens of the
// previous key verify on v3 through the JWKS that lists it.
func TestRegistriesVerifyRotation(t *testing.T) {
	old := newPrivateKey(t, "ES256")
	oldIss := newRegistryIssuer(t, old, nil, KeyIDLibtrust)
	oldKid := oldIss.KeyID()
	cur := newPrivateKey(t, "ES256")
	curKey, err := NewKey(cur, nil, KeyIDLibtrust)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Options{Issuer: testIssuer, Service: testService, Key: curKey,
		Previous: []VerificationKey{{Public: old.Public(), KeyID: oldKid}}})
	if err != nil {
		t.Fatal(err)
	}
	ac := newAuthorizer(t, registry{version: "v3", jwks: true}, nil, iss)
	checkAccepted(t, ac, iss)
	checkAccepted(t, ac, oldIss)
	// A key in neither file is rejected.
	checkRejected(t, ac, newRegistryIssuer(t, newPrivateKey(t, "ES256"), nil, KeyIDLibtrust))
}

func newRegistryIssuer(t *testing.T, priv crypto.Signer, chain []*x509.Certificate, kidFormat string) *Issuer {
	t.Helper()
	k, err := NewKey(priv, chain, kidFormat)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Options{Issuer: testIssuer, Service: testService, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}
