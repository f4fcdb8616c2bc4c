package httpapi

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/tokens"
	"github.com/registry-bridge/bridge/workload"
)

// BenchmarkTokenEndpoint compares, in one run, a token request with an
// app password and with a workload token verified before (the cached
// path), both through the whole handler with an audit log.
func BenchmarkTokenEndpoint(b *testing.B) {
	srv, pw, jwt := benchServer(b)
	for _, bc := range []struct{ name, user, pass string }{
		{"app_password", "alice", pw},
		{"workload_cached", "ci", jwt},
	} {
		b.Run(bc.name, func(b *testing.B) {
			authz := basic(bc.user, bc.pass)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "/token?service="+testService+"&scope=repository:team-a/app:pull,push", nil)
				r.Header.Set("Authorization", authz)
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			// CPU time, unlike wall time, is not inflated by other
			// processes on a busy machine.
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchServer(b *testing.B) (*Server, string, string) {
	now := time.Now()
	clock := func() time.Time { return now }
	keyPEM, certPEM, err := tokens.GenerateKey(tokens.AlgES256, "bench", now)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for name, data := range map[string][]byte{"k.pem": keyPEM, "c.pem": certPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	key, err := tokens.LoadSigningKey(filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem"), tokens.KeyIDThumbprint)
	if err != nil {
		b.Fatal(err)
	}
	issuer, err := tokens.NewIssuer(tokens.Options{Issuer: "bench", Service: testService, Lifetime: 5 * time.Minute, Key: key, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	policy, err := groups.Compile(testRules)
	if err != nil {
		b.Fatal(err)
	}
	st := memory.New(clock)
	b.Cleanup(func() { st.Close() })
	m, err := passwords.Mint()
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreatePassword(b.Context(), store.Password{ID: m.ID, Subject: "cli:alice", Username: "alice", Groups: []string{"team-a"},
		Digest: m.Digest, RefreshDigest: m.RefreshDigest, CreatedAt: now, ExpiresAt: now.Add(time.Hour), CreatedBy: store.CreatedByCLI}); err != nil {
		b.Fatal(err)
	}

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	idp := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: rk.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	hs := httptest.NewServer(idp)
	b.Cleanup(hs.Close)
	idp.SetIssuer(hs.URL)
	cfg := workload.Config{Issuers: []workload.IssuerConfig{{Name: "github", URL: hs.URL, Audiences: []string{testService},
		ClaimValidationRules: []workload.ClaimValidationRule{{Expression: `claims.repository_owner_id == "65"`}},
		ClaimMappings: workload.ClaimMappings{Username: workload.PrefixedClaim{Prefix: "gha-", Claim: "repository_id"},
			Groups: workload.PrefixedClaim{Expression: `["team-a"]`}}}}}
	cfg.SetDefaults()
	acc := accounts.New(accounts.Options{Store: st, Now: clock, WorkloadPrefixes: cfg.Prefixes()})
	b.Cleanup(acc.Close)
	wl, err := workload.New(cfg, workload.Options{Accounts: acc, Locks: st, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": hs.URL, "aud": testService, "sub": "repo:o/r:ref:refs/heads/main",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "repository_id": "74", "repository_owner_id": "65"})
	jwt := oidctest.SignIDToken(rk, "k1", "RS256", string(claims))
	srv, err := New(Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Passwords: st, Ping: st.Ping, Tokens: issuer,
		Policy: func() *groups.Policy { return policy }, JWKS: func() any { return issuer.JWKS() }, Service: testService,
		PublicURL: "http://bridge.test", Now: clock, Workloads: wl})
	if err != nil {
		b.Fatal(err)
	}
	return srv, m.Password, jwt
}
