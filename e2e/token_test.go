package e2e_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

const formURLEncoded = "application/x-www-form-urlencoded"

// TestDockerFlows replays, with net/http, what Docker sends (docs/protocol.md
// §2.3, §4): the login GET with offline_token that yields a refresh token,
// the legacy daemon's refresh-token POST, containerd's password POST and
// its "Basic :<refresh_token>" GET fallback. Every token it gets must open
// /v2/ and the allowed repository, and must not allow a DELETE.
func TestDockerFlows(t *testing.T) {
	w := newWorld(t, worldOptions{})
	img := testenv.OCILayout(t, t.TempDir())
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, w.tokenAuth())
			seed(t, w, host, img, host+"/team-a/app:v1")
			pw := w.mint(t, password{user: "alice", groups: "team-a", name: "docker-" + reg.name})

			// docker login: GET, no scope, offline_token → refresh_token.
			status, login := getToken(t, w.url, url.Values{
				"account": {"alice"}, "client_id": {"docker"}, "offline_token": {"true"}, "service": {service},
			}, "alice", pw)
			if status != http.StatusOK {
				t.Fatalf("login GET: status %d, want 200", status)
			}
			c := checkGET(t, login)
			if c.Subject != "alice" || len(c.Access) != 0 {
				t.Errorf("login token: sub %q, access %v; want alice and no access", c.Subject, c.Access)
			}
			if login.RefreshToken == "" {
				t.Fatalf("login GET with offline_token=true: no refresh_token")
			}
			if r := registryDo(t, http.MethodGet, host, "/v2/", login.Token); r.status != http.StatusOK {
				t.Errorf("/v2/ with the login token: %d, want 200 (docker login needs exactly 200)", r.status)
			}

			flows := []struct {
				name string
				do   func(t *testing.T) (int, tokenResponse)
				post bool
			}{
				{
					name: "refresh grant (docker legacy)",
					post: true,
					do: func(t *testing.T) (int, tokenResponse) {
						return postToken(t, w.url, url.Values{
							"grant_type": {"refresh_token"}, "client_id": {"docker"}, "refresh_token": {login.RefreshToken},
							"service": {service}, "scope": {"repository:team-a/app:pull repository:users/alice/app:pull,push"},
						}, formURLEncoded)
					},
				},
				{
					name: "password grant (containerd)",
					post: true,
					do: func(t *testing.T) (int, tokenResponse) {
						return postToken(t, w.url, url.Values{
							"grant_type": {"password"}, "client_id": {"containerd-client"}, "username": {"alice"}, "password": {pw},
							"service": {service}, "scope": {"repository:team-a/app:pull repository:users/alice/app:pull,push"},
						}, formURLEncoded+"; charset=utf-8")
					},
				},
				{
					name: "GET with Basic :refresh_token (containerd fallback)",
					do: func(t *testing.T) (int, tokenResponse) {
						return getToken(t, w.url, url.Values{
							"service": {service}, "scope": {"repository:team-a/app:pull", "repository:users/alice/app:pull,push"},
						}, "", login.RefreshToken)
					},
				},
			}
			for _, f := range flows {
				t.Run(f.name, func(t *testing.T) {
					status, tr := f.do(t)
					if status != http.StatusOK {
						t.Fatalf("status %d, want 200", status)
					}
					var c claims
					if f.post {
						c = checkPOST(t, tr)
					} else {
						c = checkGET(t, tr)
					}
					if got := c.actions("team-a/app"); !slices.Equal(got, []string{"pull"}) {
						t.Errorf("token grants %v on team-a/app, want [pull]", got)
					}
					if got := c.actions("users/alice/app"); !slices.Equal(got, []string{"pull", "push"}) {
						t.Errorf("token grants %v on users/alice/app, want [pull push]", got)
					}
					useToken(t, host, tr.AccessToken, img)
				})
			}

			t.Run("refused", func(t *testing.T) {
				bad := []struct {
					name string
					form url.Values
					want int
				}{
					{"wrong password", url.Values{"grant_type": {"password"}, "client_id": {"containerd-client"}, "username": {"alice"}, "password": {tamper(pw)}, "service": {service}}, http.StatusUnauthorized},
					{"wrong refresh token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"docker"}, "refresh_token": {tamper(login.RefreshToken)}, "service": {service}}, http.StatusUnauthorized},
					{"unknown grant", url.Values{"grant_type": {"client_credentials"}, "service": {service}}, http.StatusBadRequest},
				}
				for _, b := range bad {
					t.Run(b.name, func(t *testing.T) {
						if status, _ := postToken(t, w.url, b.form, formURLEncoded); status != b.want {
							t.Errorf("status %d, want %d", status, b.want)
						}
					})
				}
			})
		})
	}
}

// useToken checks a token holding pull on team-a/app against the
// registry: /v2/ and the manifest open, a DELETE is refused for want of
// scope.
func useToken(t *testing.T, host, token string, img testenv.OCIImage) {
	t.Helper()
	if r := registryDo(t, http.MethodGet, host, "/v2/", token); r.status != http.StatusOK {
		t.Errorf("GET /v2/: %d, want 200", r.status)
	}
	if r := registryDo(t, http.MethodGet, host, "/v2/team-a/app/manifests/v1", token); r.status != http.StatusOK {
		t.Errorf("GET team-a/app manifest: %d (%s), want 200", r.status, r.challenge)
	}
	r := registryDo(t, http.MethodDelete, host, "/v2/team-a/app/manifests/"+img.ManifestDigest, token)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.challenge, `error="insufficient_scope"`) {
		t.Errorf("DELETE team-a/app manifest with pull only: %d %q, want 401 insufficient_scope", r.status, r.challenge)
	}
}

// TestAnonymous checks requests without credentials: the registry's
// challenge sends clients to the bridge, which grants pull on public/**
// and nothing on team-a/** — with a 200 in both cases.
func TestAnonymous(t *testing.T) {
	w := newWorld(t, worldOptions{})
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, w.tokenAuth())
			r := registryDo(t, http.MethodGet, host, "/v2/public/x/tags/list", "")
			for _, want := range []string{`realm="` + w.url + `/token"`, `service="` + service + `"`, `scope="repository:public/x:pull"`} {
				if !strings.Contains(r.challenge, want) {
					t.Errorf("registry challenge %q lacks %s", r.challenge, want)
				}
			}

			tests := []struct {
				repo string
				want []string
			}{
				{"public/x", []string{"pull"}},
				{"team-a/app", nil},
			}
			for _, tt := range tests {
				t.Run(tt.repo, func(t *testing.T) {
					status, tr := getToken(t, w.url, url.Values{"service": {service}, "scope": {"repository:" + tt.repo + ":pull"}}, "", "")
					if status != http.StatusOK {
						t.Fatalf("anonymous GET /token: status %d, want 200", status)
					}
					c := checkGET(t, tr)
					if c.Subject != "" {
						t.Errorf("anonymous token has sub %q, want \"\"", c.Subject)
					}
					if got := c.actions(tt.repo); !slices.Equal(got, tt.want) {
						t.Errorf("anonymous token grants %v on %s, want %v", got, tt.repo, tt.want)
					}
					r := registryDo(t, http.MethodGet, host, "/v2/"+tt.repo+"/tags/list", tr.Token)
					if denied := r.status == http.StatusUnauthorized; denied != (tt.want == nil) {
						t.Errorf("GET %s tags with the anonymous token: %d %q", tt.repo, r.status, r.challenge)
					}
				})
			}
		})
	}
}
