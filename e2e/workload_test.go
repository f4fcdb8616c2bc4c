package e2e_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// ciIssuer is a real OIDC issuer (go-oidc's oidctest: discovery and JWKS)
// on loopback, handing out GitHub-Actions-shaped tokens.
type ciIssuer struct {
	url string
	key *rsa.PrivateKey
}

func startCIIssuer(t testing.TB) *ciIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "gha-1", Algorithm: "RS256"}}}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	srv.SetIssuer(hs.URL)
	return &ciIssuer{url: hs.URL, key: key}
}

// workloadsConfig trusts is for the registry's service: repository 74 of
// owner 65 on main becomes gha-74 in group team-ci.
func (is *ciIssuer) workloadsConfig() string {
	return fmt.Sprintf(`
workloads:
  issuers:
    - name: github
      url: %s
      audiences: [%s]
      max_token_age: 10m
      refresh_token_lifetime: 30m
      claim_validation_rules:
        - expression: claims.repository_owner_id == "65" && claims.ref == "refs/heads/main"
          message: main of octo-org only
      claim_mappings:
        username: {prefix: gha-, claim: repository_id}
        groups: {expression: "['team-ci']"}
`, is.url, service)
}

// token is a CI job's token issued at iat, valid until exp.
func (is *ciIssuer) token(t testing.TB, iat, exp time.Time) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"iss": is.url, "aud": service, "sub": "repo:octo-org/octo-repo:ref:refs/heads/main", "jti": fmt.Sprint(time.Now().UnixNano()),
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": exp.Unix(),
		"repository": "octo-org/octo-repo", "repository_id": "74", "repository_owner_id": "65", "ref": "refs/heads/main",
	})
	if err != nil {
		t.Fatal(err)
	}
	return oidctest.SignIDToken(is.key, "gha-1", "RS256", string(b))
}

// TestWorkloadClients logs in with a CI job's OIDC token as the password
// and pushes and pulls with every client against both registries: the job
// may push to team-ci/**, not to team-a/**, and a token of the wrong
// repository gets nowhere.
func TestWorkloadClients(t *testing.T) {
	is := startCIIssuer(t)
	w := newWorld(t, worldOptions{extra: is.workloadsConfig()})
	img := testenv.OCILayout(t, t.TempDir())
	eachClient(t, w, nil, func(t *testing.T, cc clientCase) {
		c, host := cc.c, cc.host
		tok := is.token(t, time.Now(), time.Now().Add(10*time.Minute))
		login(t, c, host, "ci", tok)
		pushPull(t, c, img, host+"/team-ci/"+c.Name+"-app:v1")
		out, err := c.Push(t.Context(), img, host+"/team-a/"+c.Name+"-ci:v1")
		assertDenied(t, "workload push to team-a", out, err)

		t.Run("token of a forbidden ref", func(t *testing.T) {
			fresh := cc.tool(t)
			bad := is.tokenWithRef(t, "refs/heads/feature")
			out, err := fresh.Login(t.Context(), host, "ci", bad)
			if fresh.LoginChecks {
				assertDenied(t, "login with a token of another ref", out, err)
			}
			out, err = fresh.Push(t.Context(), img, host+"/team-ci/"+c.Name+"-feature:v1")
			assertDenied(t, "push with a token of another ref", out, err)
		})
	})
}

func (is *ciIssuer) tokenWithRef(t testing.TB, ref string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"iss": is.url, "aud": service, "sub": "repo:octo-org/octo-repo:ref:" + ref,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
		"repository_id": "74", "repository_owner_id": "65", "ref": ref,
	})
	return oidctest.SignIDToken(is.key, "gha-1", "RS256", string(b))
}

// TestWorkloadBuildOutlivesItsToken is a build longer than its CI token's
// life: the job logs in with offline_token=true while the token is valid,
// the token expires (its exp plus the bridge's leeway pass), and the
// clients keep pushing with the bridge's own refresh token as their
// identity token. (skopeo 1.9 ignores identity tokens in auth.json and
// goes anonymous, so it is not among them.)
func TestWorkloadBuildOutlivesItsToken(t *testing.T) {
	is := startCIIssuer(t)
	w := newWorld(t, worldOptions{extra: is.workloadsConfig()})
	img := testenv.OCILayout(t, t.TempDir())
	// A token issued a while ago that expires in a moment: within the
	// bridge's 30s leeway for the next 3 seconds.
	now := time.Now()
	tok := is.token(t, now.Add(-5*time.Minute), now.Add(-27*time.Second))
	status, login := getToken(t, w.url, url.Values{"account": {"ci"}, "client_id": {"docker"}, "offline_token": {"true"}, "service": {service}}, "ci", tok)
	if status != http.StatusOK || !strings.HasPrefix(login.RefreshToken, "rbr_") {
		t.Fatalf("login with offline_token: %d, refresh token %q", status, login.RefreshToken)
	}
	time.Sleep(time.Until(now.Add(4 * time.Second)))
	if status, _ := getToken(t, w.url, url.Values{"service": {service}, "scope": {"repository:team-ci/x:pull"}}, "ci", tok); status != http.StatusUnauthorized {
		t.Fatalf("the expired CI token: %d, want 401", status)
	}
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, w.tokenAuth())
			for _, tool := range []func(testing.TB) *testenv.Client{testenv.Crane, testenv.Oras, testenv.Regctl} {
				c := tool(t)
				t.Run(c.Name, func(t *testing.T) {
					c.UseIdentityToken(t, host, login.RefreshToken)
					pushPull(t, c, img, host+"/team-ci/long-build-"+c.Name+":v1")
				})
			}
		})
	}
}

// TestCredentialProviderPlugin runs the kubelet credential provider plugin
// as the kubelet does — a real k8s.io/kubelet CredentialProviderRequest on
// stdin, carrying a Kubernetes-service-account-shaped token — and pulls
// and pushes with the credentials it answers, against both registries.
func TestCredentialProviderPlugin(t *testing.T) {
	is := startCIIssuer(t)
	w := newWorld(t, worldOptions{extra: fmt.Sprintf(`
workloads:
  issuers:
    - name: cluster
      url: %s
      audiences: [%s]
      claim_validation_rules:
        - expression: claims.sub.startsWith("system:serviceaccount:")
      claim_mappings:
        username:
          prefix: "k8s-"
          expression: 'claims["kubernetes.io"].namespace + "." + claims["kubernetes.io"].serviceaccount.name'
        groups: {prefix: "team-", expression: 'claims["kubernetes.io"].namespace'}
`, is.url, service)})
	plugin := filepath.Join(t.TempDir(), "bridge-credential-provider")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", plugin, "./cmd/bridge-credential-provider")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the plugin: %v\n%s", err, out)
	}
	now := time.Now()
	b, _ := json.Marshal(map[string]any{
		"iss": is.url, "aud": []string{service}, "sub": "system:serviceaccount:builds:puller",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "builds", "serviceaccount": map[string]any{"name": "puller", "uid": "1f"},
			"pod": map[string]any{"name": "build-1", "uid": "2e"}},
	})
	saToken := oidctest.SignIDToken(is.key, "gha-1", "RS256", string(b))
	img := testenv.OCILayout(t, t.TempDir())
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, w.tokenAuth())
			req, _ := json.Marshal(credentialproviderv1.CredentialProviderRequest{
				TypeMeta: metav1.TypeMeta{APIVersion: "credentialprovider.kubelet.k8s.io/v1", Kind: "CredentialProviderRequest"},
				Image:    host + "/team-builds/app:v1", ServiceAccountToken: saToken,
			})
			out, err := testenv.Run(t.Context(), testenv.Command{Path: plugin, Stdin: string(req)})
			if err != nil {
				t.Fatalf("plugin: %v\n%s", err, out)
			}
			var resp credentialproviderv1.CredentialProviderResponse
			if err := json.Unmarshal([]byte(out), &resp); err != nil {
				t.Fatalf("plugin answer %q: %v", out, err)
			}
			auth, ok := resp.Auth[host]
			if !ok || resp.CacheKeyType != credentialproviderv1.RegistryPluginCacheKeyType || resp.CacheDuration == nil ||
				resp.CacheDuration.Duration <= 50*time.Minute || resp.CacheDuration.Duration >= time.Hour {
				t.Fatalf("plugin answer %+v", resp)
			}
			c := testenv.Crane(t)
			login(t, c, host, auth.Username, auth.Password)
			pushPull(t, c, img, host+"/team-builds/app:v1")
			out, err = c.Push(t.Context(), img, host+"/team-a/from-builds:v1")
			assertDenied(t, "push outside the namespace's team", out, err)
		})
	}
}
