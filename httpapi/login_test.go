package httpapi

import (
	"bufio"
	"context"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/store/redis"
)

// writeCounter is a real store that counts the calls that write to it.
type writeCounter struct {
	store.Store
	writes atomic.Int64
}

func (c *writeCounter) CreateSession(ctx context.Context, s store.Session) error {
	c.writes.Add(1)
	return c.Store.CreateSession(ctx, s)
}

func (c *writeCounter) TouchSession(ctx context.Context, id string, seen, expires time.Time) error {
	c.writes.Add(1)
	return c.Store.TouchSession(ctx, id, seen, expires)
}

func (c *writeCounter) PutUser(ctx context.Context, u store.User) error {
	c.writes.Add(1)
	return c.Store.PutUser(ctx, u)
}

func (c *writeCounter) CreatePassword(ctx context.Context, p store.Password) error {
	c.writes.Add(1)
	return c.Store.CreatePassword(ctx, p)
}

func (c *writeCounter) TryLock(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	c.writes.Add(1)
	return c.Store.TryLock(ctx, name, ttl)
}

// redisDBSize asks the Redis server at addr for DBSIZE, in plain RESP.
func redisDBSize(t *testing.T, addr string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("DBSIZE\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("DBSIZE: %q, %v", line, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// anonymousLogins sends n GET /login without cookies, 4 at a time, and
// fails unless each is sent to the provider.
func anonymousLogins(t *testing.T, s *site, n int) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var wg sync.WaitGroup
	var bad atomic.Int64
	per := n / 4
	for range 4 {
		wg.Go(func() {
			for range per {
				resp, err := c.Get(s.base + "/login")
				if err != nil {
					bad.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), s.idp.Issuer()) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d GET /login did not redirect to the provider", bad.Load(), n)
	}
}

// TestAnonymousLoginsStoreNothing: /login keeps the login in the browser's
// cookie, so no number of anonymous requests grows the store.
func TestAnonymousLoginsStoreNothing(t *testing.T) {
	const n = 20_000
	t.Run("memory", func(t *testing.T) {
		var counter *writeCounter
		s := newSiteOn(t, func(now func() time.Time) store.Store {
			mem := memory.New(now)
			t.Cleanup(func() { mem.Close() })
			counter = &writeCounter{Store: mem}
			return counter
		})
		anonymousLogins(t, s, n)
		if w := counter.writes.Load(); w != 0 {
			t.Fatalf("%d anonymous GET /login wrote to the store %d times, want 0", n, w)
		}
		// The logins still work.
		s.browser().login("alice", "alice-pw")
	})
	t.Run("redis", func(t *testing.T) {
		addr := testenv.Redis(t)
		s := newSiteOn(t, func(now func() time.Time) store.Store {
			st, err := redis.New(redis.Config{URL: "redis://" + addr}, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
		before := redisDBSize(t, addr)
		anonymousLogins(t, s, n)
		if after := redisDBSize(t, addr); after != before {
			t.Fatalf("DBSIZE went from %d to %d after %d anonymous GET /login, want unchanged", before, after, n)
		}
		s.browser().login("alice", "alice-pw")
	})
}

// toCallback starts a login and signs in at the provider, and returns the
// provider's redirect back to the bridge, not yet followed.
func (b *browser) toCallback(user, password string) string {
	b.t.Helper()
	b.startLogin()
	return b.toProviderRedirect(user, password)
}

// toProviderRedirect fills the provider's login form on the current page
// and returns the provider's redirect back to the bridge, not yet followed.
func (b *browser) toProviderRedirect(user, password string) string {
	b.t.Helper()
	b.noFollow = true
	defer func() { b.noFollow = false }()
	resp := b.submitLogin(user, password)
	for resp.StatusCode/100 == 3 && !strings.HasPrefix(resp.Header.Get("Location"), b.s.base+"/callback") {
		resp = b.get(resp.Request.URL.ResolveReference(mustURL(b.t, resp.Header.Get("Location"))).String())
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, b.s.base+"/callback?") {
		b.t.Fatalf("no callback redirect: %d %v", resp.StatusCode, resp.Header)
	}
	return loc
}

// finish follows a callback URL and reports whether it signed the
// browser in.
func (b *browser) finish(callback string) (int, bool) {
	b.t.Helper()
	resp := b.get(callback)
	status := resp.StatusCode
	b.get(b.s.base + "/")
	return status, strings.Contains(b.body, "Hello, ")
}

func (b *browser) loginCookie() *http.Cookie {
	b.t.Helper()
	for _, c := range b.c.Jar.Cookies(mustURL(b.t, b.s.base)) {
		if c.Name == loginCookie {
			return c
		}
	}
	b.t.Fatal("no login cookie")
	return nil
}

func (b *browser) setLoginCookie(value string) {
	b.c.Jar.SetCookies(mustURL(b.t, b.s.base), []*http.Cookie{{Name: loginCookie, Value: value, Path: "/"}})
}

// TestCallbackFromAnotherBrowser: whoever learns a login's state and code
// cannot finish it elsewhere, and trying does not spoil it for the browser
// that started it.
func TestCallbackFromAnotherBrowser(t *testing.T) {
	s := newSite(t)
	owner := s.browser()
	callback := owner.toCallback("alice", "alice-pw")

	other := s.browser()
	other.startLogin() // a login cookie of its own, for another state
	ownCookie := other.loginCookie().Value
	for name, cookie := range map[string]string{
		"no cookie":          "",
		"its own login":      ownCookie,
		"garbage cookie":     "garbage",
		"another key's seal": sealedBy(t, nil, owner.state),
	} {
		t.Run(name, func(t *testing.T) {
			thief := s.browser()
			if cookie != "" {
				thief.setLoginCookie(cookie)
			}
			status, in := thief.finish(callback)
			if status != http.StatusBadRequest || in {
				t.Fatalf("callback in another browser: %d, signed in %v", status, in)
			}
		})
	}
	if status, in := owner.finish(callback); !in {
		t.Fatalf("the browser that started the login could not finish it after the attempts: %d\n%s", status, owner.body)
	}
}

// sealedBy seals a login for state with sealer, or with a fresh key when
// sealer is nil.
func sealedBy(t *testing.T, sealer *oidc.Sealer, state string) string {
	t.Helper()
	if sealer == nil {
		var err error
		if sealer, err = oidc.RandomSealer(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := oidc.NewLoginState()
	if err != nil {
		t.Fatal(err)
	}
	st.State = state
	v, err := sealer.SealLogin(st, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCallbackSingleUse: a login completes once, even when its cookie is
// kept (or stolen) and the callback replayed, or the provider asked again
// for a fresh code for the same authorization request.
func TestCallbackSingleUse(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.noFollow = true
	authURL := b.get(s.base + "/login").Header.Get("Location")
	b.noFollow = false
	cookie := b.loginCookie().Value
	b.state = mustURL(t, authURL).Query().Get("state")
	// Sign in at the provider and stop at its redirect back to us.
	b.get(authURL)
	callback := b.toProviderRedirect("alice", "alice-pw")
	if status, in := b.finish(callback); !in {
		t.Fatalf("first login: %d\n%s", status, b.body)
	}

	tests := []struct {
		name     string
		callback func(thief *browser) string
	}{
		{"same callback", func(*browser) string { return callback }},
		{"fresh code for the same state", func(thief *browser) string {
			thief.get(authURL)
			return thief.toProviderRedirect("alice", "alice-pw")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thief := s.browser()
			cb := tt.callback(thief)
			if mustURL(t, cb).Query().Get("state") != b.state {
				t.Fatalf("the provider sent another state: %s", cb)
			}
			thief.setLoginCookie(cookie)
			status, in := thief.finish(cb)
			if status != http.StatusBadRequest || in {
				t.Fatalf("second completion of one login: %d, signed in %v\n%s", status, in, thief.body)
			}
		})
	}
}

// TestCallbackRefusesAlteredLogins: the sealed cookie cannot be changed,
// outlived, or filled with another nonce or verifier.
func TestCallbackRefusesAlteredLogins(t *testing.T) {
	s := newSite(t)
	reseal := func(t *testing.T, b *browser, change func(*oidc.LoginState)) {
		st, expires, err := s.sealer.OpenLogin(b.loginCookie().Value, s.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		change(&st)
		v, err := s.sealer.SealLogin(st, expires)
		if err != nil {
			t.Fatal(err)
		}
		b.setLoginCookie(v)
	}
	tests := []struct {
		name   string
		before func(t *testing.T, b *browser)
	}{
		{"flipped character", func(t *testing.T, b *browser) {
			v := []byte(b.loginCookie().Value)
			v[len(v)/2] ^= 'A' ^ 'B'
			b.setLoginCookie(string(v))
		}},
		{"truncated", func(t *testing.T, b *browser) { b.setLoginCookie(b.loginCookie().Value[:40]) }},
		{"expired", func(t *testing.T, b *browser) { s.clock.Advance(loginStateTTL + time.Second) }},
		{"wrong nonce", func(t *testing.T, b *browser) {
			reseal(t, b, func(st *oidc.LoginState) { st.Nonce = "not-the-nonce" })
		}},
		{"wrong PKCE verifier", func(t *testing.T, b *browser) {
			reseal(t, b, func(st *oidc.LoginState) { st.Verifier = strings.Repeat("x", 43) })
		}},
		{"other state", func(t *testing.T, b *browser) {
			reseal(t, b, func(st *oidc.LoginState) { st.State = "another-state" })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.browser()
			callback := b.toCallback("alice", "alice-pw")
			tt.before(t, b)
			status, in := b.finish(callback)
			if status != http.StatusBadRequest || in {
				t.Fatalf("altered login: %d, signed in %v\n%s", status, in, b.body)
			}
		})
	}
}

// TestLoginCookie: small, HttpOnly, SameSite=Lax, ten minutes, and no
// secret in the clear.
func TestLoginCookie(t *testing.T) {
	s := newSite(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	auth := mustURL(t, resp.Header.Get("Location")).Query()
	var got *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == loginCookie {
			got = ck
		}
	}
	switch {
	case got == nil:
		t.Fatal("no login cookie")
	case len(got.Value) >= 1024 || len(got.Value) > oidc.MaxSealedLogin:
		t.Errorf("login cookie is %d characters", len(got.Value))
	case !got.HttpOnly || got.SameSite != http.SameSiteLaxMode || got.Path != "/" || got.MaxAge != int(loginStateTTL/time.Second):
		t.Errorf("login cookie attributes: %+v", got)
	case strings.Contains(got.Value, auth.Get("state")) || strings.Contains(got.Value, auth.Get("nonce")):
		t.Error("the login cookie shows the state or nonce in the clear")
	}
}

// TestCallbackErrorShowsOurWords: the provider's error response is mapped
// to a fixed message; its text, which whoever crafts the link chooses, is
// never on the page.
func TestCallbackErrorShowsOurWords(t *testing.T) {
	s := newSite(t)
	const attacker = "Your account is locked, call 555-0100 at evil.example"
	tests := []struct {
		code string
		want string
	}{
		{"access_denied", "the request was denied"},
		{"login_required", "sign in or confirm"},
		{"consent_required", "sign in or confirm"},
		{"interaction_required", "sign in or confirm"},
		{"account_selection_required", "sign in or confirm"},
		{"temporarily_unavailable", "unavailable right now"},
		{"server_error", "unavailable right now"},
		{"invalid_request", "configuration problem"},
		{"unauthorized_client", "configuration problem"},
		{"unsupported_response_type", "configuration problem"},
		{"invalid_scope", "configuration problem"},
		{attacker, "the login failed. Try again."},
		{"<script>alert(1)</script>", "the login failed. Try again."},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			b := s.browser()
			q := url.Values{"error": {tt.code}, "error_description": {attacker}, "error_uri": {"https://evil.example/"}, "state": {"x"}}
			resp := b.get(s.base + "/callback?" + q.Encode())
			page := html.UnescapeString(b.body)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, tt.want) {
				t.Fatalf("error %q: %d, want 403 with %q\n%s", tt.code, resp.StatusCode, tt.want, b.body)
			}
			for _, bad := range []string{attacker, "555-0100", "evil.example", "<script>", "alert(1)"} {
				if strings.Contains(page, bad) {
					t.Fatalf("error %q: the page shows %q\n%s", tt.code, bad, b.body)
				}
			}
		})
	}
}

// TestPageCSP: forms may post to this site, and on a signed-in page (whose
// logout redirects to the provider) to exactly the provider's logout
// origin; never anywhere else.
func TestPageCSP(t *testing.T) {
	s := newSite(t)
	const base = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	b := s.browser()
	if got := b.get(s.base + "/").Header.Get("Content-Security-Policy"); got != base {
		t.Errorf("signed-out page CSP:\n got %s\nwant %s", got, base)
	}
	b.login("alice", "alice-pw")
	want := base + " " + s.idp.Issuer()
	if got := b.get(s.base + "/").Header.Get("Content-Security-Policy"); got != want {
		t.Errorf("signed-in page CSP:\n got %s\nwant %s", got, want)
	}
	b.noFollow = true
	resp := b.postForm(s.base+"/logout", url.Values{"csrf": {find(t, csrfRE, b.body)}})
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, s.idp.Issuer()+"/") {
		t.Errorf("logout goes to %q, which the CSP does not allow", loc)
	}
}

// TestPageCSPBeforeDiscovery: a replica that has not talked to the
// provider yet still allows the logout origin on a signed-in page, for a
// session another replica created.
func TestPageCSPBeforeDiscovery(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	cfg := oidc.Config{Issuer: s.idp.Issuer(), ClientID: "bridge", ClientSecret: "bridge-secret"}
	cfg.SetDefaults()
	fresh, err := oidc.New(oidc.Options{Config: cfg, RedirectURL: s.base + "/callback"})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := groups.Compile(testRules)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Log: slog.New(slog.DiscardHandler), Passwords: s.backend, Ping: s.backend.Ping, PublicURL: s.base, Now: s.clock.Now,
		Policy: func() *groups.Policy { return policy },
		Login:  &LoginOptions{Provider: fresh, Sessions: s.backend, Accounts: s.acc, Sealer: s.sealer, IdleTimeout: time.Hour, MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, s.base+"/", nil)
	for _, c := range b.c.Jar.Cookies(mustURL(t, s.base)) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Hello, alice") {
		t.Fatalf("the fresh replica's page: %d\n%s", rec.Code, rec.Body)
	}
	if got, want := rec.Header().Get("Content-Security-Policy"), "form-action 'self' "+s.idp.Issuer(); !strings.HasSuffix(got, want) {
		t.Fatalf("CSP of the first signed-in page on a fresh replica: %s, want it to end in %s", got, want)
	}
}

// TestStatic: the static files have the pages' security headers, and no
// directory is listed.
func TestStatic(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	check := func(t *testing.T, path string, status int) {
		t.Helper()
		resp := b.get(s.base + path)
		if resp.StatusCode != status {
			t.Errorf("%s: %d, want %d\n%s", path, resp.StatusCode, status, b.body)
		}
		for h, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Content-Security-Policy": "default-src 'none'",
		} {
			if got := resp.Header.Get(h); !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
		if strings.Contains(b.body, `<a href="`) {
			t.Errorf("%s lists a directory:\n%s", path, b.body)
		}
	}
	for _, path := range []string{"/static/", "/static//", "/static/missing.css", "/static/%2e%2e/", "/static/style.css/"} {
		t.Run(path, func(t *testing.T) { check(t, path, http.StatusNotFound) })
	}
	for _, path := range []string{"/static/style.css", "/static/copy.js"} {
		t.Run(path, func(t *testing.T) { check(t, path, http.StatusOK) })
	}
}

func TestProviderErrorMessage(t *testing.T) {
	seen := map[string]bool{}
	for _, code := range []string{"access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "login_required", "consent_required",
		"interaction_required", "account_selection_required"} {
		msg := providerErrorMessage(code)
		if msg == providerErrorMessage("no-such-code") {
			t.Errorf("%s gets the generic message", code)
		}
		seen[msg] = true
	}
	if len(seen) < 4 {
		t.Errorf("only %d different messages", len(seen))
	}
}
