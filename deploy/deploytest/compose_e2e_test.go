package deploytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// TestComposeEndToEnd runs the compose stack's bridge and registry as
// real processes from the shipped files — bridge.yaml, registry.yml and the
// environment docker-compose.yml gives each — and checks that the registry
// sends clients to the bridge and accepts the bridge's tokens. Dex cannot
// run here (docs/testing.md); the bridge discovers its IdP lazily, so nothing
// below needs it. Only what this machine lacks is changed: listen
// addresses and the Redis address, and BRIDGE_PUBLIC_URL and
// REGISTRY_SERVICE to free ports, through the .env mechanism.
func TestComposeEndToEnd(t *testing.T) {
	testenv.SkipUnlessE2E(t)
	registryBin := testenv.Tool(t, "registry", "make deps (builds distribution v3 into .tools/bin)")
	redis := testenv.Redis(t)
	bin := testenv.BuildBridge(t)
	keysDir := generateKeys(t, bin, filepath.Join(t.TempDir(), "keys"))
	bridgePort, registryPort := testenv.FreePort(t), testenv.FreePort(t)
	bridgeURL := fmt.Sprintf("http://localhost:%d", bridgePort)
	service := fmt.Sprintf("localhost:%d", registryPort)

	dir := filepath.Join(testenv.RepoRoot(t), "deploy", "compose")
	p := loadCompose(t, dir, map[string]string{"BRIDGE_PUBLIC_URL": bridgeURL, "REGISTRY_SERVICE": service})
	s := newComposeStack(t, p, keysDir)

	// The bridge, from bridge.yaml with its mounts mapped.
	data, err := os.ReadFile(s.bridgeConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	data = setYAML(t, rewritePaths(t, data, s.bridgeMounts), map[string]string{
		"listen":          fmt.Sprintf("127.0.0.1:%d", bridgePort),
		"store.redis.url": "redis://" + redis + "/0",
	})
	config := filepath.Join(t.TempDir(), "bridge.yaml")
	writeFile(t, config, data)
	testenv.Start(t, testenv.Cmd{
		Name:     "bridge",
		Path:     bin,
		Args:     []string{"serve", "--config", config},
		Env:      envList(s.bridgeEnv),
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", bridgePort),
	})

	// The registry, from registry.yml with its mounts mapped and the
	// environment compose gives it.
	regMounts := s.mounts(t, s.registry)
	regFile, ok := regMounts.hostPath(registryConfigPath)
	if !ok {
		t.Fatalf("registry: %s is not mounted", registryConfigPath)
	}
	regData, err := os.ReadFile(regFile)
	if err != nil {
		t.Fatal(err)
	}
	regConfig := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, regConfig, rewritePaths(t, regData, regMounts))
	regEnv := serviceEnv(t, s.registry)
	regEnv["REGISTRY_HTTP_ADDR"] = fmt.Sprintf("127.0.0.1:%d", registryPort)
	testenv.Start(t, testenv.Cmd{
		Name:     "registry",
		Path:     registryBin,
		Args:     []string{"serve", regConfig},
		Env:      envList(regEnv),
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/", registryPort),
	})
	registry := "http://" + service

	t.Run("challenge points at the bridge", func(t *testing.T) {
		resp := get(t, registry+"/v2/", "")
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /v2/ without credentials: %s", resp.Status)
		}
		for _, want := range []string{`realm="` + bridgeURL + `/token"`, `service="` + service + `"`} {
			if !strings.Contains(challenge, want) {
				t.Errorf("WWW-Authenticate %q lacks %s", challenge, want)
			}
		}
	})

	t.Run("registry accepts the bridge's token", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), bin, "passwords", "create", "--config", config,
			"--user", dexUsers[0].name, "--groups", strings.Join(dexUsers[0].groups, ","), "--name", "compose-e2e")
		cmd.Env = append(envList(s.bridgeEnv), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bridge passwords create: %v", err)
		}
		password := strings.TrimSpace(string(out))

		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
			bridgeURL+"/token?service="+service+"&scope=repository:team-b/app:pull,push", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(dexUsers[0].name, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Token string `json:"token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Token == "" {
			t.Fatalf("GET /token: %s, %v", resp.Status, err)
		}
		if r := get(t, registry+"/v2/", body.Token); r.StatusCode != http.StatusOK {
			t.Errorf("GET /v2/ with the bridge's token: %s", r.Status)
		}
		// Authorized for the repository: the registry answers about the
		// repository (unknown), not about the token.
		if r := get(t, registry+"/v2/team-b/app/tags/list", body.Token); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET /v2/team-b/app/tags/list with a pull token: %s, want 404 (name unknown)", r.Status)
		}
	})
}

// get sends a GET, with a bearer token if one is given.
func get(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// setYAML sets the scalar values at dotted key paths of a YAML mapping.
func setYAML(t *testing.T, data []byte, values map[string]string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for key, value := range values {
		n := doc.Content[0]
		for part := range strings.SplitSeq(key, ".") {
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				t.Fatalf("config has no %s", key)
			}
			n = next
		}
		n.Value = value
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
