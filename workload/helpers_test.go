package workload

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/store/memory"
)

// testIssuer is a real OIDC discovery + JWKS server (go-oidc's
// oidctest) on loopback, with key rotation, a fetch counter and a switch
// that makes it hang.
type testIssuer struct {
	t    testing.TB
	URL  string
	mu   sync.Mutex
	srv  *oidctest.Server
	key  crypto.Signer
	kid  string
	alg  string
	keys atomic.Int32 // JWKS fetches
	hang atomic.Bool
	// keysDown makes the JWKS endpoint answer 500 (discovery still works).
	keysDown atomic.Bool
	block    chan struct{}
}

func newTestIssuer(t testing.TB, kid string) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{t: t, key: key, kid: kid, alg: "RS256", block: make(chan struct{})}
	ti.srv = &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: kid, Algorithm: "RS256"}}, Algorithms: []string{"RS256", "ES256"}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ti.hang.Load() {
			select {
			case <-ti.block:
			case <-r.Context().Done():
			}
			return
		}
		if r.URL.Path == "/keys" {
			ti.keys.Add(1)
			if ti.keysDown.Load() {
				http.Error(w, "down", http.StatusInternalServerError)
				return
			}
		}
		ti.mu.Lock()
		defer ti.mu.Unlock()
		ti.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(ti.block); hs.Close() })
	ti.URL = hs.URL
	ti.srv.SetIssuer(hs.URL)
	return ti
}

// rotate signs with a new ES256 key from now on; the old key stays
// published when keepOld.
func (ti *testIssuer) rotate(kid string, keepOld bool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ti.t.Fatal(err)
	}
	ti.mu.Lock()
	defer ti.mu.Unlock()
	pk := oidctest.PublicKey{PublicKey: key.Public(), KeyID: kid, Algorithm: "ES256"}
	if keepOld {
		ti.srv.PublicKeys = append(ti.srv.PublicKeys, pk)
	} else {
		ti.srv.PublicKeys = []oidctest.PublicKey{pk}
	}
	ti.key, ti.kid, ti.alg = key, kid, "ES256"
}

// sign returns a token of this issuer with claims (iss is added).
func (ti *testIssuer) sign(claims map[string]any) string {
	ti.mu.Lock()
	key, kid, alg := ti.key, ti.kid, ti.alg
	ti.mu.Unlock()
	return signWith(ti.t, key, kid, alg, ti.URL, claims)
}

func signWith(t testing.TB, key crypto.Signer, kid, alg, iss string, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"iss": iss}
	for k, v := range claims {
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return oidctest.SignIDToken(key, kid, alg, string(b))
}

// clock is an injected time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Verifier over real issuers, real accounts and a memory store.
type env struct {
	v     *Verifier
	clk   *clock
	st    *memory.Store
	acc   *accounts.Accounts
	cfg   Config
	start time.Time
}

func newEnv(t testing.TB, c Config) *env {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	st := memory.New(clk.now)
	t.Cleanup(func() { st.Close() })
	c.SetDefaults()
	acc := accounts.New(accounts.Options{Store: st, Now: clk.now, WorkloadPrefixes: c.Prefixes(),
		Limits: accounts.Limits{DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour}})
	t.Cleanup(acc.Close)
	v, err := New(c, Options{Accounts: acc, Locks: st, Now: clk.now, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &env{v: v, clk: clk, st: st, acc: acc, cfg: c, start: clk.now()}
}

// times returns iat, nbf and exp claims: issued now, valid for life.
func (e *env) times(life time.Duration) map[string]any {
	now := e.clk.now().Unix()
	return map[string]any{"iat": now, "nbf": now, "exp": now + int64(life/time.Second)}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			if v == nil {
				delete(out, k) // nil removes a claim
				continue
			}
			out[k] = v
		}
	}
	return out
}
