package tokens

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/registry-bridge/bridge/scope"
)

var testNow = time.Date(2031, 5, 6, 7, 8, 9, 500_000_000, time.UTC)

// newTestIssuer returns an Issuer with a fresh alg key, with kid in
// kidFormat and, if withCert, a self-signed certificate; o's unset fields
// get test values.
func newTestIssuer(t testing.TB, alg string, withCert bool, kidFormat string, o Options) *Issuer {
	t.Helper()
	priv := newPrivateKey(t, alg)
	var chain []*x509.Certificate
	if withCert {
		chain = []*x509.Certificate{newCert(t, priv.Public(), nil, priv, "signer", true, testNow.Add(-time.Hour), testNow.Add(time.Hour))}
	}
	k, err := NewKey(priv, chain, kidFormat)
	if err != nil {
		t.Fatal(err)
	}
	o.Key = k
	if o.Issuer == "" {
		o.Issuer = "registry-bridge"
	}
	if o.Service == "" {
		o.Service = "registry.example.com"
	}
	if o.Now == nil {
		o.Now = fixedClock(testNow)
	}
	iss, err := NewIssuer(o)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// decodeSegment returns the JSON of one dot-separated part of a JWS.
func decodeSegment(t *testing.T, raw string, i int) []byte {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	return b
}

func TestIssueClaims(t *testing.T) {
	pull := scope.Scope{Type: scope.TypeRepository, Name: "alice/app", Actions: []string{scope.ActionPull, scope.ActionPush}}
	plugin := scope.Scope{Type: scope.TypeRepository, Class: scope.ClassPlugin, Name: "vieux/sshfs", Actions: []string{scope.ActionPull}}
	catalog := scope.Scope{Type: scope.TypeRegistry, Name: scope.CatalogName, Actions: []string{scope.ActionAll}}
	denied := scope.Scope{Type: scope.TypeRepository, Name: "bob/secret", Actions: nil}
	deniedEmpty := scope.Scope{Type: scope.TypeRepository, Name: "bob/other", Actions: []string{}}

	tests := []struct {
		name       string
		subject    string
		access     []scope.Scope
		wantAccess string // the "access" claim, compact JSON
	}{
		{"login, no scope", "alice", nil, `[]`},
		{"anonymous, nothing granted", "", []scope.Scope{denied}, `[]`},
		{"everything denied", "alice", []scope.Scope{denied, deniedEmpty}, `[]`},
		{"one grant", "alice", []scope.Scope{pull}, `[{"type":"repository","name":"alice/app","actions":["pull","push"]}]`},
		{"mixed", "alice", []scope.Scope{denied, pull, deniedEmpty, plugin, catalog},
			`[{"type":"repository","name":"alice/app","actions":["pull","push"]},` +
				`{"type":"repository","class":"plugin","name":"vieux/sshfs","actions":["pull"]},` +
				`{"type":"registry","name":"catalog","actions":["*"]}]`},
		{"subject needing escapes", "a\"b\\c\u2028<é>\x01", nil, `[]`},
	}
	iss := newTestIssuer(t, "ES256", false, "", Options{Lifetime: 7 * time.Minute})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := iss.Issue(tt.subject, tt.access)
			if err != nil {
				t.Fatal(err)
			}
			raw := decodeSegment(t, tok.Raw, 1)
			var claims map[string]json.RawMessage
			if err := json.Unmarshal(raw, &claims); err != nil {
				t.Fatalf("claims %s: %v", raw, err)
			}
			wantKeys := []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
			if len(claims) != len(wantKeys) {
				t.Errorf("claims %s: want exactly %v", raw, wantKeys)
			}
			str := func(k string) string {
				t.Helper()
				var s string
				if err := json.Unmarshal(claims[k], &s); err != nil {
					t.Fatalf("%s = %s: want a JSON string", k, claims[k])
				}
				return s
			}
			integer := func(k string) int64 {
				t.Helper()
				n, err := strconv.ParseInt(string(claims[k]), 10, 64)
				if err != nil {
					t.Fatalf("%s = %s: want a JSON integer", k, claims[k])
				}
				return n
			}
			if got := str("iss"); got != "registry-bridge" {
				t.Errorf("iss = %q", got)
			}
			if got := str("aud"); got != "registry.example.com" {
				t.Errorf("aud = %q, want the service as a string", got)
			}
			if got := str("sub"); got != tt.subject {
				t.Errorf("sub = %q, want %q", got, tt.subject)
			}
			if got := str("jti"); got != tok.ID || len(got) < 22 {
				t.Errorf("jti = %q, want Token.ID %q of 128 bits", got, tok.ID)
			}
			iat, nbf, exp := integer("iat"), integer("nbf"), integer("exp")
			if iat != testNow.Unix() || nbf > iat || exp != iat+7*60 {
				t.Errorf("iat, nbf, exp = %d, %d, %d; want iat = %d, nbf ≤ iat, exp = iat + 420", iat, nbf, exp, testNow.Unix())
			}
			if !tok.IssuedAt.Equal(time.Unix(iat, 0)) || !tok.ExpiresAt.Equal(time.Unix(exp, 0)) || tok.ExpiresIn != 420 {
				t.Errorf("Token times %v, %v, %d do not match the claims", tok.IssuedAt, tok.ExpiresAt, tok.ExpiresIn)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, claims["access"]); err != nil {
				t.Fatal(err)
			}
			if compact.String() != tt.wantAccess {
				t.Errorf("access = %s\nwant     %s", compact.String(), tt.wantAccess)
			}
		})
	}
}

func TestIssueHeaderAndSignature(t *testing.T) {
	tests := []struct {
		alg      string
		withCert bool
		kid      string // kid format
	}{
		{"ES256", false, ""},
		{"ES256", true, ""},
		{"ES384", false, KeyIDLibtrust},
		{"ES512", true, KeyIDLibtrust},
		{"RS256", false, ""},
		{"RS256", true, KeyIDLibtrust},
	}
	for _, tt := range tests {
		name := tt.alg
		if tt.withCert {
			name += "+x5c"
		}
		if tt.kid != "" {
			name += "+" + tt.kid
		}
		t.Run(name, func(t *testing.T) {
			iss := newTestIssuer(t, tt.alg, tt.withCert, tt.kid, Options{})
			tok, err := iss.Issue("alice", nil)
			if err != nil {
				t.Fatal(err)
			}
			var h struct {
				Alg string   `json:"alg"`
				Typ string   `json:"typ"`
				Kid string   `json:"kid"`
				X5c []string `json:"x5c"`
			}
			if err := json.Unmarshal(decodeSegment(t, tok.Raw, 0), &h); err != nil {
				t.Fatal(err)
			}
			wantKid, _ := KeyID(iss.key.Public(), tt.kid)
			if h.Alg != tt.alg || h.Typ != "JWT" || h.Kid != wantKid || h.Kid != iss.KeyID() {
				t.Errorf("header alg=%s typ=%s kid=%s, want %s JWT %s", h.Alg, h.Typ, h.Kid, tt.alg, wantKid)
			}
			if tt.withCert {
				der, err := base64.StdEncoding.DecodeString(strings.Join(h.X5c, ""))
				if err != nil || len(h.X5c) != 1 || !bytes.Equal(der, iss.key.chain[0].Raw) {
					t.Errorf("x5c = %.40q, want the certificate's DER, base64 std", h.X5c)
				}
			} else if h.X5c != nil {
				t.Errorf("x5c present without a certificate")
			}

			// golang-jwt verifies the signature with the public key.
			parsed, err := jwt.Parse(tok.Raw, func(*jwt.Token) (any, error) { return iss.key.Public(), nil },
				jwt.WithValidMethods([]string{tt.alg}), jwt.WithTimeFunc(fixedClock(testNow)),
				jwt.WithAudience("registry.example.com"), jwt.WithIssuer("registry-bridge"))
			if err != nil || !parsed.Valid {
				t.Fatalf("golang-jwt: %v", err)
			}
			// A flipped claims byte breaks the signature.
			parts := strings.Split(tok.Raw, ".")
			claims := []byte(parts[1])
			claims[5] ^= 1
			tampered := parts[0] + "." + string(claims) + "." + parts[2]
			if _, err := jwt.Parse(tampered, func(*jwt.Token) (any, error) { return iss.key.Public(), nil }); err == nil {
				t.Fatal("tampered token verified")
			}
		})
	}
}

func TestIssueUniqueIDs(t *testing.T) {
	iss := newTestIssuer(t, "ES256", false, "", Options{})
	seen := map[string]bool{}
	for range 100 {
		tok, err := iss.Issue("alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok.ID] {
			t.Fatalf("jti %s issued twice", tok.ID)
		}
		seen[tok.ID] = true
	}
}

func TestIssueInvalidAccess(t *testing.T) {
	iss := newTestIssuer(t, "ES256", false, "", Options{})
	tests := []struct {
		name string
		s    scope.Scope
	}{
		{"no type", scope.Scope{Name: "a/b", Actions: []string{"pull"}}},
		{"no name", scope.Scope{Type: "repository", Actions: []string{"pull"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := iss.Issue("alice", []scope.Scope{tt.s}); !errors.Is(err, ErrInvalidAccess) {
				t.Fatalf("error %v, want ErrInvalidAccess", err)
			}
		})
	}
}

func TestIssueLifetime(t *testing.T) {
	tests := []struct {
		lifetime time.Duration
		want     int
	}{
		{0, 300},
		{MinLifetime, 60},
		{MaxLifetime, 3600},
		{90 * time.Second, 90},
	}
	for _, tt := range tests {
		t.Run(tt.lifetime.String(), func(t *testing.T) {
			iss := newTestIssuer(t, "ES256", false, "", Options{Lifetime: tt.lifetime})
			tok, err := iss.Issue("", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != tt.want || tok.ExpiresAt.Sub(tok.IssuedAt) != time.Duration(tt.want)*time.Second {
				t.Fatalf("ExpiresIn = %d, lifetime %s, want %d s", tok.ExpiresIn, tok.ExpiresAt.Sub(tok.IssuedAt), tt.want)
			}
			if !tok.IssuedAt.Equal(testNow.Truncate(time.Second)) {
				t.Fatalf("IssuedAt = %s, want the clock's second %s", tok.IssuedAt, testNow.Truncate(time.Second))
			}
		})
	}
}

func TestNewIssuerErrors(t *testing.T) {
	priv := newPrivateKey(t, "ES256")
	key, err := NewKey(priv, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	expired := newCert(t, priv.Public(), nil, priv, "old", true, testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))
	expiredKey, err := NewKey(priv, []*x509.Certificate{expired}, "")
	if err != nil {
		t.Fatal(err)
	}
	future := newCert(t, priv.Public(), nil, priv, "new", true, testNow.Add(time.Hour), testNow.Add(48*time.Hour))
	futureKey, err := NewKey(priv, []*x509.Certificate{future}, "")
	if err != nil {
		t.Fatal(err)
	}
	ok := Options{Issuer: "i", Service: "s", Key: key, Now: fixedClock(testNow)}
	tests := []struct {
		name   string
		edit   func(*Options)
		errHas []string
	}{
		{"no issuer", func(o *Options) { o.Issuer = "" }, []string{"issuer required"}},
		{"no service", func(o *Options) { o.Service = "" }, []string{"service required"}},
		{"no key", func(o *Options) { o.Key = nil }, []string{"signing key required"}},
		{"everything missing", func(o *Options) { *o = Options{Lifetime: time.Second} }, []string{"issuer", "service", "key", "lifetime"}},
		{"lifetime too short", func(o *Options) { o.Lifetime = 59 * time.Second }, []string{"lifetime"}},
		{"lifetime too long", func(o *Options) { o.Lifetime = 2 * time.Hour }, []string{"lifetime"}},
		{"fractional lifetime", func(o *Options) { o.Lifetime = 90*time.Second + time.Millisecond }, []string{"whole seconds"}},
		{"expired certificate", func(o *Options) { o.Key = expiredKey }, []string{`certificate "old"`}},
		{"certificate not yet valid", func(o *Options) { o.Key = futureKey }, []string{`certificate "new"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			_, err := NewIssuer(o)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := NewIssuer(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

func TestJWKS(t *testing.T) {
	cur := newPrivateKey(t, "ES256")
	key, err := NewKey(cur, nil, KeyIDLibtrust)
	if err != nil {
		t.Fatal(err)
	}
	prevEC := leadingZeroKey(t)
	prevRSA := newPrivateKey(t, "RS256")
	prevECKid, _ := Thumbprint(prevEC.Public())
	prevRSAKid, _ := LibtrustKeyID(prevRSA.Public())
	iss, err := NewIssuer(Options{
		Issuer: "i", Service: "s", Key: key,
		Previous: []VerificationKey{
			{Public: prevEC.Public(), KeyID: prevECKid},
			{Public: prevRSA.Public(), KeyID: prevRSAKid},
			{Public: cur.Public(), KeyID: key.KeyID()}, // the current key again: listed once
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}

	// go-jose, which distribution v3 reads its jwks file with, must accept
	// it and find each key under the kid its tokens carry.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(js, &set); err != nil {
		t.Fatalf("go-jose rejects the JWKS: %v\n%s", err, js)
	}
	want := []struct {
		kid, alg string
		pub      any
	}{
		{key.KeyID(), "ES256", cur.Public()},
		{prevECKid, "ES256", prevEC.Public()},
		{prevRSAKid, "RS256", prevRSA.Public()},
	}
	if len(set.Keys) != len(want) {
		t.Fatalf("JWKS has %d keys, want %d:\n%s", len(set.Keys), len(want), js)
	}
	for i, w := range want {
		k := set.Keys[i]
		if k.KeyID != w.kid || k.Algorithm != w.alg || k.Use != "sig" || !samePublic(w.pub, k.Key) {
			t.Errorf("key %d: kid=%s alg=%s use=%s; want kid=%s alg=%s use=sig and the right key", i, k.KeyID, k.Algorithm, k.Use, w.kid, w.alg)
		}
	}

	// JWKS returns a copy.
	j := iss.JWKS()
	j.Keys[0].Kid = "changed"
	if iss.JWKS().Keys[0].Kid == "changed" {
		t.Error("JWKS shares its slice with the Issuer")
	}
	// The empty set encodes as [], never null.
	if b, _ := json.Marshal(JWKS{Keys: []JWK{}}); string(b) != `{"keys":[]}` {
		t.Errorf("empty JWKS = %s", b)
	}
}

func TestNewJWKUnsupported(t *testing.T) {
	if _, err := NewJWK("not a key", "x"); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("error %v, want ErrUnsupportedKey", err)
	}
}

// TestIssueConcurrent: an Issuer is shared by every request; under -race
// this catches shared scratch state.
func TestIssueConcurrent(t *testing.T) {
	iss := newTestIssuer(t, "ES256", true, "", Options{})
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			sub := "user" + strconv.Itoa(g)
			for range 25 {
				tok, err := iss.Issue(sub, []scope.Scope{{Type: scope.TypeRepository, Name: sub + "/app", Actions: []string{scope.ActionPull}}})
				if err != nil {
					errs <- err
					return
				}
				claims, err := jwt.Parse(tok.Raw, func(*jwt.Token) (any, error) { return iss.key.Public(), nil },
					jwt.WithTimeFunc(fixedClock(testNow)), jwt.WithSubject(sub))
				if err == nil && !claims.Valid {
					err = errors.New("token not valid")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
