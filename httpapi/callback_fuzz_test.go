package httpapi

import (
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/internal/devidp"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store/memory"
)

// FuzzCallback sends /callback any query and any login cookie, in front of
// a real provider (devidp). Without a code the provider issued for this
// browser's login, no callback signs anyone in, writes to the store, or
// puts the provider's error text on the page; none fails with a 500.
func FuzzCallback(f *testing.F) {
	idpTS := httptest.NewUnstartedServer(nil)
	issuer := "http://" + idpTS.Listener.Addr().String()
	const base = "http://127.0.0.1:1"
	idp, err := devidp.New(devidp.Config{
		Issuer:  issuer,
		Users:   []devidp.User{{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"team-a"}}},
		Clients: []devidp.Client{{ID: "bridge", Secret: "bridge-secret", RedirectURIs: []string{base + "/callback"}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	idpTS.Config.Handler = idp.Handler()
	idpTS.Start()
	f.Cleanup(idpTS.Close)

	cfg := oidc.Config{Issuer: issuer, ClientID: "bridge", ClientSecret: "bridge-secret"}
	cfg.SetDefaults()
	prov, err := oidc.New(oidc.Options{Config: cfg, RedirectURL: base + "/callback"})
	if err != nil {
		f.Fatal(err)
	}
	sealer, err := oidc.RandomSealer()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	mem := memory.New(func() time.Time { return now })
	f.Cleanup(func() { mem.Close() })
	st := &writeCounter{Store: mem}
	srv, err := New(Options{Log: slog.New(slog.DiscardHandler), Passwords: st, Ping: st.Ping, PublicURL: base, Now: func() time.Time { return now },
		Login: &LoginOptions{Provider: prov, Sessions: st, Accounts: accounts.New(accounts.Options{Store: st, Sealer: sealer}), Sealer: sealer, IdleTimeout: time.Hour, MaxAge: time.Hour}})
	if err != nil {
		f.Fatal(err)
	}

	login, err := oidc.NewLoginState()
	if err != nil {
		f.Fatal(err)
	}
	cookie, err := sealer.SealLogin(login, now.Add(loginStateTTL))
	if err != nil {
		f.Fatal(err)
	}
	expired, _ := sealer.SealLogin(login, now.Add(-time.Second))
	bound := url.Values{"state": {login.State}, "code": {"not-a-code"}}.Encode()
	f.Add(bound, cookie)
	f.Add(bound, expired)
	f.Add(bound, "")
	f.Add(bound, cookie[:len(cookie)-1]+"A")
	f.Add("state="+login.State+"&code=x&state=other", cookie)
	f.Add("error=access_denied&error_description=%3Cb%3Ehi%3C%2Fb%3E&state="+login.State, cookie)
	f.Add("error="+strings.Repeat("x", 300), "")
	f.Add("state=%zz&code=;", "\x00")
	f.Add("", strings.Repeat("A", 2000))

	f.Fuzz(func(t *testing.T, rawQuery, cookieValue string) {
		req := httptest.NewRequest(http.MethodGet, base+"/callback", nil)
		req.URL.RawQuery = rawQuery
		req.Header.Set("Cookie", loginCookie+"="+cookieValue)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusBadGateway:
		default:
			t.Fatalf("callback %q with cookie %q: status %d\n%s", rawQuery, cookieValue, rec.Code, rec.Body)
		}
		if w := st.writes.Load(); w != 0 {
			t.Fatalf("callback %q with cookie %q wrote to the store", rawQuery, cookieValue)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == sessionCookie {
				t.Fatalf("callback %q set a session cookie", rawQuery)
			}
		}
		q, _ := url.ParseQuery(rawQuery)
		page := html.UnescapeString(rec.Body.String())
		for _, v := range append(q["error"], q["error_description"]...) {
			if len(v) >= 24 && v != "account_selection_required" && strings.Contains(page, v) {
				t.Fatalf("the page shows the provider's text %q", v)
			}
		}
	})
}
