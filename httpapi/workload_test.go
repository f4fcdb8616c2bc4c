package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	dto "github.com/prometheus/client_model/go"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/workload"
)

// workloadFixture is the token endpoint with a real issuer (go-oidc's
// oidctest on loopback) trusted for GitHub-Actions-shaped tokens.
type workloadFixture struct {
	*fixture
	iss    string
	key    *rsa.PrivateKey
	wl     *workload.Verifier
	issCfg workload.IssuerConfig
}

func newWorkloadFixture(t *testing.T, edit func(*workload.IssuerConfig)) *workloadFixture {
	t.Helper()
	return newWorkloadFixtureConfig(t, edit, nil)
}

// newWorkloadFixtureConfig is newWorkloadFixture with an edit of the
// whole workloads section as well.
func newWorkloadFixtureConfig(t *testing.T, edit func(*workload.IssuerConfig), editConfig func(*workload.Config)) *workloadFixture {
	t.Helper()
	f := newFixture(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	hs := httptest.NewServer(idp)
	t.Cleanup(hs.Close)
	idp.SetIssuer(hs.URL)
	is := workload.IssuerConfig{
		Name: "github", URL: hs.URL, Audiences: []string{testService},
		ClaimValidationRules: []workload.ClaimValidationRule{{Expression: `claims.repository_owner_id == "65"`, Message: "octo-org only"}},
		ClaimMappings: workload.ClaimMappings{
			Username: workload.PrefixedClaim{Prefix: "gha-", Claim: "repository_id"},
			Groups:   workload.PrefixedClaim{Expression: `claims.environment == "prod" ? ["team-a"] : []`},
		},
	}
	if edit != nil {
		edit(&is)
	}
	cfg := workload.Config{Issuers: []workload.IssuerConfig{is}}
	if editConfig != nil {
		editConfig(&cfg)
	}
	cfg.SetDefaults()
	clock := func() time.Time { return f.now }
	acc := accounts.New(accounts.Options{Store: f.st, Now: clock, WorkloadPrefixes: cfg.Prefixes()})
	t.Cleanup(acc.Close)
	wl, err := workload.New(cfg, workload.Options{Accounts: acc, Locks: f.st, Now: clock, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.opts.Workloads = wl
	if f.srv, err = New(f.opts); err != nil {
		t.Fatal(err)
	}
	return &workloadFixture{fixture: f, iss: hs.URL, key: key, wl: wl, issCfg: is}
}

// token is a GitHub-Actions-shaped token, issued now, living 5 minutes.
func (f *workloadFixture) token(over map[string]any) string {
	c := map[string]any{
		"iss": f.iss, "aud": testService, "sub": "repo:octo-org/octo-repo:environment:prod",
		"iat": f.now.Unix(), "nbf": f.now.Unix(), "exp": f.now.Add(5 * time.Minute).Unix(), "jti": "j-1",
		"repository": "octo-org/octo-repo", "repository_id": "74", "repository_owner_id": "65",
		"ref": "refs/heads/main", "environment": "prod",
	}
	for k, v := range over {
		c[k] = v
	}
	b, _ := json.Marshal(c)
	return oidctest.SignIDToken(f.key, "k1", "RS256", string(b))
}

func TestWorkloadTokenAsBasicPassword(t *testing.T) {
	f := newWorkloadFixture(t, nil)
	tok := f.token(nil)
	for _, user := range []string{"ci", "", "gha-74"} {
		d := f.decode(f.get("service="+testService+"&scope=repository:team-a/app:push,pull&scope=repository:team-b/x:pull", basic(user, tok)))
		if d.sub() != "gha-74" || !sameSet(d.actions("repository", "team-a/app"), "pull", "push") || d.actions("repository", "team-b/x") != nil {
			t.Fatalf("user %q: sub %s, access %+v", user, d.sub(), d.access)
		}
		if d.resp.RefreshToken != "" {
			t.Fatal("a refresh token without offline_token")
		}
	}
	ev := f.lastLog()
	if ev["user"] != "gha-74" || ev["issuer"] != "github" || ev["workload_subject"] != "repo:octo-org/octo-repo:environment:prod" || ev["outcome"] != "partial" {
		t.Fatalf("audit event %v", ev)
	}
	if strings.Contains(f.logs.String(), tok[len(tok)-20:]) {
		t.Fatal("the token is in the log")
	}
	if n := count(f.srv.workloads.results.WithLabelValues("github", "ok")); n != 3 {
		t.Fatalf("ok count %v", n)
	}
}

func TestWorkloadRefusedIs401WithReason(t *testing.T) {
	f := newWorkloadFixture(t, func(is *workload.IssuerConfig) { is.BasicUsername = "ci" })
	before, _ := f.st.ListPasswords(t.Context(), "")
	for _, tc := range []struct {
		name, user, token, reason string
	}{
		{"claim rule", "ci", f.token(map[string]any{"repository_owner_id": "1"}), workload.ReasonClaimRule},
		{"expired", "ci", f.token(map[string]any{"exp": f.now.Add(-time.Hour).Unix()}), workload.ReasonExpired},
		{"wrong audience", "ci", f.token(map[string]any{"aud": "sts.amazonaws.com"}), workload.ReasonAudience},
		{"unknown issuer", "ci", f.token(map[string]any{"iss": "https://gitlab.example.com"}), workload.ReasonUnknownIssuer},
		{"another username", "alice", f.token(nil), "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.get("service="+testService+"&scope=repository:team-a/app:pull", basic(tc.user, tc.token))
			if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "workload token was refused") {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if ev := f.lastLog(); ev["workload_reason"] != tc.reason || ev["outcome"] != "denied" || ev["cause"] == nil {
				t.Fatalf("audit event %v, want workload_reason %s", ev, tc.reason)
			}
		})
	}
	if after, _ := f.st.ListPasswords(t.Context(), ""); len(after) != len(before) {
		t.Fatal("a refusal stored something")
	}
	if n := count(f.srv.workloads.results.WithLabelValues("unknown", workload.ReasonUnknownIssuer)); n != 1 {
		t.Fatalf("unknown issuer count %v", n)
	}
}

func TestWorkloadRefreshOutlivesTheToken(t *testing.T) {
	f := newWorkloadFixture(t, nil)
	tok := f.token(nil)
	d := f.decode(f.post(url.Values{"grant_type": {"password"}, "username": {"ci"}, "password": {tok},
		"access_type": {"offline"}, "client_id": {"docker"}, "service": {testService}, "scope": {"repository:team-a/app:push,pull"}}))
	rt := d.resp.RefreshToken
	if !strings.HasPrefix(rt, "rbr_") {
		t.Fatalf("refresh token %q", rt)
	}
	// The CI token expires; the build goes on with the bridge's refresh token.
	f.now = f.now.Add(10 * time.Minute)
	if w := f.get("service="+testService+"&scope=repository:team-a/app:push", basic("ci", tok)); w.Code != http.StatusUnauthorized {
		t.Fatalf("expired CI token: %d", w.Code)
	}
	d = f.decode(f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"docker"},
		"service": {testService}, "scope": {"repository:team-a/app:push,pull"}}))
	if d.sub() != "gha-74" || !sameSet(d.actions("repository", "team-a/app"), "pull", "push") {
		t.Fatalf("refresh grant: sub %s access %+v", d.sub(), d.access)
	}
	// It has its own bounded life (15m by default)…
	f.now = f.now.Add(6 * time.Minute)
	if w := f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {testService}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("refresh token past its lifetime: %d %s", w.Code, w.Body)
	}
}

func TestWorkloadRefreshIsRevocable(t *testing.T) {
	f := newWorkloadFixture(t, nil)
	d := f.decode(f.get("service="+testService+"&offline_token=true", basic("ci", f.token(nil))))
	list, _ := f.st.ListPasswords(t.Context(), "gha-74")
	if len(list) != 1 || list[0].CreatedBy != "workload" {
		t.Fatalf("records %+v", list)
	}
	if err := f.st.DeletePassword(t.Context(), list[0].ID); err != nil {
		t.Fatal(err)
	}
	if w := f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.resp.RefreshToken}, "service": {testService}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("revoked: %d", w.Code)
	}
}

func TestAppPasswordsUnaffectedByWorkloads(t *testing.T) {
	f := newWorkloadFixture(t, nil)
	pw, _ := f.mint("alice", []string{"team-a"}, false)
	d := f.decode(f.get("service="+testService+"&scope=repository:team-a/x:push", basic("alice", pw)))
	if d.sub() != "alice" || len(d.actions("repository", "team-a/x")) != 1 {
		t.Fatalf("app password: %s %+v", d.sub(), d.access)
	}
	if ev := f.lastLog(); ev["issuer"] != nil || ev["password_id"] == nil {
		t.Fatalf("audit event %v", ev)
	}
}

// count reads a counter's value.
func count(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func sameSet(got []string, want ...string) bool {
	got = slices.Clone(got)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// TestHungIssuerLeavesAppPasswordsAlone: while a workload request waits
// for an issuer that does not answer, app passwords are served; the
// workload request then gets a 503 (retry), not a 401.
func TestHungIssuerLeavesAppPasswordsAlone(t *testing.T) {
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(hung.Close)
	f := newWorkloadFixture(t, func(is *workload.IssuerConfig) { is.URL = hung.URL })
	pw, _ := f.mint("alice", []string{"team-a"}, false)
	tok := f.token(map[string]any{"iss": hung.URL})
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- f.get("service="+testService+"&scope=repository:team-a/app:pull", basic("ci", tok)) }()
	<-arrived // the workload request waits at the issuer
	d := f.decode(f.get("service="+testService+"&scope=repository:team-a/app:pull", basic("alice", pw)))
	if d.sub() != "alice" {
		t.Fatalf("app password while the issuer hangs: %s", d.sub())
	}
	close(release)
	if w := <-done; w.Code != http.StatusServiceUnavailable {
		t.Fatalf("workload token of a hung issuer: %d %s, want 503", w.Code, w.Body)
	}
}

// TestWorkloadRefreshCapWithholdsOnlyTheRefreshToken: past
// max_refresh_tokens_per_workload the response is still a 200 with the
// access token, without a refresh token, and the audit event says why.
func TestWorkloadRefreshCapWithholdsOnlyTheRefreshToken(t *testing.T) {
	f := newWorkloadFixtureConfig(t, nil, func(c *workload.Config) { c.MaxRefreshTokensPerWorkload = 2 })
	for i := range 3 {
		w := f.get("service="+testService+"&offline_token=true&scope=repository:team-a/app:pull", basic("ci", f.token(map[string]any{"jti": fmt.Sprint("j-", i)})))
		d := f.decode(w)
		if w.Code != http.StatusOK || d.sub() != "gha-74" || len(d.actions("repository", "team-a/app")) != 1 {
			t.Fatalf("token %d: %d %s", i, w.Code, w.Body)
		}
		ev := f.lastLog()
		switch {
		case i < 2 && (!strings.HasPrefix(d.resp.RefreshToken, "rbr_") || ev["refresh_token_withheld"] != nil):
			t.Fatalf("token %d: refresh token %q, audit %v", i, d.resp.RefreshToken, ev)
		case i == 2 && (d.resp.RefreshToken != "" || ev["refresh_token_withheld"] != "max_refresh_tokens_per_workload"):
			t.Fatalf("past the cap: refresh token %q, audit %v", d.resp.RefreshToken, ev)
		}
	}
	if list, _ := f.st.ListPasswords(t.Context(), "gha-74"); len(list) != 2 {
		t.Fatalf("%d live records, want 2", len(list))
	}
}

// failingMint fails the first workload refresh-token mint, as a store
// that is briefly down does.
type failingMint struct {
	*accounts.Accounts
	failed bool
}

func (m *failingMint) MintWorkloadRefresh(ctx context.Context, p accounts.Principal, groups []string, lifetime time.Duration, name string, maxLive int) (string, error) {
	if !m.failed {
		m.failed = true
		return "", errors.New("store down")
	}
	return m.Accounts.MintWorkloadRefresh(ctx, p, groups, lifetime, name, maxLive)
}

// TestOneShotTokenSurvivesA503: a one-shot token whose request failed
// with a 5xx after it was verified works on the client's retry.
func TestOneShotTokenSurvivesA503(t *testing.T) {
	f := newWorkloadFixture(t, func(is *workload.IssuerConfig) { is.Reuse = workload.ReuseOneShot })
	cfg := workload.Config{Issuers: []workload.IssuerConfig{f.issCfg}}
	cfg.SetDefaults()
	clock := func() time.Time { return f.now }
	acc := accounts.New(accounts.Options{Store: f.st, Now: clock, WorkloadPrefixes: cfg.Prefixes()})
	t.Cleanup(acc.Close)
	wl, err := workload.New(cfg, workload.Options{Accounts: &failingMint{Accounts: acc}, Locks: f.st, Now: clock, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.opts.Workloads = wl
	if f.srv, err = New(f.opts); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"password"}, "username": {"ci"}, "password": {f.token(nil)},
		"access_type": {"offline"}, "client_id": {"docker"}, "service": {testService}, "scope": {"repository:team-a/app:pull"}}
	if w := f.post(form); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first try: %d %s, want 503", w.Code, w.Body)
	}
	w := f.post(form)
	if d := f.decode(w); w.Code != http.StatusOK || !strings.HasPrefix(d.resp.RefreshToken, "rbr_") {
		t.Fatalf("the retry: %d %s", w.Code, w.Body)
	}
	if w := f.post(form); w.Code != http.StatusUnauthorized {
		t.Fatalf("a third use of the one-shot token: %d %s", w.Code, w.Body)
	}
}

// TestRemovedIssuerStopsItsRefreshTokens: once an issuer is taken out of
// the configuration, the refresh tokens of its workloads are refused at
// once, not at their expiry; with no workloads configured at all too.
func TestRemovedIssuerStopsItsRefreshTokens(t *testing.T) {
	f := newWorkloadFixture(t, nil)
	d := f.decode(f.get("service="+testService+"&offline_token=true", basic("ci", f.token(nil))))
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.resp.RefreshToken}, "service": {testService}}
	if w := f.post(refresh); w.Code != http.StatusOK {
		t.Fatalf("while the issuer is configured: %d %s", w.Code, w.Body)
	}
	// The restart with the issuer renamed (another issuer now).
	other := f.issCfg
	other.Name = "github-new"
	cfg := workload.Config{Issuers: []workload.IssuerConfig{other}}
	cfg.SetDefaults()
	acc := accounts.New(accounts.Options{Store: f.st, WorkloadPrefixes: cfg.Prefixes()})
	t.Cleanup(acc.Close)
	wl, err := workload.New(cfg, workload.Options{Accounts: acc, Locks: f.st})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		wl   WorkloadVerifier
	}{{"issuer removed", wl}, {"no workloads section", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			f.opts.Workloads = tc.wl
			if f.srv, err = New(f.opts); err != nil {
				t.Fatal(err)
			}
			if w := f.post(refresh); w.Code != http.StatusUnauthorized {
				t.Fatalf("%d %s, want 401", w.Code, w.Body)
			}
			if ev := f.lastLog(); !strings.Contains(fmt.Sprint(ev["cause"]), "no longer in workloads.issuers") {
				t.Fatalf("audit event %v", ev)
			}
		})
	}
}
