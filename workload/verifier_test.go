package workload

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/store"
)

const aud = "registry.example.com"

func githubIssuer(url string) IssuerConfig {
	return IssuerConfig{
		Name: "github", URL: url, Audiences: []string{aud}, MaxTokenAge: 10 * time.Minute,
		ClaimValidationRules: []ClaimValidationRule{
			{Expression: `claims.repository_owner_id == "65"`, Message: "only the octo-org organisation"},
			{Expression: `claims.ref == "refs/heads/main" || claims.ref.startsWith("refs/tags/v")`, Message: "protected refs only"},
		},
		ClaimMappings: ClaimMappings{
			Username: PrefixedClaim{Prefix: "gha-", Expression: `claims.repository_id`},
			Groups: PrefixedClaim{Prefix: "github:", Expression: `['repo-' + claims.repository_id, 'org-' + claims.repository_owner_id] +
				(claims.?environment.orValue('') == 'prod' ? ['prod'] : [])`},
		},
	}
}

func githubClaims(e *env) map[string]any {
	return merge(e.times(5*time.Minute), map[string]any{
		"jti": "6f1d1c1e", "sub": "repo:octo-org/octo-repo:environment:prod", "aud": aud,
		"environment": "prod", "ref": "refs/heads/main", "ref_type": "branch",
		"repository": "octo-org/octo-repo", "repository_id": "74", "repository_owner": "octo-org", "repository_owner_id": "65",
		"repository_visibility": "private", "event_name": "push", "runner_environment": "github-hosted",
		"job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
	})
}

func gitlabIssuer(url string) IssuerConfig {
	return IssuerConfig{
		Name: "gitlab", URL: url, Audiences: []string{"https://" + aud}, Reuse: ReuseOneShot,
		ClaimValidationRules: []ClaimValidationRule{
			{Claim: "ref_protected", RequiredValue: "true"},
			{Expression: `claims.namespace_id == "72"`, Message: "only the mygroup namespace"},
		},
		ClaimMappings: ClaimMappings{
			Username: PrefixedClaim{Prefix: "gl-", Expression: `claims.project_path.replace('/', '.')`},
			Groups:   PrefixedClaim{Prefix: "gitlab-", Claim: "namespace_path"},
		},
	}
}

func gitlabClaims(e *env, jti string) map[string]any {
	return merge(e.times(5*time.Minute), map[string]any{
		"jti": jti, "sub": "project_path:mygroup/myproject:ref_type:branch:ref:main", "aud": "https://" + aud,
		"namespace_id": "72", "namespace_path": "mygroup", "project_id": "22", "project_path": "mygroup/myproject",
		"ref": "main", "ref_type": "branch", "ref_protected": "true", "pipeline_source": "push", "user_login": "alice",
	})
}

func k8sIssuer(url string) IssuerConfig {
	return IssuerConfig{
		Name: "cluster", URL: url, Audiences: []string{aud, "other"},
		ClaimValidationRules: []ClaimValidationRule{{Expression: `claims.sub.startsWith('system:serviceaccount:')`}},
		ClaimMappings: ClaimMappings{
			Username: PrefixedClaim{Prefix: "k8s-", Expression: `claims['kubernetes.io'].namespace + '.' + claims['kubernetes.io'].serviceaccount.name`},
			Groups:   PrefixedClaim{Prefix: "k8s-ns-", Expression: `claims['kubernetes.io'].namespace`},
		},
		UserValidationRules: []UserValidationRule{{Expression: `!user.username.startsWith('k8s-kube-system.')`, Message: "kube-system pulls with node credentials"}},
	}
}

func k8sClaims(e *env, ns, sa string) map[string]any {
	return merge(e.times(time.Hour), map[string]any{
		"sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{aud},
		"kubernetes.io": map[string]any{"namespace": ns, "serviceaccount": map[string]any{"name": sa, "uid": "3f1c"},
			"pod": map[string]any{"name": "build-1", "uid": "9a2b"}},
	})
}

type world struct {
	*env
	gh, gl, k8s, hung *testIssuer
}

func newWorld(t testing.TB) *world {
	w := &world{gh: newTestIssuer(t, "k1"), gl: newTestIssuer(t, "k1"), k8s: newTestIssuer(t, "sa-1"), hung: newTestIssuer(t, "h1")}
	w.hung.hang.Store(true)
	hung := IssuerConfig{Name: "hung", URL: w.hung.URL, Audiences: []string{aud},
		ClaimMappings: ClaimMappings{Username: PrefixedClaim{Prefix: "hung-", Claim: "sub"}}}
	w.env = newEnv(t, Config{Issuers: []IssuerConfig{githubIssuer(w.gh.URL), gitlabIssuer(w.gl.URL), k8sIssuer(w.k8s.URL), hung}})
	return w
}

func TestVerifyShapes(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name, token, user string
		groups            []string
	}{
		{"GitHub Actions", w.gh.sign(githubClaims(w.env)), "gha-74", []string{"github:repo-74", "github:org-65", "github:prod"}},
		{"GitLab CI", w.gl.sign(gitlabClaims(w.env, "j1")), "gl-mygroup.myproject", []string{"gitlab-mygroup"}},
		{"Kubernetes service account", w.k8s.sign(k8sClaims(w.env, "builds", "pusher")), "k8s-builds.pusher", []string{"k8s-ns-builds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := w.v.Verify(t.Context(), tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if id.Username != tc.user || !slices.Equal(id.Groups, tc.groups) {
				t.Fatalf("got %s %v, want %s %v", id.Username, id.Groups, tc.user, tc.groups)
			}
		})
	}
}

// fetchesOf is how often issuer ti's keys were read.
func fetchesOf(ti *testIssuer) int { return int(ti.keys.Load()) }

func TestRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	// Warm the GitHub issuer so its key is known.
	if _, err := w.v.Verify(ctx, w.gh.sign(githubClaims(w.env))); err != nil {
		t.Fatal(err)
	}
	ghc := func(over map[string]any) string { return w.gh.sign(merge(githubClaims(w.env), over)) }
	now := w.clk.now().Unix()

	// Another issuer's key under the same kid ("k1"), claiming to be GitHub.
	other := signWith(t, w.gl.key, "k1", "RS256", w.gh.URL, githubClaims(w.env))
	// HS256 with the issuer's public key as the HMAC secret.
	pubDER, _ := x509.MarshalPKIXPublicKey(w.gh.key.Public())
	hmacKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	payload, _ := json.Marshal(merge(githubClaims(w.env), map[string]any{"iss": w.gh.URL}))
	hs, _ := signer.Sign(payload)
	hs256, _ := hs.CompactSerialize()
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + b64(payload) + "."
	// A username a person holds.
	if err := w.st.PutUser(ctx, store.User{Username: "gha-99", Subject: "sub-someone", ExpiresAt: w.clk.now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, token, reason, says string
	}{
		{"wrong audience", ghc(map[string]any{"aud": "https://github.com/octo-org"}), ReasonAudience, "aud"},
		{"expired", ghc(map[string]any{"iat": now - 600, "nbf": now - 600, "exp": now - 31}), ReasonExpired, "expired"},
		{"not yet valid", ghc(map[string]any{"nbf": now + 120}), ReasonNotYetValid, "not valid before"},
		{"issued in the future", ghc(map[string]any{"iat": now + 120}), ReasonNotYetValid, "future"},
		{"too old", ghc(map[string]any{"iat": now - 3600, "nbf": now - 3600}), ReasonTooOld, "max_token_age"},
		{"no exp", ghc(map[string]any{"exp": nil}), ReasonMalformed, "exp"},
		{"unknown issuer", signWith(t, w.gh.key, "k1", "RS256", "https://evil.example.com", githubClaims(w.env)), ReasonUnknownIssuer, "evil.example.com"},
		{"another issuer's key with the same kid", other, ReasonSignature, "signature"},
		{"alg HS256", hs256, ReasonSignature, "HS256"},
		{"alg none", none, ReasonSignature, "none"},
		{"claim rule", ghc(map[string]any{"repository_owner_id": "66"}), ReasonClaimRule, "only the octo-org organisation"},
		{"claim rule on an unprotected ref", ghc(map[string]any{"ref": "refs/pull/7/merge"}), ReasonClaimRule, "protected refs only"},
		{"missing claim", ghc(map[string]any{"ref": nil}), ReasonClaimRule, "no such key"},
		{"mapping yields no valid username", ghc(map[string]any{"repository_id": "a/b"}), ReasonMapping, "gha-a/b"},
		{"mapping yields a person's username", ghc(map[string]any{"repository_id": "99"}), ReasonUsernameTaken, "gha-99"},
		{"user rule", w.k8s.sign(k8sClaims(w.env, "kube-system", "default")), ReasonUserRule, "kube-system pulls with node credentials"},
		{"malformed", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", ReasonMalformed, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := w.st.ListPasswords(ctx, "")
			_, err := w.v.Verify(ctx, tc.token)
			var we *Error
			if !errors.As(err, &we) || we.Reason != tc.reason || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v (%+v), want reason %s saying %q", err, we, tc.reason, tc.says)
			}
			if after, _ := w.st.ListPasswords(ctx, ""); len(after) != len(before) {
				t.Fatal("a refusal stored something")
			}
		})
	}
	// None of those refetched the keys: the kid was known, or the issuer unknown.
	if n := fetchesOf(w.gh); n != 1 {
		t.Errorf("GitHub keys fetched %d times, want 1", n)
	}
}

func TestOneShot(t *testing.T) {
	w := newWorld(t)
	tok := w.gl.sign(gitlabClaims(w.env, "jti-1"))
	if _, err := w.v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	var we *Error
	if _, err := w.v.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonReplayed {
		t.Fatalf("second use: %v", err)
	}
	// Another replica (no shared cache, same store) refuses it too.
	v2, err := New(w.cfg, Options{Accounts: w.acc, Locks: w.st, Now: w.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonReplayed || !strings.Contains(err.Error(), "jti-1") {
		t.Fatalf("on another replica: %v", err)
	}
	// A new token with the same jti (re-signed) is a replay as well.
	if _, err := v2.Verify(t.Context(), w.gl.sign(merge(gitlabClaims(w.env, "jti-1"), map[string]any{"pipeline_source": "web"}))); !errors.As(err, &we) || we.Reason != ReasonReplayed {
		t.Fatalf("same jti, new token: %v", err)
	}
	if _, err := v2.Verify(t.Context(), w.gl.sign(merge(gitlabClaims(w.env, ""), map[string]any{"jti": nil}))); !errors.As(err, &we) || we.Reason != ReasonMalformed {
		t.Fatalf("no jti: %v", err)
	}
	if _, err := v2.Verify(t.Context(), w.gl.sign(gitlabClaims(w.env, "jti-2"))); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
}

func TestHungIssuerBlocksNobodyElse(t *testing.T) {
	w := newWorld(t)
	hungTok := signWith(t, w.hung.key, "h1", "RS256", w.hung.URL, merge(w.times(time.Minute), map[string]any{"sub": "x", "aud": aud}))
	done := make(chan error, 4)
	for range 4 {
		go func() { _, err := w.v.Verify(t.Context(), hungTok); done <- err }()
	}
	// Meanwhile the other issuers answer.
	if _, err := w.v.Verify(t.Context(), w.gh.sign(githubClaims(w.env))); err != nil {
		t.Fatalf("GitHub while another issuer hangs: %v", err)
	}
	for range 4 {
		var we *Error
		if err := <-done; !errors.As(err, &we) || we.Reason != ReasonUnavailable || we.Issuer != "hung" {
			t.Fatalf("hung issuer: %v", err)
		}
	}
	// Within discoveryRetry the hung issuer fails at once, without a request.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := w.v.Verify(ctx, hungTok); err == nil || ctx.Err() != nil {
		t.Fatalf("second try: %v (ctx %v): want a fast refusal", err, ctx.Err())
	}
}

func TestKeyRotationAndUnknownKids(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	if _, err := w.v.Verify(ctx, w.k8s.sign(k8sClaims(w.env, "builds", "pusher"))); err != nil {
		t.Fatal(err)
	}
	// Random kids, signed by nobody we know: at most one refetch per
	// minKeyRefetch however many arrive.
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	randomKids := func() {
		for i := range 50 {
			tok := signWith(t, stranger, fmt.Sprint("random-", i), "ES256", w.k8s.URL, k8sClaims(w.env, "builds", "pusher"))
			var we *Error
			if _, err := w.v.Verify(ctx, tok); !errors.As(err, &we) || we.Reason != ReasonSignature || !strings.Contains(err.Error(), "kid") {
				t.Fatalf("random kid: %v", err)
			}
		}
	}
	randomKids()
	if n := fetchesOf(w.k8s); n != 1 {
		t.Fatalf("keys fetched %d times for 50 random kids right after the first fetch, want 1", n)
	}
	w.clk.advance(minKeyRefetch)
	randomKids()
	if n := fetchesOf(w.k8s); n != 2 {
		t.Fatalf("keys fetched %d times for 50 more random kids a while later, want 2", n)
	}
	// The cluster rotates its key: within minKeyRefetch of the last
	// fetch the new kid is unknown, after it the key is read.
	oldKey, oldKid := w.k8s.key, w.k8s.kid
	w.k8s.rotate("sa-2", true)
	tok := w.k8s.sign(k8sClaims(w.env, "builds", "pusher"))
	if _, err := w.v.Verify(ctx, tok); err == nil {
		t.Fatal("the new kid verified without a fetch")
	}
	w.clk.advance(minKeyRefetch)
	tok = w.k8s.sign(k8sClaims(w.env, "builds", "pusher"))
	if _, err := w.v.Verify(ctx, tok); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := fetchesOf(w.k8s); n != 3 {
		t.Fatalf("keys fetched %d times after the rotation, want 3", n)
	}
	// A token of the old key, still published, verifies too.
	if _, err := w.v.Verify(ctx, signWith(t, oldKey, oldKid, "RS256", w.k8s.URL, k8sClaims(w.env, "builds", "old"))); err != nil {
		t.Fatalf("old key still published: %v", err)
	}
}

func TestCachedTokenNeedsNoIssuer(t *testing.T) {
	w := newWorld(t)
	tok := w.gh.sign(githubClaims(w.env))
	first, err := w.v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	w.gh.hang.Store(true) // the issuer is gone: the cached token still works
	again, err := w.v.Verify(t.Context(), tok)
	if err != nil || again.Username != first.Username {
		t.Fatalf("cached: %+v, %v", again, err)
	}
	// Until exp (+ leeway): then it is checked again, and refused.
	w.clk.advance(5*time.Minute + Leeway)
	var we *Error
	if _, err := w.v.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonExpired {
		t.Fatalf("after exp: %v", err)
	}
}

func TestRefreshTokenOncePerToken(t *testing.T) {
	w := newWorld(t)
	tok := w.gh.sign(githubClaims(w.env))
	var rts []string
	for range 3 {
		id, err := w.v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := w.v.Refresh(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		rts = append(rts, rt)
	}
	if rts[0] != rts[1] || rts[1] != rts[2] {
		t.Fatal("the same token got different refresh tokens")
	}
	list, _ := w.st.ListPasswords(t.Context(), "gha-74")
	if len(list) != 1 || list[0].CreatedBy != store.CreatedByWorkload || !slices.Equal(list[0].Groups, []string{"github:repo-74", "github:org-65", "github:prod"}) ||
		list[0].ExpiresAt.Sub(list[0].CreatedAt) != 15*time.Minute {
		t.Fatalf("records %+v", list)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	w := newWorld(t)
	if !LooksLikeJWT(w.gh.sign(githubClaims(w.env))) {
		t.Error("a signed token does not look like one")
	}
	for _, s := range []string{"rbp_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "rbr_x_y", "eyJ", "eyJ.a", "eyJa.b.c.d", "hunter2", ""} {
		if LooksLikeJWT(s) {
			t.Errorf("LooksLikeJWT(%q)", s)
		}
	}
}

func TestRemovedKeyStopsCounting(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	oldKey := w.k8s.key
	if _, err := w.v.Verify(ctx, w.k8s.sign(k8sClaims(w.env, "builds", "a"))); err != nil {
		t.Fatal(err)
	}
	// The issuer replaces its key (say it leaked). Once the keys are due
	// for a re-read, a token of the removed key is refused even though
	// its kid is still known to us.
	w.k8s.rotate("sa-2", false)
	w.clk.advance(keysMaxAge + time.Second)
	old := signWith(t, oldKey, "sa-1", "RS256", w.k8s.URL, k8sClaims(w.env, "builds", "b"))
	var we *Error
	if _, err := w.v.Verify(ctx, old); !errors.As(err, &we) || we.Reason != ReasonSignature {
		t.Fatalf("a token of the removed key: %v", err)
	}
	if _, err := w.v.Verify(ctx, w.k8s.sign(k8sClaims(w.env, "builds", "c"))); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
}

// TestCacheHonoursMaxTokenAge: a token living longer than max_token_age
// is refused from the cache once it is too old, as a fresh verifier
// (another replica) refuses it.
func TestCacheHonoursMaxTokenAge(t *testing.T) {
	w := newWorld(t) // github: max_token_age 10m
	tok := w.gh.sign(merge(githubClaims(w.env), w.times(time.Hour)))
	if _, err := w.v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	w.clk.advance(9 * time.Minute)
	if _, err := w.v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("within max_token_age: %v", err)
	}
	w.clk.advance(21 * time.Minute)
	var we *Error
	if _, err := w.v.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonTooOld {
		t.Fatalf("30m after iat with max_token_age 10m, from the cache: %v; want %s", err, ReasonTooOld)
	}
	fresh, err := New(w.cfg, Options{Accounts: w.acc, Locks: w.st, Now: w.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonTooOld {
		t.Fatalf("on a fresh verifier: %v; want %s", err, ReasonTooOld)
	}
}

// TestRefreshTokensCapped: N+1 distinct tokens of one workload leave at
// most max_refresh_tokens_per_workload live refresh tokens; the one past
// the cap gets accounts.ErrLimit.
func TestRefreshTokensCapped(t *testing.T) {
	gh := newTestIssuer(t, "k1")
	e := newEnv(t, Config{Issuers: []IssuerConfig{githubIssuer(gh.URL)}, MaxRefreshTokensPerWorkload: 3})
	for i := range 4 {
		id, err := e.v.Verify(t.Context(), gh.sign(merge(githubClaims(e), map[string]any{"jti": fmt.Sprint("j-", i)})))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.v.Refresh(t.Context(), id)
		switch {
		case i < 3 && err != nil:
			t.Fatalf("token %d: %v", i, err)
		case i == 3 && !errors.Is(err, accounts.ErrLimit):
			t.Fatalf("token past the cap: %v, want accounts.ErrLimit", err)
		}
	}
	if list, _ := e.st.ListPasswords(t.Context(), "gha-74"); len(list) != 3 {
		t.Fatalf("%d live refresh tokens, want 3", len(list))
	}
}

// TestOneShotRelease: a one-shot token whose request failed is given
// back, on every replica; once a refresh token was minted for it, not.
func TestOneShotRelease(t *testing.T) {
	w := newWorld(t)
	tok := w.gl.sign(gitlabClaims(w.env, "jti-r"))
	id, err := w.v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	w.v.Release(id) // say signing the registry token failed
	v2, err := New(w.cfg, Options{Accounts: w.acc, Locks: w.st, Now: w.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if id, err = v2.Verify(t.Context(), tok); err != nil {
		t.Fatalf("the retry, on another replica: %v", err)
	}
	var we *Error
	if _, err := w.v.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonReplayed {
		t.Fatalf("after the retry succeeded: %v", err)
	}
	if _, err := v2.Refresh(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	v2.Release(id) // a refresh token was handed out: the use stands
	if _, err := w.v.Verify(t.Context(), tok); !errors.As(err, &we) || we.Reason != ReasonReplayed {
		t.Fatalf("released after a refresh token was minted: %v", err)
	}
	// Tokens that are not one-shot are untouched.
	gh := w.gh.sign(githubClaims(w.env))
	id, err = w.v.Verify(t.Context(), gh)
	if err != nil {
		t.Fatal(err)
	}
	w.v.Release(id)
	if _, err := w.v.Verify(t.Context(), gh); err != nil {
		t.Fatal(err)
	}
}

// TestKeysOutageIsUnavailable: keys that cannot be read after discovery
// are the issuer's outage (503, the client keeps its token), not a bad
// signature (401).
func TestKeysOutageIsUnavailable(t *testing.T) {
	w := newWorld(t)
	if _, err := w.v.Verify(t.Context(), w.gh.sign(githubClaims(w.env))); err != nil {
		t.Fatal(err)
	}
	w.gh.rotate("k2", false) // a kid the bridge has not seen: a key fetch
	w.gh.keysDown.Store(true)
	w.clk.advance(31 * time.Second) // past the refetch limit
	_, err := w.v.Verify(t.Context(), w.gh.sign(githubClaims(w.env)))
	var we *Error
	if !errors.As(err, &we) || we.Reason != ReasonUnavailable {
		t.Fatalf("keys down: %v, want reason %s", err, ReasonUnavailable)
	}
}
