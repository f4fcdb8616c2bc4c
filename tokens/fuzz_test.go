package tokens

import (
	"encoding/json"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/registry-bridge/bridge/scope"
)

// FuzzIssue feeds Issue the strings that reach it from the network (the
// subject comes from the IdP, names and actions from the scope parameter)
// and checks the token always verifies and round-trips them.
func FuzzIssue(f *testing.F) {
	f.Add("alice", "alice/app", "pull")
	f.Add("", "x", "*")
	f.Add("\"}],\"access\":[", "a\\\"b", "\xff\u2028")
	iss := newTestIssuer(f, "ES256", false, "", Options{})
	f.Fuzz(func(t *testing.T, subject, name, action string) {
		access := []scope.Scope{{Type: scope.TypeRepository, Name: name, Actions: []string{action}}}
		tok, err := iss.Issue(subject, access)
		if name == "" {
			if err == nil {
				t.Fatal("empty name: no error")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.Parse(tok.Raw, func(*jwt.Token) (any, error) { return iss.key.Public(), nil },
			jwt.WithTimeFunc(fixedClock(testNow)))
		if err != nil || !parsed.Valid {
			t.Fatalf("token does not verify: %v", err)
		}
		var claims struct {
			Sub    string        `json:"sub"`
			Access []scope.Scope `json:"access"`
		}
		if err := json.Unmarshal(decodeSegment(t, tok.Raw, 1), &claims); err != nil {
			t.Fatal(err)
		}
		valid := func(s string) string { b, _ := json.Marshal(s); var o string; _ = json.Unmarshal(b, &o); return o }
		if claims.Sub != valid(subject) || len(claims.Access) != 1 || claims.Access[0].Name != valid(name) ||
			len(claims.Access[0].Actions) != 1 || claims.Access[0].Actions[0] != valid(action) {
			t.Fatalf("claims %+v do not round-trip subject %q, name %q, action %q", claims, subject, name, action)
		}
	})
}

// FuzzParseKeyPEM: the PEM readers never panic, and what they accept is a
// key this package can sign or verify with.
func FuzzParseKeyPEM(f *testing.F) {
	f.Add(pkcs8PEM(f, newPrivateKey(f, "ES256")))
	f.Add(pkixPEM(f, newPrivateKey(f, "ES384").Public()))
	f.Add(certsPEM(selfSigned(f, newPrivateKey(f, "ES256"))))
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := parsePrivateKey(data); err == nil {
			if _, err := NewKey(k, nil, ""); err != nil {
				t.Fatalf("parsePrivateKey accepted a key NewKey refuses: %v", err)
			}
		}
		if pub, err := parsePublicKey(data); err == nil {
			if _, err := NewJWK(pub, "k"); err != nil {
				t.Fatalf("parsePublicKey accepted a key NewJWK refuses: %v", err)
			}
		}
		if chain, err := parseCertificates(data); err == nil && len(chain) == 0 {
			t.Fatal("parseCertificates: empty chain without error")
		}
	})
}
