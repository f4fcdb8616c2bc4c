package httpapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/scope"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/tokens"
)

const testService = "registry.test"

type fixture struct {
	t      *testing.T
	srv    *Server
	st     *memory.Store
	now    time.Time
	pubKey any
	logs   *syncBuffer
}

// syncBuffer collects log lines from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// lastLog returns the last JSON log line as a map.
func (f *fixture) lastLog() map[string]any {
	f.t.Helper()
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		f.t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	return m
}

var testRules = []groups.Rule{
	{Groups: []string{"admins"}, Repositories: []string{"**"}, Actions: []string{"pull", "push", "delete"}, Catalog: true},
	{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull", "push"}},
	{Groups: []string{"team-b"}, Repositories: []string{"team-b/**"}, Actions: []string{"pull", "push"}},
	{Users: []string{"*"}, Repositories: []string{"users/${username}/**"}, Actions: []string{"pull", "push", "delete"}},
	{Anonymous: true, Repositories: []string{"public/**"}, Actions: []string{"pull"}},
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), logs: &syncBuffer{}}
	clock := func() time.Time { return f.now }
	keyPEM, certPEM, err := tokens.GenerateKey(tokens.AlgES256, "test", f.now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir+"/k.pem", keyPEM)
	writeFile(t, dir+"/c.pem", certPEM)
	key, err := tokens.LoadSigningKey(dir+"/k.pem", dir+"/c.pem", tokens.KeyIDThumbprint)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	f.pubKey = cert.PublicKey
	issuer, err := tokens.NewIssuer(tokens.Options{Issuer: "bridge-test", Service: testService, Lifetime: 5 * time.Minute, Key: key, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := groups.Compile(testRules)
	if err != nil {
		t.Fatal(err)
	}
	f.st = memory.New(clock)
	t.Cleanup(func() { f.st.Close() })
	var err2 error
	f.srv, err2 = New(Options{
		Log:       slog.New(slog.NewJSONHandler(f.logs, nil)),
		Passwords: f.st,
		Ping:      f.st.Ping,
		Tokens:    issuer,
		Policy:    func() *groups.Policy { return policy },
		JWKS:      func() any { return issuer.JWKS() },
		Service:   testService,
		PublicURL: "http://bridge.test",
		Now:       clock,
	})
	if err2 != nil {
		t.Fatal(err2)
	}
	return f
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := osWriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

// mint stores a password for user and returns it.
func (f *fixture) mint(user string, groups []string, readOnly bool) (string, store.Password) {
	f.t.Helper()
	m, err := passwords.Mint()
	if err != nil {
		f.t.Fatal(err)
	}
	rec := store.Password{ID: m.ID, Subject: "cli:" + user, Username: user, Groups: groups, Digest: m.Digest,
		RefreshDigest: m.RefreshDigest, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour), ReadOnly: readOnly, CreatedBy: store.CreatedByCLI}
	if err := f.st.CreatePassword(f.t.Context(), rec); err != nil {
		f.t.Fatal(err)
	}
	return m.Password, rec
}

func (f *fixture) get(query, authz string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/token?"+query, nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

func (f *fixture) post(form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

// decoded is a token response with its JWT verified and decoded.
type decoded struct {
	body   map[string]json.RawMessage
	resp   tokenResponse
	claims map[string]json.RawMessage
	access []scope.Scope
}

func (f *fixture) decode(w *httptest.ResponseRecorder) decoded {
	f.t.Helper()
	if w.Code != http.StatusOK {
		f.t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		f.t.Fatalf("Content-Type %q", ct)
	}
	var d decoded
	raw := w.Body.Bytes()
	if err := json.Unmarshal(raw, &d.body); err != nil {
		f.t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &d.resp); err != nil {
		f.t.Fatal(err)
	}
	// expires_in must be a JSON integer; issued_at an RFC 3339 string.
	var n int
	if err := json.Unmarshal(d.body["expires_in"], &n); err != nil || n < 60 {
		f.t.Fatalf("expires_in = %s, want an integer ≥ 60", d.body["expires_in"])
	}
	if _, err := time.Parse(time.RFC3339, d.resp.IssuedAt); err != nil {
		f.t.Fatalf("issued_at %q: %v", d.resp.IssuedAt, err)
	}
	if d.resp.Token == "" || d.resp.Token != d.resp.AccessToken {
		f.t.Fatal("token and access_token must be present and equal")
	}
	tok, err := jwt.Parse(d.resp.Token, func(*jwt.Token) (any, error) { return f.pubKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return f.now }))
	if err != nil || !tok.Valid {
		f.t.Fatalf("token does not verify: %v", err)
	}
	parts := strings.Split(d.resp.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &d.claims); err != nil {
		f.t.Fatal(err)
	}
	var aud string
	if err := json.Unmarshal(d.claims["aud"], &aud); err != nil || aud != testService {
		f.t.Fatalf("aud = %s, want the string %q", d.claims["aud"], testService)
	}
	if string(d.claims["access"]) == "null" {
		f.t.Fatal("access is null")
	}
	if err := json.Unmarshal(d.claims["access"], &d.access); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (d decoded) sub() string {
	var s string
	_ = json.Unmarshal(d.claims["sub"], &s)
	return s
}

// actions returns the granted actions for name, or nil if absent.
func (d decoded) actions(typ, name string) []string {
	for _, a := range d.access {
		if a.Type == typ && a.Name == name {
			return a.Actions
		}
	}
	return nil
}

func TestTokenLogin(t *testing.T) {
	f := newFixture(t)
	pw, _ := f.mint("alice", []string{"team-a"}, false)
	d := f.decode(f.get("account=alice&client_id=docker&offline_token=true&service="+testService, basic("alice", pw)))
	if d.sub() != "alice" {
		t.Errorf("sub = %q", d.sub())
	}
	if len(d.access) != 0 || string(d.claims["access"]) != "[]" {
		t.Errorf("access = %s, want []", d.claims["access"])
	}
	want, _ := passwords.RefreshToken(pw)
	if d.resp.RefreshToken != want {
		t.Errorf("refresh_token missing or not derived from the password")
	}
	for _, k := range []string{"exp", "nbf", "iat"} {
		var n int64
		if err := json.Unmarshal(d.claims[k], &n); err != nil {
			t.Errorf("%s = %s, want an integer", k, d.claims[k])
		}
	}
	// Without offline_token no refresh token is handed out.
	if d := f.decode(f.get("service="+testService, basic("alice", pw))); d.resp.RefreshToken != "" {
		t.Error("refresh_token without offline_token")
	}
}

func TestTokenCredentialFailures(t *testing.T) {
	f := newFixture(t)
	pw, rec := f.mint("alice", nil, false)
	other, _ := f.mint("bob", nil, false)
	expired, erec := f.mint("carol", nil, false)
	erec.ExpiresAt = f.now.Add(-time.Second)
	_ = f.st.DeletePassword(t.Context(), erec.ID)
	_ = f.st.CreatePassword(t.Context(), erec)
	unknown, _ := passwords.Mint()
	wrongSecret := pw[:len(pw)-3] + "aaa"
	if wrongSecret == pw {
		wrongSecret = pw[:len(pw)-3] + "bbb"
	}
	for name, authz := range map[string]string{
		"wrong secret":     basic("alice", wrongSecret),
		"unknown id":       basic("alice", unknown.Password),
		"other's password": basic("alice", other),
		"not a password":   basic("alice", "hunter2"),
		"empty password":   basic("alice", ""),
		"expired":          basic("carol", expired),
		"bearer":           "Bearer " + pw,
	} {
		t.Run(name, func(t *testing.T) {
			w := f.get("service="+testService+"&scope=repository:users/alice/x:pull", authz)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", w.Code, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="http://bridge.test"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "UNAUTHORIZED" {
				t.Errorf("body %s", w.Body)
			}
			if strings.Contains(w.Body.String(), pw) {
				t.Error("body echoes the password")
			}
		})
	}
	// The same password still works: failures changed nothing.
	f.decode(f.get("service="+testService, basic("alice", pw)))
	_ = rec
}

func TestTokenAnonymous(t *testing.T) {
	f := newFixture(t)
	d := f.decode(f.get("service="+testService+"&scope=repository:public/x:pull&scope=repository:team-a/x:pull", ""))
	if d.sub() != "" {
		t.Errorf("sub = %q, want empty", d.sub())
	}
	if got := d.actions("repository", "public/x"); !reflect.DeepEqual(got, []string{"pull"}) {
		t.Errorf("public/x = %v", got)
	}
	if got := d.actions("repository", "team-a/x"); got != nil {
		t.Errorf("team-a/x = %v, want not granted", got)
	}
}

func TestTokenScopes(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.mint("alice", []string{"team-a"}, false)
	admin, _ := f.mint("root", []string{"admins"}, false)
	ro, _ := f.mint("reader", []string{"team-a"}, true)

	t.Run("repeated and space-joined agree", func(t *testing.T) {
		a := f.decode(f.get("service="+testService+"&scope=repository:team-a/x:pull&scope=repository:users/alice/y:push,pull", basic("alice", alice)))
		b := f.decode(f.get("service="+testService+"&scope=repository:team-a/x:pull%20repository:users/alice/y:push,pull", basic("alice", alice)))
		if !reflect.DeepEqual(a.access, b.access) || len(a.access) != 2 {
			t.Fatalf("%v vs %v", a.access, b.access)
		}
	})
	t.Run("partial grant is 200", func(t *testing.T) {
		d := f.decode(f.get("scope=repository:team-a/x:pull,push,delete&scope=repository:team-b/x:pull", basic("alice", alice)))
		if got := d.actions("repository", "team-a/x"); !reflect.DeepEqual(got, []string{"pull", "push"}) {
			t.Errorf("team-a/x = %v", got)
		}
		if got := d.actions("repository", "team-b/x"); got != nil {
			t.Errorf("team-b/x = %v", got)
		}
	})
	t.Run("plugin class", func(t *testing.T) {
		d := f.decode(f.get("scope=repository(plugin):team-a/p:pull", basic("alice", alice)))
		want := []scope.Scope{{Type: "repository", Class: "plugin", Name: "team-a/p", Actions: []string{"pull"}}}
		if !reflect.DeepEqual(d.access, want) {
			t.Errorf("access = %+v", d.access)
		}
	})
	t.Run("catalog only for catalog rules", func(t *testing.T) {
		d := f.decode(f.get("scope=registry:catalog:*", basic("root", admin)))
		if got := d.actions("registry", "catalog"); !reflect.DeepEqual(got, []string{"*"}) {
			t.Errorf("admin catalog = %v", got)
		}
		d = f.decode(f.get("scope=registry:catalog:*", basic("alice", alice)))
		if got := d.actions("registry", "catalog"); got != nil {
			t.Errorf("alice catalog = %v", got)
		}
	})
	t.Run("star means everything held", func(t *testing.T) {
		d := f.decode(f.get("scope=repository:users/alice/x:*", basic("alice", alice)))
		got := d.actions("repository", "users/alice/x")
		if !reflect.DeepEqual(got, []string{"*"}) && !reflect.DeepEqual(got, []string{"pull", "push", "delete"}) {
			t.Errorf("users/alice/x * = %v", got)
		}
	})
	t.Run("read-only password", func(t *testing.T) {
		d := f.decode(f.get("scope=repository:team-a/x:pull,push&scope=repository:users/reader/x:*", basic("reader", ro)))
		if got := d.actions("repository", "team-a/x"); !reflect.DeepEqual(got, []string{"pull"}) {
			t.Errorf("team-a/x = %v", got)
		}
		if got := d.actions("repository", "users/reader/x"); !reflect.DeepEqual(got, []string{"pull"}) {
			t.Errorf("users/reader/x = %v", got)
		}
	})
	t.Run("host:port name", func(t *testing.T) {
		w := f.get("scope=repository:localhost:5000/team-a/x:pull", basic("alice", alice))
		f.decode(w)
	})
}

func TestTokenBadRequests(t *testing.T) {
	f := newFixture(t)
	pw, _ := f.mint("alice", nil, false)
	for name, tc := range map[string]struct {
		query  string
		status int
	}{
		"other service": {"service=elsewhere", 400},
		"bad scope":     {"scope=repository:UP:pull", 400},
		"bad action":    {"scope=repository:a:frob", 400},
	} {
		t.Run(name, func(t *testing.T) {
			w := f.get(tc.query, basic("alice", pw))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Description == "" {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
	r := httptest.NewRequest(http.MethodDelete, "/token", nil)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, POST" {
		t.Fatalf("DELETE: %d Allow=%q", w.Code, w.Header().Get("Allow"))
	}
}

func TestTokenPost(t *testing.T) {
	f := newFixture(t)
	pw, rec := f.mint("alice", []string{"team-a"}, false)

	w := f.post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}, "client_id": {"containerd-client"},
		"service": {testService}, "scope": {"repository:team-a/x:pull,push repository:team-b/y:pull"}, "access_type": {"offline"}})
	d := f.decode(w)
	if d.resp.Scope != "repository:team-a/x:pull,push" {
		t.Errorf("scope = %q", d.resp.Scope)
	}
	rt := d.resp.RefreshToken
	if rt == "" {
		t.Fatal("no refresh_token with access_type=offline")
	}

	// Refresh grant, as docker after `docker login` and containers/image
	// (repeated scope fields) do; the same refresh token comes back.
	w = f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"containers/image"},
		"service": {testService}, "scope": {"repository:team-a/x:pull", "repository:users/alice/z:push"}, "access_type": {"offline"}})
	d = f.decode(w)
	if d.sub() != "alice" || d.resp.RefreshToken != rt {
		t.Errorf("sub %q refresh %v", d.sub(), d.resp.RefreshToken == rt)
	}
	if len(d.access) != 2 {
		t.Errorf("access = %v", d.access)
	}

	// containerd's fallback: GET with Basic ":<refresh token>".
	d = f.decode(f.get("service="+testService+"&scope=repository:team-a/x:pull", basic("", rt)))
	if d.sub() != "alice" {
		t.Errorf("fallback sub = %q", d.sub())
	}

	// Password and refresh token are not interchangeable across grants.
	if w := f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw}}); w.Code != 401 {
		t.Errorf("password as refresh token: %d", w.Code)
	}
	if w := f.post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {rt}}); w.Code != 401 {
		t.Errorf("refresh token as password: %d", w.Code)
	}
	if w := f.post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw + "x"}}); w.Code != 401 {
		t.Errorf("bad password: %d", w.Code)
	}
	if w := f.post(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}); w.Code != 400 {
		t.Errorf("unknown grant: %d", w.Code)
	}

	// Revoking the password kills its refresh token at once.
	if err := f.st.DeletePassword(t.Context(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if w := f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {testService}}); w.Code != 401 {
		t.Errorf("refresh after revoke: %d %s", w.Code, w.Body)
	}
}

// brokenStore fails every read, as an unreachable Redis does.
type brokenStore struct{}

func (brokenStore) GetPassword(context.Context, string) (store.Password, error) {
	return store.Password{}, errors.New("dial tcp 127.0.0.1:6379: connection refused")
}
func (brokenStore) TouchPassword(context.Context, string, time.Time) error { return nil }

func TestTokenStoreOutageIs503(t *testing.T) {
	f := newFixture(t)
	pw, _ := f.mint("alice", nil, false)
	f.srv.passwords = brokenStore{}
	w := f.get("service="+testService, basic("alice", pw))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
	if strings.Contains(w.Body.String(), "6379") {
		t.Error("the private cause leaked into the body")
	}
	// Anonymous requests need no store.
	f.decode(f.get("service="+testService+"&scope=repository:public/a:pull", ""))
}

func TestTokenLastUsed(t *testing.T) {
	f := newFixture(t)
	pw, rec := f.mint("alice", nil, false)
	f.decode(f.get("service="+testService, basic("alice", pw)))
	got, err := f.st.GetPassword(t.Context(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastUsedAt.Equal(f.now) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, f.now)
	}
}

func TestHealthReadyJWKSMetrics(t *testing.T) {
	f := newFixture(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/.well-known/jwks.json": 200, "/metrics": 200, "/nope": 404} {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
	f.get("service="+testService, "")
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(w.Body.String(), `bridge_token_requests_total{grant="anonymous",outcome="granted"} 1`) {
		t.Errorf("metrics lack the token counter:\n%s", w.Body)
	}
	w = httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] == "" {
		t.Errorf("jwks %s", w.Body)
	}
	f.st.Close()
	w = httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a closed store: %d", w.Code)
	}
}
