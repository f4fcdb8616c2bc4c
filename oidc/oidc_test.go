package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/registry-bridge/bridge/internal/devidp"
)

func TestGroupsClaim(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{"array", `["b","a","a"]`, []string{"a", "b"}},
		{"single string", `"team-a"`, []string{"team-a"}},
		{"objects", `[{"name":"x","id":1},{"id":2},"y"]`, []string{"x", "y"}},
		{"empty strings dropped", `["", " ", "a"]`, []string{"a"}},
		{"number", `42`, nil},
		{"object", `{"name":"x"}`, nil},
		{"null", `null`, nil},
		{"absent", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := groupsClaim(json.RawMessage(tt.raw)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("groupsClaim(%s) = %#v, want %#v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"invalid_grant":  {&oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, ErrRejected},
		"invalid_client": {&oauth2.RetrieveError{Response: resp(401), ErrorCode: "invalid_client"}, ErrUnavailable},
		"server error":   {&oauth2.RetrieveError{Response: resp(503)}, ErrUnavailable},
		"network":        {errors.New("dial tcp: connection refused"), ErrUnavailable},
	} {
		if got := classify("refresh", tc.err); !errors.Is(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestSealer(t *testing.T) {
	s, err := RandomSealer()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("refresh-token-value", "sub-1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "refresh-token-value") {
		t.Fatal("plaintext visible in the sealed value")
	}
	if got, err := s.Open(sealed, "sub-1"); err != nil || got != "refresh-token-value" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "sub-2"); err == nil {
		t.Fatal("opened with another owner's associated data")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, "sub-1"); err == nil {
		t.Fatal("opened a tampered value")
	}
	other, _ := RandomSealer()
	again, _ := s.Seal("x", "a")
	if _, err := other.Open(again, "a"); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := s.Open([]byte("short"), "a"); err == nil {
		t.Fatal("opened a short value")
	}
}

func TestDerivedSealer(t *testing.T) {
	a, err := DerivedSealer("client-secret")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DerivedSealer("client-secret")
	sealed, _ := a.Seal("rt", "sub")
	if got, err := b.Open(sealed, "sub"); err != nil || got != "rt" {
		t.Fatalf("the same secret must give the same key: %q %v", got, err)
	}
	c, _ := DerivedSealer("other-secret")
	if _, err := c.Open(sealed, "sub"); err == nil {
		t.Fatal("another secret opened the value")
	}
	if _, err := DerivedSealer(""); err == nil {
		t.Fatal("an empty secret was accepted")
	}
}

func TestLoadEncryptionKey(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	for name, content := range map[string][]byte{
		"raw":       raw,
		"base64":    []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString(raw)),
	} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, content, 0o600)
		if k, err := LoadEncryptionKey(p); err != nil || !reflect.DeepEqual(k, raw) {
			t.Errorf("%s: %v", name, err)
		}
	}
	p := filepath.Join(dir, "short")
	_ = os.WriteFile(p, []byte("c2hvcnQ="), 0o600)
	if _, err := LoadEncryptionKey(p); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Issuer: "ftp://x", Scopes: []string{"profile"}, ClientSecret: "a", ClientSecretFile: "/nonexistent",
		AllowedGroups: []string{" "}, AuthParams: map[string]string{"state": "x", "prompt": "consent"}}
	c.SetDefaults()
	err := c.Validate("oidc")
	for _, want := range []string{"oidc.issuer", "oidc.client_id: required", "oidc.client_secret_file", `oidc.scopes: must include "openid"`,
		"oidc.allowed_groups[0]", "oidc.auth_params.state"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "auth_params.prompt") {
		t.Error("prompt rejected")
	}
}

// provider runs devidp (a real OpenID provider) behind a switch that can
// make /userinfo fail, and returns an oidc.Provider for it.
type testIdP struct {
	idp             *devidp.Provider
	ts              *httptest.Server
	failUserinfo    atomic.Bool
	redirect        string
	groupsInIDToken bool
}

func newTestIdP(t *testing.T, groupsInIDToken bool, params map[string]string) (*testIdP, *Provider) {
	t.Helper()
	ti := &testIdP{redirect: "http://127.0.0.1:1/callback", groupsInIDToken: groupsInIDToken}
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	idp, err := devidp.New(devidp.Config{
		Issuer:          issuer,
		Users:           []devidp.User{{Username: "alice", Password: "pw", Email: "alice@example.com", Groups: []string{"team-a"}}},
		Clients:         []devidp.Client{{ID: "bridge", Secret: "s", RedirectURIs: []string{ti.redirect}}},
		GroupsInIDToken: groupsInIDToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	ti.idp = idp
	h := idp.Handler()
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ti.failUserinfo.Load() && strings.Contains(r.URL.Path, "userinfo") {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
	ts.Start()
	t.Cleanup(ts.Close)
	ti.ts = ts
	cfg := Config{Issuer: issuer, ClientID: "bridge", ClientSecret: "s", AuthParams: params}
	cfg.SetDefaults()
	p, err := New(Options{Config: cfg, RedirectURL: ti.redirect})
	if err != nil {
		t.Fatal(err)
	}
	return ti, p
}

var authRequestRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// login runs the browser part of the code flow and returns the code.
func (ti *testIdP) login(t *testing.T, authURL string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), ti.redirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := authRequestRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no login form: %s", body)
	}
	form := url.Values{"authRequestID": {string(m[1])}, "username": {"alice"}, "password": {"pw"}}
	resp, err = c.PostForm(resp.Request.URL.ResolveReference(&url.URL{Path: "login"}).String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code in redirect %q (status %d)", resp.Header.Get("Location"), resp.StatusCode)
	}
	return loc.Query().Get("code")
}

func TestExchangeAndRefresh(t *testing.T) {
	for _, inIDToken := range []bool{true, false} {
		t.Run(map[bool]string{true: "groups in ID token", false: "groups in userinfo"}[inIDToken], func(t *testing.T) {
			ti, p := newTestIdP(t, inIDToken, map[string]string{"prompt": "login"})
			ctx := context.Background()
			st, err := NewLoginState()
			if err != nil {
				t.Fatal(err)
			}
			authURL, err := p.AuthURL(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if u, _ := url.Parse(authURL); u.Query().Get("prompt") != "login" {
				t.Errorf("auth_params not applied: %s", authURL)
			}
			id, toks, err := p.Exchange(ctx, st, ti.login(t, authURL))
			if err != nil {
				t.Fatal(err)
			}
			if id.Username != "alice" || id.Email != "alice@example.com" || !reflect.DeepEqual(id.Groups, []string{"team-a"}) || id.Subject == "" || id.Subject == "alice" {
				t.Fatalf("identity %+v", id)
			}
			if toks.RefreshToken == "" || toks.IDToken == "" {
				t.Fatal("no refresh or ID token")
			}
			if p.LogoutURL(ctx, toks.IDToken, "http://127.0.0.1:1/") == "" {
				t.Error("no logout URL though the provider advertises end_session_endpoint")
			}

			_ = ti.idp.SetGroups("alice", []string{"team-b", "team-c"})
			id2, toks2, err := p.Refresh(ctx, id.Subject, toks.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(id2.Groups, []string{"team-b", "team-c"}) {
				t.Fatalf("refreshed groups %v", id2.Groups)
			}
			// Userinfo down: with groups only there, the answer is
			// "unavailable", never "no groups".
			ti.failUserinfo.Store(true)
			_, toks3, err := p.Refresh(ctx, id.Subject, toks2.RefreshToken)
			if inIDToken {
				if err != nil {
					t.Fatalf("groups in the ID token, userinfo down: %v", err)
				}
			} else if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("groups only in userinfo, userinfo down: err = %v, want ErrUnavailable", err)
			}
			ti.failUserinfo.Store(false)
			rt := toks2.RefreshToken
			if toks3.RefreshToken != "" {
				rt = toks3.RefreshToken
			}
			// Disabled at the provider: the refresh is rejected.
			_ = ti.idp.SetDisabled("alice", true)
			if _, _, err := p.Refresh(ctx, id.Subject, rt); !errors.Is(err, ErrRejected) {
				t.Fatalf("disabled user: err = %v, want ErrRejected", err)
			}
		})
	}
}

func TestExchangeChecks(t *testing.T) {
	ti, p := newTestIdP(t, true, nil)
	ctx := context.Background()
	st, _ := NewLoginState()
	authURL, _ := p.AuthURL(ctx, st)
	code := ti.login(t, authURL)
	wrongNonce := st
	wrongNonce.Nonce = "other"
	if _, _, err := p.Exchange(ctx, wrongNonce, code); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("wrong nonce: %v", err)
	}
	// The code was used (or at least presented) once: a second exchange,
	// even with the right values, fails.
	if _, _, err := p.Exchange(ctx, st, code); err == nil {
		t.Fatal("a used code was exchanged again")
	}
	st2, _ := NewLoginState()
	authURL, _ = p.AuthURL(ctx, st2)
	code = ti.login(t, authURL)
	wrongVerifier := st2
	wrongVerifier.Verifier = oauth2.GenerateVerifier()
	if _, _, err := p.Exchange(ctx, wrongVerifier, code); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("wrong PKCE verifier: %v (want a login failure, not an outage)", err)
	}
}

func TestAllowedGroups(t *testing.T) {
	ti, p := newTestIdP(t, true, nil)
	p.cfg.AllowedGroups = []string{"registry-users"}
	ctx := context.Background()
	st, _ := NewLoginState()
	authURL, _ := p.AuthURL(ctx, st)
	if _, _, err := p.Exchange(ctx, st, ti.login(t, authURL)); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("err = %v, want ErrNotAllowed", err)
	}
}

func TestProviderDownAtStart(t *testing.T) {
	cfg := Config{Issuer: "http://127.0.0.1:1", ClientID: "c"}
	cfg.SetDefaults()
	p, err := New(Options{Config: cfg, HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatalf("New must not need the provider: %v", err)
	}
	st, _ := NewLoginState()
	if _, err := p.AuthURL(context.Background(), st); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func FuzzGroupsClaim(f *testing.F) {
	f.Add(`["a","b"]`)
	f.Add(`"x"`)
	f.Add(`[{"name":"n"},1,null]`)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, g := range groupsClaim(json.RawMessage(raw)) {
			if strings.TrimSpace(g) == "" {
				t.Fatalf("empty group from %q", raw)
			}
		}
	})
}

func TestEmailVerified(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"email_verified":true}`:    true,
		`{"email_verified":"true"}`:  true,
		`{"email_verified":false}`:   false,
		`{"email_verified":"false"}`: false,
		`{}`:                         false,
	} {
		var claims map[string]json.RawMessage
		_ = json.Unmarshal([]byte(raw), &claims)
		if got := emailVerified(claims); got != want {
			t.Errorf("emailVerified(%s) = %v, want %v", raw, got, want)
		}
	}
}
