package bench

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

const (
	// workloadUser is the Basic username a CI job sends with its token;
	// the issuer sets no basic_username, so any is accepted.
	workloadUser = "ci"
	// workloadSubject is the username the token maps to, the registry
	// token's sub.
	workloadSubject = "gha-74"
	// workloadLife is the benchmark tokens' lifetime: longer than a whole
	// run, so the one cached token never expires mid-run.
	workloadLife = time.Hour
)

// workloadConfig is the bridge's workloads section, appended to
// bridgeConfig; %s is the issuer's URL. The rules are GitHub Actions'
// (docs/workloads.md): two CEL claim rules, the username from a claim and
// the groups from an expression over claims, mapping the repository into
// team-a so that tokenQuery is granted as it is to alice.
const workloadConfig = `workloads:
  issuers:
    - name: github
      url: %s
      audiences: [` + service + `]
      max_token_age: ` + "1h" + `
      claim_validation_rules:
        - expression: claims.repository_owner_id == "65"
          message: only repositories of octo-org
        - expression: claims.ref == "refs/heads/main" || claims.ref.startsWith("refs/tags/v")
          message: only main and release tags
      claim_mappings:
        username: {prefix: "gha-", claim: repository_id}
        groups:
          prefix: ""
          expression: >-
            (claims.repository_id == "74" ? ["team-a"] : []) +
            (claims.?environment.orValue("") == "prod" ? ["prod"] : [])
`

// issuer is a real OIDC discovery + JWKS server (go-oidc's oidctest, as
// in the workload package's tests) on loopback, signing RS256 with a
// 2048-bit key, as GitHub Actions does.
type issuer struct {
	url string
	key *rsa.PrivateKey
}

func startIssuer(b *testing.B) *issuer {
	b.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	srv := &oidctest.Server{
		PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "bench-1", Algorithm: "RS256"}},
		Algorithms: []string{"RS256"},
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	srv.SetIssuer(hs.URL)
	return &issuer{url: hs.URL, key: key}
}

// token returns a GitHub-Actions-shaped token (the claims a push to main
// carries) issued at now, unique by jti n.
func (is *issuer) token(now time.Time, n int) (string, error) {
	iat := now.Unix()
	claims := map[string]any{
		"iss": is.url, "aud": service, "jti": "bench-" + strconv.Itoa(n),
		"iat": iat, "nbf": iat, "exp": iat + int64(workloadLife/time.Second),
		"sub":                   "repo:octo-org/app:ref:refs/heads/main",
		"ref":                   "refs/heads/main",
		"ref_type":              "branch",
		"ref_protected":         "true",
		"sha":                   "e2b1a5c0f0b7e1f1c7d4b7f6a9c3d2e1f0a9b8c7",
		"repository":            "octo-org/app",
		"repository_id":         "74",
		"repository_owner":      "octo-org",
		"repository_owner_id":   "65",
		"repository_visibility": "private",
		"actor":                 "octocat",
		"actor_id":              "1",
		"workflow":              "build",
		"workflow_ref":          "octo-org/app/.github/workflows/build.yml@refs/heads/main",
		"job_workflow_ref":      "octo-org/app/.github/workflows/build.yml@refs/heads/main",
		"event_name":            "push",
		"run_id":                "8040141742",
		"run_number":            "412",
		"run_attempt":           "1",
		"runner_environment":    "github-hosted",
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("bench: token claims: %w", err)
	}
	return oidctest.SignIDToken(is.key, "bench-1", "RS256", string(body)), nil
}

// tokens returns n distinct tokens issued at now, signed on every CPU.
func (is *issuer) tokens(b *testing.B, now time.Time, n int) []string {
	b.Helper()
	out := make([]string, n)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += len(errs) {
				out[i], errs[w] = is.token(now, i+1)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return out
}

// workloadSection returns the workloads section for is.
func (is *issuer) workloadSection() string { return fmt.Sprintf(workloadConfig, is.url) }

// The first-use window: shorter than the rounds, and bounded by the
// pool of tokens minted for it.
const (
	firstUseWarmup  = 500 * time.Millisecond
	firstUseMeasure = 2 * time.Second
	// firstUseTokens is the pool's default size (BENCH_FIRSTUSE_TOKENS):
	// enough for the window at 4,000 first uses a second, about twice
	// what two shared cores manage; a pool that runs out cuts the window
	// short, and the report says so.
	firstUseTokens = 10000
)

// firstUseResult is the first-use window and its line of the report.
type firstUseResult struct {
	r    Result
	line string
}

// firstUse loads the workload target's bridge with a fresh token of iss
// on every request, minted before the window: each one is a first use
// (signature, times, audience, CEL rules and mappings, the username
// check, a cache insert). It returns nil without a workload target.
func firstUse(b *testing.B, s settings, targets []*target, iss *issuer, redisPID int) *firstUseResult {
	b.Helper()
	i := slices.IndexFunc(targets, func(t *target) bool { return t.key == "workload-audit" })
	if i < 0 {
		return nil
	}
	wl := targets[i]
	n := firstUseTokens
	if v := os.Getenv("BENCH_FIRSTUSE_TOKENS"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			b.Fatalf("BENCH_FIRSTUSE_TOKENS=%q: want a positive integer", v)
		}
		n = p
	}
	t0 := time.Now()
	pool := iss.tokens(b, t0, n)
	minted := time.Since(t0)
	r, err := Run(b.Context(), Load{
		URL: wl.url, Username: workloadUser, Passwords: pool,
		Concurrency: s.concurrency, Warmup: firstUseWarmup, Measure: firstUseMeasure,
		PIDs: []int{wl.pid, redisPID, os.Getpid()},
	})
	if err != nil {
		b.Fatal(err)
	}
	if r.Errors > 0 {
		b.Errorf("first use: %d failed requests; first: %s", r.Errors, r.FirstError)
	}
	if r.Requests == 0 {
		b.Errorf("first use: no request recorded (%d tokens, exhausted: %t); raise BENCH_FIRSTUSE_TOKENS", n, r.Exhausted)
	}
	m, cached := summarize(r), medians(wl.rounds)
	note := ""
	if r.Exhausted {
		note = fmt.Sprintf(" (the pool ran out: window %v of %v)", r.Elapsed.Round(time.Millisecond), firstUseMeasure)
	}
	line := fmt.Sprintf("\nfirst use, %s with a fresh JWT every request (signature, claims, CEL), warm-up %v, measured %v%s:\n"+
		"  %.0f req/s, p50 %s, p99 %s, server CPU %s/token (cached: %s, so +%s per first use), redis %s/token, client %s/req, others %.2f, idle %.2f, %d errors; %d of %d tokens sent (minted in %v)\n",
		wl.name, firstUseWarmup, firstUseMeasure, note,
		m.rps, us(m.p50), us(m.p99), us(m.cpu), us(cached.cpu), us(m.cpu-cached.cpu), us(m.redis), us(m.client), m.others, m.idle,
		r.Errors, r.Used, n, minted.Round(time.Millisecond))
	return &firstUseResult{r: r, line: line}
}
