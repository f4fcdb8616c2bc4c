package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/registry-bridge/bridge/internal/testenv"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name   string
		params []string
		want   []access
	}{
		{"none", nil, []access{}},
		{"empty parameter", []string{""}, []access{}},
		{"one", []string{"repository:team-a/app:pull,push"},
			[]access{{"repository", "team-a/app", []string{"pull", "push"}}}},
		{"space separated and repeated", []string{"repository:a:pull repository:b:push", "registry:catalog:*"},
			[]access{{"repository", "a", []string{"pull"}}, {"repository", "b", []string{"push"}}, {"registry", "catalog", []string{"*"}}}},
		{"name with a port", []string{"repository:localhost:5000/a/b:pull"},
			[]access{{"repository", "localhost:5000/a/b", []string{"pull"}}}},
		{"empty actions dropped", []string{"repository:a:", "repository:a:,"}, []access{}},
		{"missing parts dropped", []string{"repository", "repository:a", ":a:pull", "repository::pull"}, []access{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseScopes(tt.params); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseScopes(%q) = %+v, want %+v", tt.params, got, tt.want)
			}
		})
	}
}

func FuzzParseScopes(f *testing.F) {
	f.Add("repository:team-a/app:pull,push")
	f.Add("repository:a:pull registry:catalog:*")
	f.Add("repository:localhost:5000/a:pull")
	f.Add(":::,,:")
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range parseScopes([]string{s}) {
			if a.Type == "" || a.Name == "" || len(a.Actions) == 0 {
				t.Fatalf("parseScopes(%q) returned an incomplete entry %+v", s, a)
			}
			for _, act := range a.Actions {
				if act == "" || strings.ContainsAny(act, ", ") {
					t.Fatalf("parseScopes(%q) returned action %q", s, act)
				}
			}
			if !strings.Contains(s, a.Type+":"+a.Name+":") {
				t.Fatalf("parseScopes(%q) invented %+v", s, a)
			}
		}
	})
}

func TestToken(t *testing.T) {
	addr := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	digest := sha256.Sum256([]byte("s3cret:with-colon"))
	rec, err := json.Marshal(record{SHA256: hex.EncodeToString(digest[:])})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(t.Context(), KeyPrefix+"alice", rec, 0).Err(); err != nil {
		t.Fatal(err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := newServer(rdb, key, "ref-issuer", "registry.test", slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.routes())
	t.Cleanup(srv.Close)

	const path = "/token?service=registry.test&scope=repository:team-a/app:pull,push"
	tests := []struct {
		name       string
		user, pass string
		noAuth     bool
		wantStatus int
	}{
		{name: "valid", user: "alice", pass: "s3cret:with-colon", wantStatus: http.StatusOK},
		{name: "wrong password", user: "alice", pass: "s3cret", wantStatus: http.StatusUnauthorized},
		{name: "unknown user", user: "bob", pass: "s3cret:with-colon", wantStatus: http.StatusUnauthorized},
		{name: "no credentials", noAuth: true, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.noAuth {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			checkToken(t, body, &key.PublicKey, s.kid, now)
		})
	}
}

// checkToken verifies the response body's token and its claims.
func checkToken(t *testing.T, body []byte, pub *ecdsa.PublicKey, kid string, now time.Time) {
	t.Helper()
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if r.Token == "" || r.Token != r.AccessToken || r.ExpiresIn != 300 || r.IssuedAt != "2026-03-01T12:00:00Z" {
		t.Fatalf("response %+v", r)
	}
	var c claims
	tok, err := jwt.ParseWithClaims(r.Token, &c, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuer("ref-issuer"), jwt.WithAudience("registry.test"), jwt.WithSubject("alice"))
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	if tok.Header["kid"] != kid {
		t.Errorf("kid %v, want %s", tok.Header["kid"], kid)
	}
	if c.ID == "" || !c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) || !c.ExpiresAt.Equal(now.Add(5*time.Minute)) {
		t.Errorf("claims %+v", c.RegisteredClaims)
	}
	want := []access{{"repository", "team-a/app", []string{"pull", "push"}}}
	if !reflect.DeepEqual(c.Access, want) {
		t.Errorf("access %+v, want %+v", c.Access, want)
	}
}
