package httpapi_test

// Fuzz targets that drive the network-facing request bodies through the
// real handler (httpapi.New + ServeHTTP) with the memory store, a real
// signing key and, for the page and the API, a session obtained by logging
// in at the development provider. They use only the package's exported
// surface, so they hold however the handlers are arranged inside.
// docs/fuzzing.md lists every target and how to run them long.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/httpapi"
	"github.com/registry-bridge/bridge/internal/devidp"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/tokens"
)

const fuzzService = "registry.test"

var fuzzRules = []groups.Rule{
	{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull", "push"}},
	{Users: []string{"*"}, Repositories: []string{"users/${username}/**"}, Actions: []string{"pull", "push", "delete"}},
	{Anonymous: true, Repositories: []string{"public/**"}, Actions: []string{"pull"}},
}

// fuzzBridge is a bridge for fuzzing: the handler, its store, and what a
// client needs to get past authentication.
type fuzzBridge struct {
	srv      http.Handler
	st       *memory.Store
	password string         // a CLI (robot) password of "robot"
	cookies  []*http.Cookie // a signed-in session of "alice" (login only)
	csrf     string
}

// newFuzzBridge builds the bridge once per fuzz worker. With login, it
// also runs the browser login against devidp over loopback and keeps the
// session cookies.
func newFuzzBridge(f *testing.F, login bool) *fuzzBridge {
	f.Helper()
	b := &fuzzBridge{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keyPEM, _, err := tokens.GenerateKey(tokens.AlgES256, "fuzz", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	keyFile := filepath.Join(f.TempDir(), "signing.key")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		f.Fatal(err)
	}
	key, err := tokens.LoadSigningKey(keyFile, "", tokens.KeyIDThumbprint)
	if err != nil {
		f.Fatal(err)
	}
	issuer, err := tokens.NewIssuer(tokens.Options{Issuer: "bridge-fuzz", Service: fuzzService, Key: key, Now: time.Now})
	if err != nil {
		f.Fatal(err)
	}
	policy, err := groups.Compile(fuzzRules)
	if err != nil {
		f.Fatal(err)
	}
	b.st = memory.New(time.Now)
	f.Cleanup(func() { b.st.Close() })

	m, err := passwords.Mint()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	if err := b.st.CreatePassword(f.Context(), store.Password{
		ID: m.ID, Subject: "cli:robot", Username: "robot", Groups: []string{"team-a"}, Digest: m.Digest,
		RefreshDigest: m.RefreshDigest, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), CreatedBy: store.CreatedByCLI,
	}); err != nil {
		f.Fatal(err)
	}
	b.password = m.Password

	opts := httpapi.Options{
		Log: log, Passwords: b.st, Ping: b.st.Ping, Tokens: issuer,
		Policy: func() *groups.Policy { return policy }, JWKS: func() any { return issuer.JWKS() },
		Service: fuzzService, PublicURL: "http://bridge.test", Now: time.Now,
	}
	if !login {
		srv, err := httpapi.New(opts)
		if err != nil {
			f.Fatal(err)
		}
		b.srv = srv
		return b
	}

	bridgeTS := httptest.NewUnstartedServer(nil)
	idpTS := httptest.NewUnstartedServer(nil)
	base := "http://" + bridgeTS.Listener.Addr().String()
	idpURL := "http://" + idpTS.Listener.Addr().String()
	idp, err := devidp.New(devidp.Config{
		Issuer:  idpURL,
		Users:   []devidp.User{{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"team-a"}}},
		Clients: []devidp.Client{{ID: "bridge", Secret: "bridge-secret", RedirectURIs: []string{base + "/callback"}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	idpTS.Config.Handler = idp.Handler()
	idpTS.Start()
	f.Cleanup(idpTS.Close)
	cfg := oidc.Config{Issuer: idpURL, ClientID: "bridge", ClientSecret: "bridge-secret"}
	cfg.SetDefaults()
	prov, err := oidc.New(oidc.Options{Config: cfg, RedirectURL: base + "/callback"})
	if err != nil {
		f.Fatal(err)
	}
	sealer, err := oidc.RandomSealer()
	if err != nil {
		f.Fatal(err)
	}
	// No mint rate limit: every input starts from the same state (the
	// limit is tested in accounts).
	limits := accounts.Limits{DefaultLifetime: 720 * time.Hour, MaxLifetime: 2160 * time.Hour, MaxLive: 10}
	acc := accounts.New(accounts.Options{
		Store: b.st, Provider: prov, Sealer: sealer, Limits: limits,
		Revalidation:  accounts.Revalidation{Every: time.Hour, Grace: time.Hour},
		SessionMaxAge: 24 * time.Hour, Log: log, Now: time.Now,
	})
	f.Cleanup(acc.Close)
	opts.PublicURL = base
	opts.Groups = acc
	opts.Login = &httpapi.LoginOptions{
		Provider: prov, Sessions: b.st, Accounts: acc, Sealer: sealer, Limits: limits,
		IdleTimeout: 24 * time.Hour, MaxAge: 24 * time.Hour, Registry: fuzzService,
	}
	srv, err := httpapi.New(opts)
	if err != nil {
		f.Fatal(err)
	}
	b.srv = srv
	bridgeTS.Config.Handler = srv
	bridgeTS.Start()
	f.Cleanup(bridgeTS.Close)

	// The browser login: /login → provider form → /callback → the page.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, body := fuzzGet(f, c, base+"/login")
	id := fuzzFind(f, `name="authRequestID" value="([^"]+)"`, body)
	formURL := resp.Request.URL.ResolveReference(&url.URL{Path: "login"})
	resp, err = c.PostForm(formURL.String(), url.Values{"authRequestID": {id}, "username": {"alice"}, "password": {"alice-pw"}})
	if err != nil {
		f.Fatal(err)
	}
	resp.Body.Close()
	_, body = fuzzGet(f, c, base+"/api/v1/session")
	var sess struct {
		Username string `json:"username"`
		CSRF     string `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(body), &sess); err != nil || sess.Username != "alice" || sess.CSRF == "" {
		f.Fatalf("no session after login: %v %s", err, body)
	}
	b.csrf = sess.CSRF
	b.cookies = jar.Cookies(mustParse(f, base))
	return b
}

func fuzzGet(f *testing.F, c *http.Client, u string) (*http.Response, string) {
	f.Helper()
	resp, err := c.Get(u)
	if err != nil {
		f.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, raw)
	}
	return resp, string(raw)
}

func fuzzFind(f *testing.F, re, body string) string {
	f.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(body)
	if m == nil {
		f.Fatalf("no %s in\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

func mustParse(f *testing.F, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		f.Fatal(err)
	}
	return u
}

// serve runs one request through the handler.
func (b *fuzzBridge) serve(r *http.Request) *httptest.ResponseRecorder {
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.srv.ServeHTTP(w, r)
	return w
}

// alicesPasswords counts alice's passwords; sweep deletes them, so every
// input starts from the same store and the page stays small.
func (b *fuzzBridge) alicesPasswords(t *testing.T) int {
	ps, err := b.st.ListPasswords(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

func (b *fuzzBridge) sweep(t *testing.T) {
	ps, err := b.st.ListPasswords(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := b.st.DeletePassword(t.Context(), p.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// checkMint asserts what every mint request must hold: no 5xx, and a
// password is created exactly when the answer is a success.
func (b *fuzzBridge) checkMint(t *testing.T, w *httptest.ResponseRecorder, wantOK int) {
	t.Helper()
	defer b.sweep(t)
	n := b.alicesPasswords(t)
	switch {
	case w.Code >= 500:
		t.Fatalf("status %d: %s", w.Code, w.Body)
	case w.Code == wantOK:
		if n != 1 {
			t.Fatalf("status %d but %d passwords were created", w.Code, n)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("a minted password is served with Cache-Control %q", cc)
		}
	case w.Code >= 200 && w.Code < 400:
		t.Fatalf("status %d, want %d or a 4xx", w.Code, wantOK)
	default:
		if n != 0 {
			t.Fatalf("status %d but %d passwords were created", w.Code, n)
		}
		if w.Body.Len() == 0 {
			t.Fatalf("status %d without a message", w.Code)
		}
	}
}

// FuzzTokenEndpoint sends arbitrary token requests (GET with a query, POST
// with a form) to /token. In the query, the body and the Basic password,
// "@pw@" stands for a valid app password and "@rt@" for its refresh token,
// so the fuzzer reaches the code past authentication.
func FuzzTokenEndpoint(f *testing.F) {
	b := newFuzzBridge(f, false)
	rt, err := passwords.RefreshToken(b.password)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "service=registry.test&scope=repository:team-a/app:pull,push", "robot", "@pw@", "", []byte(nil))
	f.Add("GET", "service=registry.test&offline_token=true&client_id=docker", "robot", "@pw@", "", []byte(nil))
	f.Add("GET", "scope=repository:public/x:pull&scope=registry:catalog:*", "", "", "", []byte(nil))
	f.Add("POST", "", "", "", "application/x-www-form-urlencoded", []byte("grant_type=password&username=robot&password=@pw@&service=registry.test&scope=repository:team-a/x:push&client_id=docker"))
	f.Add("POST", "", "", "", "application/x-www-form-urlencoded; charset=utf-8", []byte("grant_type=refresh_token&refresh_token=@rt@&service=registry.test&scope=repository:team-a/x:pull"))
	f.Add("POST", "", "robot", "wrong", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--x--\r\n"))
	f.Add("PUT", "scope=%zz", "robot:x", "@pw@", "text/plain", []byte("{}"))
	f.Fuzz(func(t *testing.T, method, query, user, pass, ctype string, body []byte) {
		sub := strings.NewReplacer("@pw@", b.password, "@rt@", rt)
		target := "/token"
		if query != "" {
			target += "?" + sub.Replace(query)
		}
		r, err := http.NewRequest(method, "http://bridge.test"+target, bytes.NewReader([]byte(sub.Replace(string(body)))))
		if err != nil {
			return // not a request a server can receive
		}
		r.RemoteAddr = "127.0.0.1:1234"
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if user != "" || pass != "" {
			r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+sub.Replace(pass))))
		}
		w := b.serve(r)
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		case w.Code == http.StatusOK:
			var resp struct {
				Token       string `json:"token"`
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Token == "" && resp.AccessToken == "" {
				t.Fatalf("200 without a token: %v %s", err, w.Body)
			}
		case w.Code == http.StatusUnauthorized:
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		case w.Code < 400:
			t.Fatalf("status %d", w.Code)
		}
	})
}

// FuzzPasswordsForm posts arbitrary bodies to the page's POST /passwords
// as the signed-in alice. The CSRF token goes in the X-CSRF-Token header,
// or, when inForm is set, first in the body.
func FuzzPasswordsForm(f *testing.F) {
	b := newFuzzBridge(f, true)
	const form = "application/x-www-form-urlencoded"
	f.Add(form, []byte("name=laptop&lifetime=24h0m0s"), true)
	f.Add(form, []byte("name=ci&lifetime=1h0m0s&read_only=true"), false)
	f.Add(form, []byte("name=%00%ff&lifetime=-1h"), true)
	f.Add(form+"; charset=utf-8", []byte("name="+strings.Repeat("x", 120)+"&lifetime=999999h"), false)
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nAAAA\r\n--b--\r\n"), true)
	f.Add("text/plain", []byte("name=x"), true)
	f.Add("", []byte("name=x&name=y&csrf=wrong"), false)
	f.Fuzz(func(t *testing.T, ctype string, body []byte, inForm bool) {
		if !inForm {
			body = append([]byte("csrf="+url.QueryEscape(b.csrf)+"&"), body...)
		}
		r, err := http.NewRequest(http.MethodPost, "http://bridge.test/passwords", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if inForm {
			r.Header.Set("X-CSRF-Token", b.csrf)
		}
		b.checkMint(t, b.serve(r), http.StatusOK)
	})
}

// FuzzPasswordsJSON posts arbitrary bodies to POST /api/v1/passwords as the
// signed-in alice, with the CSRF header.
func FuzzPasswordsJSON(f *testing.F) {
	b := newFuzzBridge(f, true)
	const js = "application/json"
	f.Add(js, []byte(`{"name":"script","lifetime":"1h","read_only":true}`))
	f.Add(js, []byte(`{"name":"x","lifetime":"100000h"}`))
	f.Add(js, []byte(`{"name":"x","bogus":1}`))
	f.Add(js, []byte(`{"name":"\u0000\ud800","lifetime":"-5m"}{"name":"y"}`))
	f.Add(js+"; charset=utf-8", []byte(`{"name":`+`"`+strings.Repeat("é", 101)+`"}`))
	f.Add("text/plain", []byte(`{"name":"x"}`))
	f.Add(js, []byte(`[`+strings.Repeat(`[`, 1000)))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "http://bridge.test/api/v1/passwords", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		r.Header.Set("X-CSRF-Token", b.csrf)
		w := b.serve(r)
		if w.Code == http.StatusCreated {
			var minted struct {
				Password string `json:"password"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &minted); err != nil || !passwords.LooksLike(minted.Password) {
				t.Fatalf("201 without a password: %v %s", err, w.Body)
			}
		}
		b.checkMint(t, w, http.StatusCreated)
	})
}
