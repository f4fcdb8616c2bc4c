package httpapi

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/internal/devidp"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/tokens"
)

// clock is a settable clock for the bridge; the provider keeps real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// site is a bridge with the browser login on, in front of a real OpenID
// provider (devidp, built on zitadel/oidc), both on loopback.
type site struct {
	t     *testing.T
	srv   *Server // the bridge's handler, for requests from chosen addresses
	base  string
	idp   *devidp.Provider
	idpTS *httptest.Server
	st    *memory.Store
	acc   *accounts.Accounts
	clock *clock
	// hang makes the provider accept requests and never answer; hangs
	// counts the requests held so.
	hang  atomic.Bool
	hangs atomic.Int32 // requests held, in all
	held  atomic.Int32 // requests held now
	hung  chan struct{}
	// backend is the store the bridge uses: st, or the one newSiteOn got.
	backend store.Store
	// sealer seals the login cookie (and refresh tokens).
	sealer *oidc.Sealer
}

const (
	revalidateEvery = time.Minute
	maxLive         = 20
)

// eventually polls cond until it holds, failing the test after 10s: for
// what background revalidation changes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newSite(t *testing.T, allowedGroups ...string) *site {
	t.Helper()
	return newSiteOn(t, nil, allowedGroups...)
}

// newSiteOn is newSite with the bridge on backend instead of a memory
// store, when backend is not nil; backend's clock must be site.clock's.
func newSiteOn(t *testing.T, backend func(now func() time.Time) store.Store, allowedGroups ...string) *site {
	t.Helper()
	s := &site{t: t, clock: &clock{t: time.Now()}}
	bridgeTS := httptest.NewUnstartedServer(nil)
	idpTS := httptest.NewUnstartedServer(nil)
	s.base = "http://" + bridgeTS.Listener.Addr().String()
	issuer := "http://" + idpTS.Listener.Addr().String()

	idp, err := devidp.New(devidp.Config{
		Issuer: issuer,
		Users: []devidp.User{
			{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"team-a"}},
			{Username: "bob", Password: "bob-pw", Email: "bob@example.com", Groups: []string{"team-b"}},
		},
		Clients:         []devidp.Client{{ID: "bridge", Secret: "bridge-secret", RedirectURIs: []string{s.base + "/callback"}}},
		GroupsInIDToken: false, // groups only in userinfo, as many providers do
	})
	if err != nil {
		t.Fatal(err)
	}
	s.idp = idp
	s.hung = make(chan struct{})
	h := idp.Handler()
	idpTS.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hang.Load() {
			// Accept and never answer (until the test ends). The body is
			// read so that the server notices a client that gives up.
			_, _ = io.Copy(io.Discard, r.Body)
			s.hangs.Add(1)
			s.held.Add(1)
			defer s.held.Add(-1)
			select {
			case <-s.hung:
			case <-r.Context().Done():
			}
			return
		}
		h.ServeHTTP(w, r)
	})
	idpTS.Start()
	t.Cleanup(idpTS.Close)
	t.Cleanup(func() { close(s.hung) }) // before idpTS.Close, which waits for held requests
	s.idpTS = idpTS

	keyPEM, _, err := tokens.GenerateKey(tokens.AlgES256, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir+"/k.pem", keyPEM)
	key, err := tokens.LoadSigningKey(dir+"/k.pem", "", tokens.KeyIDThumbprint)
	if err != nil {
		t.Fatal(err)
	}
	issuerTok, err := tokens.NewIssuer(tokens.Options{Issuer: "bridge-test", Service: testService, Key: key, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := groups.Compile(testRules)
	if err != nil {
		t.Fatal(err)
	}
	if backend != nil {
		s.backend = backend(s.clock.Now)
	} else {
		s.st = memory.New(s.clock.Now)
		t.Cleanup(func() { s.st.Close() })
		s.backend = s.st
	}
	cfg := oidc.Config{Issuer: issuer, ClientID: "bridge", ClientSecret: "bridge-secret", AllowedGroups: allowedGroups}
	cfg.SetDefaults()
	prov, err := oidc.New(oidc.Options{Config: cfg, RedirectURL: s.base + "/callback"})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := oidc.RandomSealer()
	if err != nil {
		t.Fatal(err)
	}
	s.sealer = sealer
	limits := accounts.Limits{DefaultLifetime: 720 * time.Hour, MaxLifetime: 2160 * time.Hour, MaxLive: maxLive} // the mint rate is tested in accounts
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s.acc = accounts.New(accounts.Options{
		Store: s.backend, Provider: prov, Sealer: sealer, Limits: limits,
		Revalidation:  accounts.Revalidation{Every: revalidateEvery, Grace: time.Hour, Wait: 5 * time.Second},
		SessionMaxAge: 12 * time.Hour, Log: log, Now: s.clock.Now,
	})
	t.Cleanup(s.acc.Close)
	srv, err := New(Options{
		Log: log, Passwords: s.backend, Ping: s.backend.Ping, Tokens: issuerTok,
		Policy: func() *groups.Policy { return policy }, JWKS: func() any { return issuerTok.JWKS() },
		Service: testService, PublicURL: s.base, Now: s.clock.Now,
		Groups: s.acc,
		Login: &LoginOptions{
			Provider: prov, Sessions: s.backend, Accounts: s.acc, Sealer: sealer, Limits: limits,
			IdleTimeout: time.Hour, MaxAge: 12 * time.Hour, Registry: "registry.test",
		},
		Device: testDeviceOptions(s.backend), // device_test.go
	})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	bridgeTS.Config.Handler = srv
	bridgeTS.Start()
	t.Cleanup(bridgeTS.Close)
	return s
}

// browser is a cookie-keeping HTTP client that follows redirects.
type browser struct {
	t        *testing.T
	c        *http.Client
	s        *site
	last     *http.Response
	body     string
	noFollow bool
	// state is the OAuth2 state of the last login this browser started.
	state string
}

func (s *site) browser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: s.t, s: s}
	b.c = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		if b.noFollow {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *browser) do(req *http.Request) *http.Response {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	b.last, b.body = resp, string(raw)
	return resp
}

func (b *browser) get(u string) *http.Response {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) postForm(u string, form url.Values) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	authRequestRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)
	csrfRE        = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	newPasswordRE = regexp.MustCompile(`id="new-password"[^>]*>([^<]+)<`)
	usernameRE    = regexp.MustCompile(`id="username">([^<]+)<`)
)

func find(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

// startLogin goes to /login and returns the provider's login form page.
func (b *browser) startLogin() {
	b.t.Helper()
	b.startLoginAt("/login")
}

// startLoginAt starts a login at path (/login with its parameters).
func (b *browser) startLoginAt(path string) {
	b.t.Helper()
	follow := b.noFollow
	b.noFollow = true
	resp := b.get(b.s.base + path)
	b.noFollow = follow
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		b.t.Fatalf("/login: %d %q", resp.StatusCode, loc)
	}
	u := mustURL(b.t, loc)
	b.state = u.Query().Get("state")
	if u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("code_challenge") == "" || u.Query().Get("nonce") == "" || b.state == "" {
		b.t.Fatalf("authorization URL lacks PKCE S256, nonce or state: %s", loc)
	}
	b.noFollow = false
	resp = b.get(loc)
	b.noFollow = follow
	if resp.StatusCode != 200 || !strings.Contains(b.body, `id="password"`) {
		b.t.Fatalf("login form: %d\n%s", resp.StatusCode, b.body)
	}
}

// submitLogin fills the provider's form; redirects are followed unless
// noFollow is set.
func (b *browser) submitLogin(user, password string) *http.Response {
	b.t.Helper()
	id := find(b.t, authRequestRE, b.body)
	formURL := b.last.Request.URL.ResolveReference(&url.URL{Path: "login"})
	return b.postForm(formURL.String(), url.Values{"authRequestID": {id}, "username": {user}, "password": {password}})
}

func (b *browser) login(user, password string) {
	b.t.Helper()
	b.startLogin()
	resp := b.submitLogin(user, password)
	if resp.StatusCode != 200 || !strings.Contains(b.body, "Hello, "+user) {
		b.t.Fatalf("after login: %d %s\n%s", resp.StatusCode, resp.Request.URL, b.body)
	}
}

func (b *browser) csrf() string {
	b.t.Helper()
	b.get(b.s.base + "/")
	return find(b.t, csrfRE, b.body)
}

// mint creates a password through the page and returns it.
func (b *browser) mint(name string, readOnly bool) string {
	b.t.Helper()
	form := url.Values{"csrf": {b.csrf()}, "name": {name}, "lifetime": {"24h0m0s"}}
	if readOnly {
		form.Set("read_only", "true")
	}
	resp := b.postForm(b.s.base+"/passwords", form)
	if resp.StatusCode != 200 {
		b.t.Fatalf("mint: %d\n%s", resp.StatusCode, b.body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		b.t.Errorf("minted page Cache-Control = %q, want no-store", cc)
	}
	return find(b.t, newPasswordRE, b.body)
}

// token asks the token endpoint for scopes with Basic user:password.
func (s *site) token(user, password string, scopes ...string) (int, []string, string) {
	s.t.Helper()
	q := url.Values{"service": {testService}, "scope": scopes}
	req, _ := http.NewRequest(http.MethodGet, s.base+"/token?"+q.Encode(), nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, string(raw)
	}
	var body tokenResponse
	_ = json.Unmarshal(raw, &body)
	parts := strings.Split(body.Token, ".")
	payload, _ := base64Raw(parts[1])
	var claims struct {
		Access []struct {
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		} `json:"access"`
	}
	_ = json.Unmarshal(payload, &claims)
	var granted []string
	for _, a := range claims.Access {
		granted = append(granted, a.Name+":"+strings.Join(a.Actions, ","))
	}
	return 200, granted, string(raw)
}

func TestLoginMintUseRevoke(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	if b.get(s.base + "/"); !strings.Contains(b.body, `id="login"`) {
		t.Fatalf("signed-out page lacks the login button:\n%s", b.body)
	}
	b.login("alice", "alice-pw")
	for _, want := range []string{"team-a", "<code>team-a/**</code> — pull, push", "<code>users/alice/**</code>", "You have no app passwords"} {
		if !strings.Contains(b.body, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := b.last.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(b.last.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", b.last.Header.Get("Content-Security-Policy"))
	}
	u, _ := url.Parse(s.base)
	var sessionCookie *http.Cookie
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie0 {
			sessionCookie = c
		}
	}
	if sessionCookie == nil {
		t.Fatal("no session cookie")
	}

	pw := b.mint("laptop", false)
	if got := find(t, usernameRE, b.body); got != "alice" {
		t.Errorf("#username = %q", got)
	}
	if !strings.Contains(b.body, "docker login &#39;registry.test&#39; -u &#39;alice&#39; --password-stdin") {
		t.Error("minted page lacks the docker login command")
	}
	code, granted, _ := s.token("alice", pw, "repository:team-a/app:pull,push", "repository:team-b/app:pull")
	if code != 200 || strings.Join(granted, " ") != "team-a/app:pull,push" {
		t.Fatalf("token: %d %v", code, granted)
	}
	ro := b.mint("ci-read", true)
	if _, granted, _ := s.token("alice", ro, "repository:team-a/app:pull,push"); strings.Join(granted, " ") != "team-a/app:pull" {
		t.Errorf("read-only granted %v", granted)
	}

	// The page lists both; the API too, without secrets.
	b.get(s.base + "/")
	c, _ := passwords.Parse(pw)
	if !strings.Contains(b.body, `action="/passwords/`+c.ID+`/revoke"`) {
		t.Fatalf("no revoke form for %s", c.ID)
	}
	req, _ := http.NewRequest(http.MethodGet, s.base+"/api/v1/passwords", nil)
	b.do(req)
	var list []passwordView
	if err := json.Unmarshal([]byte(b.body), &list); err != nil || len(list) != 2 || strings.Contains(b.body, pw) {
		t.Fatalf("api list: %v %s", err, b.body)
	}

	// Revoke through the page: the password stops working at once.
	b.postForm(s.base+"/passwords/"+c.ID+"/revoke", url.Values{"csrf": {b.csrf()}})
	if code, _, _ := s.token("alice", pw); code != 401 {
		t.Fatalf("revoked password: %d", code)
	}
	if code, _, _ := s.token("alice", ro); code != 200 {
		t.Fatalf("the other password stopped too: %d", code)
	}
	if b.get(s.base + "/?done=revoked"); !strings.Contains(b.body, `id="notice"`) || !strings.Contains(b.body, "was revoked") {
		t.Errorf("no confirmation after a revoke")
	}
	// Revoke all asks first, and changes nothing until confirmed.
	if resp := b.postForm(s.base+"/passwords/revoke-all", url.Values{"csrf": {b.csrf()}}); resp.StatusCode != 200 || !strings.Contains(b.body, "confirm-revoke-all") {
		t.Fatalf("revoke-all without confirmation: %d\n%s", resp.StatusCode, b.body)
	}
	if code, _, _ := s.token("alice", ro); code != 200 {
		t.Fatalf("revoke-all revoked before the confirmation: %d", code)
	}
	b.postForm(s.base+"/passwords/revoke-all", url.Values{"csrf": {b.csrf()}, "confirm": {"yes"}})
	if code, _, _ := s.token("alice", ro); code != 401 {
		t.Fatalf("after revoke-all: %d", code)
	}
}

const sessionCookie0 = "rb_session"

// TestUserRecordOutlivesPasswords: a password minted late in a session,
// with the longest lifetime, still finds its owner's record on its last day.
func TestUserRecordOutlivesPasswords(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	for range 13 { // late in the 12h session, kept alive within the idle timeout
		s.clock.Advance(50 * time.Minute)
		b.get(s.base + "/")
	}
	form := url.Values{"csrf": {b.csrf()}, "name": {"long"}, "lifetime": {"2160h"}}
	if resp := b.postForm(s.base+"/passwords", form); resp.StatusCode != 200 {
		t.Fatalf("mint: %d %s", resp.StatusCode, b.body)
	}
	pw := find(t, newPasswordRE, b.body)
	s.clock.Advance(2160*time.Hour - time.Hour) // the password's last day
	if code, granted, body := s.token("alice", pw, "repository:team-a/x:pull"); code != 200 || len(granted) != 1 {
		t.Fatalf("on its last day the password got %d %v %s", code, granted, body)
	}
}

func TestJSONAPI(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	b.get(s.base + "/api/v1/session")
	var sess struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
		CSRF     string   `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(b.body), &sess); err != nil || sess.Username != "alice" || sess.CSRF == "" {
		t.Fatalf("session: %v %s", err, b.body)
	}
	post := func(body string, csrf string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/passwords", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(csrfHeader, csrf)
		}
		return b.do(req)
	}
	if resp := post(`{"name":"x"}`, ""); resp.StatusCode != 403 {
		t.Fatalf("no CSRF header: %d", resp.StatusCode)
	}
	if resp := post(`{"name":"x","bogus":1}`, sess.CSRF); resp.StatusCode != 400 {
		t.Fatalf("unknown field: %d", resp.StatusCode)
	}
	if resp := post(`{"name":"x","lifetime":"100000h"}`, sess.CSRF); resp.StatusCode != 400 || !strings.Contains(b.body, "maximum") {
		t.Fatalf("too long: %d %s", resp.StatusCode, b.body)
	}
	resp := post(`{"name":"script","lifetime":"1h","read_only":true}`, sess.CSRF)
	var minted mintResponse
	if resp.StatusCode != 201 || json.Unmarshal([]byte(b.body), &minted) != nil || minted.Password == "" || !minted.ReadOnly {
		t.Fatalf("create: %d %s", resp.StatusCode, b.body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("API create response is cacheable")
	}
	if code, _, _ := s.token("alice", minted.Password); code != 200 {
		t.Fatalf("API password: %d", code)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.base+"/api/v1/passwords/"+minted.ID, nil)
	req.Header.Set(csrfHeader, sess.CSRF)
	if resp := b.do(req); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, b.body)
	}
	if code, _, _ := s.token("alice", minted.Password); code != 401 {
		t.Fatalf("deleted API password: %d", code)
	}
	// Signed out: 401 JSON, not a redirect.
	anon := s.browser()
	if resp := anon.get(s.base + "/api/v1/passwords"); resp.StatusCode != 401 {
		t.Fatalf("anonymous API: %d", resp.StatusCode)
	}
}

func TestRevalidationReachesIssuedPasswords(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	pw1 := b.mint("one", false)
	pw2 := b.mint("two", false)

	// Moved from team-a to team-b at the provider: nothing changes until
	// revalidate_every has passed, then every password sees it.
	if err := s.idp.SetGroups("alice", []string{"team-b"}); err != nil {
		t.Fatal(err)
	}
	if _, granted, _ := s.token("alice", pw1, "repository:team-a/x:push"); strings.Join(granted, "") != "team-a/x:push" {
		t.Fatalf("before revalidation: %v", granted)
	}
	s.clock.Advance(revalidateEvery + time.Second)
	// Due: the first request is answered with the last confirmed groups
	// at once and starts the refresh; soon every password sees the new.
	if code, granted, body := s.token("alice", pw1, "repository:team-a/x:push"); code != 200 || strings.Join(granted, "") != "team-a/x:push" {
		t.Fatalf("while revalidating: %d %v %s", code, granted, body)
	}
	eventually(t, "the refreshed groups", func() bool {
		_, granted, _ := s.token("alice", pw1, "repository:team-a/x:push", "repository:team-b/x:push")
		return strings.Join(granted, " ") == "team-b/x:push"
	})
	for _, pw := range []string{pw1, pw2} {
		code, granted, body := s.token("alice", pw, "repository:team-a/x:push", "repository:team-b/x:push")
		if code != 200 || strings.Join(granted, " ") != "team-b/x:push" {
			t.Fatalf("after revalidation: %d %v %s", code, granted, body)
		}
	}
	// The page shows the new groups.
	if b.get(s.base + "/"); !strings.Contains(b.body, "team-b") || strings.Contains(b.body, "<code>team-a/**</code>") {
		t.Errorf("page still shows old groups")
	}

	// Disabled at the provider: every password stops, with a message
	// saying where to log in again.
	if err := s.idp.SetDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(revalidateEvery + time.Second)
	var code int
	var body string
	eventually(t, "the disabled user's refusal", func() bool {
		code, _, body = s.token("alice", pw1, "repository:team-b/x:pull")
		return code != 200
	})
	if code != 401 || !strings.Contains(body, "log in again at "+s.base) {
		t.Fatalf("disabled user: %d %s", code, body)
	}
	// Their browser session ends too: the page and the API refuse.
	if resp := b.get(s.base + "/"); resp.StatusCode != 401 || !strings.Contains(b.body, "Log in again") {
		t.Fatalf("page of a disabled user: %d\n%s", resp.StatusCode, b.body)
	}
	if resp := b.get(s.base + "/"); resp.StatusCode != 200 || !strings.Contains(b.body, "Log in") || strings.Contains(b.body, "New app password") {
		t.Fatalf("the session was not ended: %d", resp.StatusCode)
	}
	if code, _, _ := s.token("alice", pw2); code != 401 {
		t.Fatalf("second password of a disabled user: %d", code)
	}
	// Re-enabled and logged in again: the passwords work again.
	if err := s.idp.SetDisabled("alice", false); err != nil {
		t.Fatal(err)
	}
	b2 := s.browser()
	b2.login("alice", "alice-pw")
	if code, _, body := s.token("alice", pw2, "repository:team-b/x:pull"); code != 200 {
		t.Fatalf("after logging in again: %d %s", code, body)
	}
}

func TestRevalidationProviderDown(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	pw := b.mint("one", false)
	s.idpTS.Close() // the provider is unreachable from now on
	s.clock.Advance(revalidateEvery + time.Second)
	if code, granted, body := s.token("alice", pw, "repository:team-a/x:pull"); code != 200 || len(granted) != 1 {
		t.Fatalf("within the grace period: %d %v %s", code, granted, body)
	}
	s.clock.Advance(time.Hour + time.Minute)
	if code, _, body := s.token("alice", pw, "repository:team-a/x:pull"); code != 503 {
		t.Fatalf("beyond the grace period: %d %s (want 503: fail closed, not 401)", code, body)
	}
}

// TestHungProviderIsNotOnTheTokenPath: with the provider accepting
// connections and never answering, token requests of a person whose
// groups are due are answered at once with the last confirmed groups.
func TestHungProviderIsNotOnTheTokenPath(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	pw := b.mint("one", false)
	s.hang.Store(true)
	s.clock.Advance(revalidateEvery + time.Second)
	if code, granted, body := s.token("alice", pw, "repository:team-a/x:pull"); code != 200 || len(granted) != 1 {
		t.Fatalf("first request while the provider hangs: %d %v %s", code, granted, body)
	}
	eventually(t, "the refresh to reach the provider", func() bool { return s.hangs.Load() >= 1 })
	for i := range 5 {
		// Each answer comes while the refresh is still held by the
		// provider (a request that waited for it would return only
		// after the provider call gave up, and so let go of it).
		code, granted, body := s.token("alice", pw, "repository:team-a/x:pull")
		if code != 200 || len(granted) != 1 {
			t.Fatalf("request %d while the provider hangs: %d %v %s", i, code, granted, body)
		}
		if s.held.Load() != 1 {
			t.Fatalf("request %d returned after the provider call ended: it waited for the provider", i)
		}
	}
	if n := s.hangs.Load(); n != 1 {
		t.Errorf("%d refreshes held by the provider, want 1 (one per user)", n)
	}
}

func TestLoginSecurity(t *testing.T) {
	s := newSite(t)

	t.Run("replayed callback", func(t *testing.T) {
		b := s.browser()
		b.startLogin()
		b.noFollow = true
		resp := b.submitLogin("alice", "alice-pw")
		// Follow the provider's redirects by hand up to our callback.
		for resp.StatusCode/100 == 3 && !strings.HasPrefix(resp.Header.Get("Location"), s.base+"/callback") {
			resp = b.get(resp.Request.URL.ResolveReference(mustURL(t, resp.Header.Get("Location"))).String())
		}
		callback := resp.Header.Get("Location")
		if !strings.HasPrefix(callback, s.base+"/callback?") {
			t.Fatalf("no callback redirect: %d %v", resp.StatusCode, resp.Header)
		}
		first := b.get(callback)
		if first.StatusCode != 303 {
			t.Fatalf("first callback: %d %s", first.StatusCode, b.body)
		}
		if again := b.get(callback); again.StatusCode != 400 || !strings.Contains(b.body, "already used") {
			t.Fatalf("replayed callback: %d %s", again.StatusCode, b.body)
		}
	})

	t.Run("callback in another browser", func(t *testing.T) {
		b := s.browser()
		b.startLogin()
		b.noFollow = true
		resp := b.submitLogin("alice", "alice-pw")
		for resp.StatusCode/100 == 3 && !strings.HasPrefix(resp.Header.Get("Location"), s.base+"/callback") {
			resp = b.get(resp.Request.URL.ResolveReference(mustURL(t, resp.Header.Get("Location"))).String())
		}
		other := s.browser()
		other.noFollow = true
		if r := other.get(resp.Header.Get("Location")); r.StatusCode != 400 {
			t.Fatalf("callback without the login cookie: %d", r.StatusCode)
		}
		if other.get(s.base + "/"); strings.Contains(other.body, "Hello") {
			t.Fatal("the other browser got a session")
		}
	})

	t.Run("open redirect", func(t *testing.T) {
		b := s.browser()
		b.noFollow = true
		resp := b.get(s.base + "/login?next=https://evil.example/&redirect_uri=https://evil.example/cb")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 302 || !strings.HasPrefix(loc, s.idp.Issuer()) || strings.Contains(loc, "evil") {
			t.Fatalf("login redirect: %d %q", resp.StatusCode, loc)
		}
		b.noFollow = false
		b.get(loc)
		if resp := b.submitLogin("alice", "alice-pw"); resp.Request.URL.String() != s.base+"/" {
			t.Fatalf("landed on %s", resp.Request.URL)
		}
	})

	t.Run("CSRF", func(t *testing.T) {
		b := s.browser()
		b.login("bob", "bob-pw")
		csrf := b.csrf()
		for name, form := range map[string]url.Values{
			"no token":    {"name": {"x"}},
			"wrong token": {"name": {"x"}, "csrf": {"wrong"}},
		} {
			if resp := b.postForm(s.base+"/passwords", form); resp.StatusCode != 403 {
				t.Errorf("%s: %d", name, resp.StatusCode)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, s.base+"/passwords", strings.NewReader(url.Values{"name": {"x"}, "csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if resp := b.do(req); resp.StatusCode != 403 {
			t.Errorf("cross-origin POST with a valid token: %d", resp.StatusCode)
		}
		if list, _ := s.st.ListPasswords(context.Background(), "bob"); len(list) != 0 {
			t.Fatalf("a refused POST created %d password(s)", len(list))
		}
		if resp := b.postForm(s.base+"/logout", url.Values{}); resp.StatusCode != 403 {
			t.Errorf("logout without token: %d", resp.StatusCode)
		}
	})

	t.Run("revoking another user's password", func(t *testing.T) {
		alice := s.browser()
		alice.login("alice", "alice-pw")
		pw := alice.mint("mine", false)
		c, _ := passwords.Parse(pw)
		bob := s.browser()
		bob.login("bob", "bob-pw")
		if resp := bob.postForm(s.base+"/passwords/"+c.ID+"/revoke", url.Values{"csrf": {bob.csrf()}}); resp.StatusCode != 404 {
			t.Fatalf("bob revoking alice's password: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodDelete, s.base+"/api/v1/passwords/"+c.ID, nil)
		req.Header.Set(csrfHeader, bob.csrf())
		if resp := bob.do(req); resp.StatusCode != 404 {
			t.Fatalf("bob deleting alice's password via API: %d", resp.StatusCode)
		}
		if code, _, _ := s.token("alice", pw); code != 200 {
			t.Fatalf("alice's password stopped working: %d", code)
		}
	})

	t.Run("logout", func(t *testing.T) {
		b := s.browser()
		b.login("alice", "alice-pw")
		csrf := b.csrf()
		b.noFollow = true
		resp := b.postForm(s.base+"/logout", url.Values{"csrf": {csrf}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 303 || !strings.HasPrefix(loc, s.idp.Issuer()) || !strings.Contains(loc, "id_token_hint=") ||
			!strings.Contains(loc, url.QueryEscape(s.base+"/")) {
			t.Fatalf("logout: %d %q", resp.StatusCode, loc)
		}
		if b.get(s.base + "/"); !strings.Contains(b.body, `id="login"`) {
			t.Fatal("still signed in after logout")
		}
	})
}

func TestLoginNotAllowed(t *testing.T) {
	s := newSite(t, "registry-users")
	b := s.browser()
	b.startLogin()
	resp := b.submitLogin("alice", "alice-pw")
	if resp.StatusCode != 403 || !strings.Contains(b.body, "not in a group allowed") {
		t.Fatalf("not allowed: %d\n%s", resp.StatusCode, b.body)
	}
	if b.get(s.base + "/"); strings.Contains(b.body, "Hello") {
		t.Fatal("a refused user got a session")
	}
}

func TestLoginProviderDown(t *testing.T) {
	s := newSite(t)
	s.idpTS.Close()
	b := s.browser()
	resp := b.get(s.base + "/login")
	if resp.StatusCode != 502 || !strings.Contains(b.body, "cannot be reached") {
		t.Fatalf("provider down: %d\n%s", resp.StatusCode, b.body)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNormalOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://Bridge.Example.com:443": "https://bridge.example.com",
		"https://bridge.example.com/":    "https://bridge.example.com",
		"http://localhost:80":            "http://localhost",
		"http://localhost:5001":          "http://localhost:5001",
		"https://[::1]:443":              "https://[::1]",
		"https://[::1]:8443":             "https://[::1]:8443",
	} {
		if got := normalOrigin(in); got != want {
			t.Errorf("normalOrigin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogSafeUsername(t *testing.T) {
	m, _ := passwords.Mint()
	if got := logSafeUsername(m.Password); strings.Contains(got, m.Password[len(passwords.PasswordPrefix)+17:]) || !strings.Contains(got, m.ID) {
		t.Errorf("a password in the username field was logged: %q", got)
	}
	for _, in := range []string{m.Password + " ", "\n" + m.Password, "x" + m.Password, m.Password[:60]} {
		if got := logSafeUsername(in); strings.Contains(got, m.Password[len(passwords.PasswordPrefix)+17:len(passwords.PasswordPrefix)+30]) {
			t.Errorf("logSafeUsername(%q) = %q leaks the secret", in, got)
		}
	}
	if got := logSafeUsername(strings.Repeat("a", 300)); len(got) > 70 {
		t.Errorf("long username not cut: %d bytes", len(got))
	}
}

func TestLoginRefusesARobotsUsername(t *testing.T) {
	s := newSite(t)
	m, _ := passwords.Mint()
	if err := s.st.CreatePassword(context.Background(), store.Password{ID: m.ID, Subject: "cli:alice", Username: "alice",
		Digest: m.Digest, CreatedAt: s.clock.Now(), ExpiresAt: s.clock.Now().Add(time.Hour), CreatedBy: store.CreatedByCLI}); err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	b.startLogin()
	if resp := b.submitLogin("alice", "alice-pw"); resp.StatusCode != 409 || !strings.Contains(b.body, "already belongs") {
		t.Fatalf("login over a robot's username: %d\n%s", resp.StatusCode, b.body)
	}
}
