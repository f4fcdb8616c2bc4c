package devidp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/registry-bridge/bridge/internal/devidp"
)

const (
	clientID     = "registry-bridge"
	clientSecret = "test-secret"
	// redirectURI is never served: the test browser stops at its host.
	redirectURI  = "http://127.0.0.1:9/callback"
	redirectHost = "127.0.0.1:9"
)

var allScopes = []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess}

// env is a running provider plus a relying party configured for it.
type env struct {
	idp      *devidp.Provider
	provider *oidc.Provider
	oauth    oauth2.Config
}

func start(t *testing.T, groupsInIDToken bool) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	idp, err := devidp.New(devidp.Config{
		Issuer: "http://" + srv.Listener.Addr().String(),
		Users: []devidp.User{
			{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Name: "Alice", Groups: []string{"team-a"}},
			{Username: "bob", Password: "bob-pw", Name: "Bob", Groups: []string{"team-b", "registry-admins"}},
			{Username: "carol", Password: "carol-pw", Disabled: true},
		},
		Clients: []devidp.Client{{
			ID: clientID, Secret: clientSecret, RedirectURIs: []string{redirectURI},
			PostLogoutRedirectURIs: []string{"http://localhost:5001/signed-out"},
		}},
		GroupsInIDToken: groupsInIDToken,
		Log:             slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.Config.Handler = idp.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	provider, err := oidc.NewProvider(t.Context(), idp.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &env{idp: idp, provider: provider, oauth: oauth2.Config{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURI,
		Endpoint: provider.Endpoint(), Scopes: allScopes,
	}}
}

// newBrowser is a cookie-keeping client that follows redirects until the
// relying party's redirect URI, and returns that redirect unfollowed.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == redirectHost {
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		return nil
	}}
}

// response is a fetched page or redirect.
type response struct {
	status   int
	body     string
	url      *url.URL // the page's own URL
	location string   // where a stopped redirect points
}

func do(t *testing.T, browser *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(body), url: resp.Request.URL, location: resp.Header.Get("Location")}
}

func get(t *testing.T, browser *http.Client, u string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, browser, req)
}

var hiddenID = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// submit fills the login form on page as a browser would.
func submit(t *testing.T, browser *http.Client, form response, username, password string) response {
	t.Helper()
	m := hiddenID.FindStringSubmatch(form.body)
	if m == nil {
		t.Fatalf("no login form (status %d): %s", form.status, form.body)
	}
	action := form.url.ResolveReference(&url.URL{Path: "login"})
	values := url.Values{"authRequestID": {m[1]}, "username": {username}, "password": {password}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, action.String(), strings.NewReader(values.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, browser, req)
}

// callback checks that resp is the redirect to the relying party and
// returns its query.
func callback(t *testing.T, resp response) url.Values {
	t.Helper()
	if !strings.HasPrefix(resp.location, redirectURI) {
		t.Fatalf("want a redirect to %s, got status %d location %q body %.300s", redirectURI, resp.status, resp.location, resp.body)
	}
	u, err := url.Parse(resp.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// flow is one pass through the code flow, as a relying party runs it.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
}

func (e *env) authURL(f flow, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, extra...)
	return e.oauth.AuthCodeURL(f.state, opts...)
}

// login signs username in with a fresh browser and exchanges the code.
func (e *env) login(t *testing.T, username, password string) (*oauth2.Token, flow) {
	t.Helper()
	f := newFlow()
	q := callback(t, submit(t, newBrowser(t), get(t, newBrowser(t), e.authURL(f)), username, password))
	if q.Get("state") != f.state {
		t.Fatalf("state = %q, want %q", q.Get("state"), f.state)
	}
	tok, err := e.oauth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, f
}

// idClaims verifies the token response's ID token and returns its claims.
func (e *env) idClaims(t *testing.T, tok *oauth2.Token) (*oidc.IDToken, map[string]any) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token in the token response")
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return idt, claims
}

func (e *env) userinfo(t *testing.T, tok *oauth2.Token) map[string]any {
	t.Helper()
	info, err := e.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var claims map[string]any
	if err := info.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func (e *env) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return e.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func groupsOf(t *testing.T, claims map[string]any) []string {
	t.Helper()
	raw, ok := claims["groups"].([]any)
	if !ok {
		t.Fatalf("groups claim missing or not an array: %#v", claims["groups"])
	}
	var out []string
	for _, g := range raw {
		out = append(out, g.(string))
	}
	return out
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want oauth2 error %s, got %v", code, err)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code = %q, want %q (%v)", re.ErrorCode, code, err)
	}
}

func TestDiscovery(t *testing.T) {
	e := start(t, true)
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		JWKS        string   `json:"jwks_uri"`
		PKCE        []string `json:"code_challenge_methods_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		Scopes      []string `json:"scopes_supported"`
		Claims      []string `json:"claims_supported"`
		Algs        []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := e.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.EndSession != e.idp.Issuer()+"/end_session" {
		t.Errorf("end_session_endpoint = %q", meta.EndSession)
	}
	for name, c := range map[string]struct {
		have []string
		want string
	}{
		"S256":                {meta.PKCE, "S256"},
		"client_secret_basic": {meta.AuthMethods, "client_secret_basic"},
		"client_secret_post":  {meta.AuthMethods, "client_secret_post"},
		"groups scope":        {meta.Scopes, "groups"},
		"groups claim":        {meta.Claims, "groups"},
		"RS256":               {meta.Algs, "RS256"},
	} {
		if !slices.Contains(c.have, c.want) {
			t.Errorf("%s: %q not in %q", name, c.want, c.have)
		}
	}
	if r := get(t, http.DefaultClient, meta.JWKS); r.status != http.StatusOK || !strings.Contains(r.body, `"RS256"`) {
		t.Errorf("JWKS: status %d body %s", r.status, r.body)
	}
}

func TestCodeFlowRefreshAndRuntimeChanges(t *testing.T) {
	e := start(t, true)
	tok, f := e.login(t, "alice", "alice-pw")

	idt, claims := e.idClaims(t, tok)
	if idt.Nonce != f.nonce {
		t.Errorf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	if idt.Subject != devidp.SubjectFor("alice") || idt.Subject == "alice" {
		t.Errorf("sub = %q, want the stable id %q", idt.Subject, devidp.SubjectFor("alice"))
	}
	if claims["preferred_username"] != "alice" || claims["email"] != "alice@example.com" || claims["name"] != "Alice" {
		t.Errorf("ID token profile claims = %v", claims)
	}
	if g := groupsOf(t, claims); !slices.Equal(g, []string{"team-a"}) {
		t.Errorf("ID token groups = %q", g)
	}
	info := e.userinfo(t, tok)
	if g := groupsOf(t, info); !slices.Equal(g, []string{"team-a"}) {
		t.Errorf("userinfo groups = %q", g)
	}
	if info["sub"] != idt.Subject || info["preferred_username"] != "alice" {
		t.Errorf("userinfo = %v", info)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token despite offline_access")
	}

	if err := e.idp.SetGroups("alice", []string{"team-a", "team-c"}); err != nil {
		t.Fatal(err)
	}
	tok2, err := e.refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	_, claims2 := e.idClaims(t, tok2)
	if g := groupsOf(t, claims2); !slices.Equal(g, []string{"team-a", "team-c"}) {
		t.Errorf("refreshed ID token groups = %q", g)
	}
	if g := groupsOf(t, e.userinfo(t, tok2)); !slices.Equal(g, []string{"team-a", "team-c"}) {
		t.Errorf("userinfo groups after SetGroups = %q", g)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token not rotated: %q", tok2.RefreshToken)
	}
	_, err = e.refresh(t.Context(), tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant") // the old one is spent

	if err := e.idp.SetDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	_, err = e.refresh(t.Context(), tok2.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if _, err := e.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok2)); err == nil {
		t.Error("userinfo answered for a disabled user")
	}

	if err := e.idp.SetDisabled("alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.refresh(t.Context(), tok2.RefreshToken); err != nil {
		t.Errorf("refresh after re-enabling: %v", err)
	}
}

func TestGroupsOnlyInUserinfo(t *testing.T) {
	e := start(t, false)
	tok, _ := e.login(t, "bob", "bob-pw")
	_, claims := e.idClaims(t, tok)
	if claims["preferred_username"] != "bob" {
		t.Errorf("preferred_username = %v", claims["preferred_username"])
	}
	for _, k := range []string{"groups", "email", "name"} {
		if v, ok := claims[k]; ok {
			t.Errorf("ID token has %s = %v; want it only in userinfo", k, v)
		}
	}
	if g := groupsOf(t, e.userinfo(t, tok)); !slices.Equal(g, []string{"team-b", "registry-admins"}) {
		t.Errorf("userinfo groups = %q", g)
	}
}

func TestScopesLimitClaims(t *testing.T) {
	e := start(t, true)
	e.oauth.Scopes = []string{oidc.ScopeOpenID, "profile"}
	tok, _ := e.login(t, "alice", "alice-pw")
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	for name, claims := range map[string]map[string]any{"ID token": func() map[string]any { _, c := e.idClaims(t, tok); return c }(), "userinfo": e.userinfo(t, tok)} {
		if claims["preferred_username"] != "alice" {
			t.Errorf("%s: preferred_username = %v", name, claims["preferred_username"])
		}
		if _, ok := claims["groups"]; ok {
			t.Errorf("%s: groups present without the groups scope", name)
		}
		if _, ok := claims["email"]; ok {
			t.Errorf("%s: email present without the email scope", name)
		}
	}
}

func TestPKCE(t *testing.T) {
	e := start(t, true)
	t.Run("exchange", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			verifier func(f flow) []oauth2.AuthCodeOption
			wantCode string
		}{
			{"wrong verifier", func(flow) []oauth2.AuthCodeOption {
				return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
			}, "invalid_grant"},
			{"no verifier", func(flow) []oauth2.AuthCodeOption { return nil }, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFlow()
				browser := newBrowser(t)
				q := callback(t, submit(t, browser, get(t, browser, e.authURL(f)), "alice", "alice-pw"))
				_, err := e.oauth.Exchange(t.Context(), q.Get("code"), tc.verifier(f)...)
				wantOAuthError(t, err, tc.wantCode)
			})
		}
	})
	t.Run("authorize", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts []oauth2.AuthCodeOption
		}{
			{"no challenge", nil},
			{"plain method", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", "abc"), oauth2.SetAuthURLParam("code_challenge_method", "plain")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := e.oauth.AuthCodeURL("st", tc.opts...)
				q := callback(t, get(t, newBrowser(t), u))
				if q.Get("error") != "invalid_request" || q.Get("state") != "st" || q.Get("code") != "" {
					t.Errorf("callback query = %v, want error=invalid_request with state", q)
				}
			})
		}
	})
}

func TestLoginForm(t *testing.T) {
	e := start(t, true)
	for _, tc := range []struct {
		name, user, password string
		wantStatus           int
		wantText             string
	}{
		{"wrong password", "alice", "nope", http.StatusUnauthorized, "Wrong username or password."},
		{"unknown user", "mallory", "alice-pw", http.StatusUnauthorized, "Wrong username or password."},
		{"disabled user", "carol", "carol-pw", http.StatusUnauthorized, "This account is disabled."},
		{"correct", "alice", "alice-pw", http.StatusFound, ""}, // the library's redirect to the client
	} {
		t.Run(tc.name, func(t *testing.T) {
			browser := newBrowser(t)
			form := get(t, browser, e.authURL(newFlow()))
			for _, want := range []string{`id="username"`, `id="password"`, `id="submit"`, "DEVELOPMENT ONLY"} {
				if !strings.Contains(form.body, want) {
					t.Fatalf("login page lacks %s", want)
				}
			}
			got := submit(t, browser, form, tc.user, tc.password)
			if got.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", got.status, tc.wantStatus)
			}
			if tc.wantText == "" {
				callback(t, got)
				return
			}
			if !strings.Contains(got.body, `id="error"`) || !strings.Contains(got.body, tc.wantText) || !hiddenID.MatchString(got.body) {
				t.Errorf("want the form again with %q, got %s", tc.wantText, got.body)
			}
			// The form shown again still works.
			callback(t, submit(t, browser, got, "alice", "alice-pw"))
		})
	}
}

func TestUnknownLoginRequest(t *testing.T) {
	e := start(t, true)
	r := get(t, newBrowser(t), e.idp.Issuer()+"/login?authRequestID=forged")
	if r.status != http.StatusBadRequest || strings.Contains(r.body, `id="password"`) {
		t.Errorf("status %d body %s", r.status, r.body)
	}
}

func TestClientAuthentication(t *testing.T) {
	e := start(t, true)
	for _, tc := range []struct {
		name     string
		style    oauth2.AuthStyle
		secret   string
		wantCode string
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader, clientSecret, ""},
		{"client_secret_post", oauth2.AuthStyleInParams, clientSecret, ""},
		{"wrong secret, basic", oauth2.AuthStyleInHeader, "wrong", "invalid_client"},
		{"wrong secret, post", oauth2.AuthStyleInParams, "wrong", "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow()
			browser := newBrowser(t)
			q := callback(t, submit(t, browser, get(t, browser, e.authURL(f)), "alice", "alice-pw"))
			rp := e.oauth
			rp.Endpoint.AuthStyle = tc.style
			rp.ClientSecret = tc.secret
			tok, err := rp.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
			if tc.wantCode != "" {
				wantOAuthError(t, err, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if _, err := rp.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
				t.Errorf("refresh: %v", err)
			}
		})
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	e := start(t, true)
	f := newFlow()
	browser := newBrowser(t)
	q := callback(t, submit(t, browser, get(t, browser, e.authURL(f)), "alice", "alice-pw"))
	if _, err := e.oauth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier)); err != nil {
		t.Fatal(err)
	}
	_, err := e.oauth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	wantOAuthError(t, err, "invalid_grant")
}

func TestRevokeRefreshTokens(t *testing.T) {
	e := start(t, true)
	alice, _ := e.login(t, "alice", "alice-pw")
	bob, _ := e.login(t, "bob", "bob-pw")
	e.idp.RevokeRefreshTokens("alice")
	_, err := e.refresh(t.Context(), alice.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if _, err := e.refresh(t.Context(), bob.RefreshToken); err != nil {
		t.Errorf("bob's refresh token was revoked too: %v", err)
	}
}

func TestSessionAndEndSession(t *testing.T) {
	e := start(t, true)
	browser := newBrowser(t)
	f := newFlow()
	q := callback(t, submit(t, browser, get(t, browser, e.authURL(f)), "alice", "alice-pw"))
	tok, err := e.oauth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}

	// Signed in: the next authorize skips the form, unless prompt=login.
	callback(t, get(t, browser, e.authURL(newFlow())))
	if r := get(t, browser, e.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "login"))); !hiddenID.MatchString(r.body) {
		t.Errorf("prompt=login did not show the form: status %d", r.status)
	}

	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := e.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	logout := func(postLogout string) response {
		v := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogout}, "state": {"bye"}}
		return get(t, browser, meta.EndSession+"?"+v.Encode())
	}
	if r := logout("https://evil.example/"); r.status != http.StatusBadRequest {
		t.Errorf("unregistered post_logout_redirect_uri: status %d, want 400", r.status)
	}
	// The origin of a redirect URI is accepted.
	r := logout("http://127.0.0.1:9/")
	if r.location != "http://127.0.0.1:9/?state=bye" {
		t.Errorf("logout redirect = %q (status %d)", r.location, r.status)
	}
	if r := get(t, browser, e.authURL(newFlow())); !hiddenID.MatchString(r.body) {
		t.Errorf("after logout the form was skipped: status %d location %q", r.status, r.location)
	}
}

func TestSetDisabledEndsSessions(t *testing.T) {
	e := start(t, true)
	browser := newBrowser(t)
	callback(t, submit(t, browser, get(t, browser, e.authURL(newFlow())), "alice", "alice-pw"))
	if err := e.idp.SetDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	if r := get(t, browser, e.authURL(newFlow())); !hiddenID.MatchString(r.body) {
		t.Errorf("a disabled user's session still signs in: status %d location %q", r.status, r.location)
	}
}

func TestSettersRejectUnknownUser(t *testing.T) {
	e := start(t, true)
	if err := e.idp.SetGroups("nobody", nil); !errors.Is(err, devidp.ErrUnknownUser) {
		t.Errorf("SetGroups: %v", err)
	}
	if err := e.idp.SetDisabled("nobody", true); !errors.Is(err, devidp.ErrUnknownUser) {
		t.Errorf("SetDisabled: %v", err)
	}
}
