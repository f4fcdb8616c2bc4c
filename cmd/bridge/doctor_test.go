package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// TestDoctor runs `bridge doctor` against a real registry and Redis: the
// right wiring exits 0, a wrong service exits 1 naming the keys, and
// --json is what scripts read.
func TestDoctor(t *testing.T) {
	testenv.SkipUnlessE2E(t)
	dir := t.TempDir()
	writeKeys(t, dir)
	redis := testenv.Redis(t)
	publicURL := fmt.Sprintf("http://localhost:%d", testenv.FreePort(t))
	config := func(redisAddr string) string {
		return writeConfig(t, t.TempDir(), `
public_url: `+publicURL+`
store:
  redis:
    url: redis://`+redisAddr+`/0
token:
  issuer: registry-bridge
  service: registry.test
  signing_key_file: `+filepath.Join(dir, "signing.key")+`
  certificate_file: `+filepath.Join(dir, "signing.crt")+`
`)
	}
	good := config(redis)
	auth := testenv.TokenAuth{Realm: publicURL + "/token", Service: "registry.test", Issuer: "registry-bridge", RootCertBundle: filepath.Join(dir, "signing.crt")}
	host := testenv.RegistryV3(t, auth)
	auth.Service = "elsewhere.test"
	wrongService := testenv.RegistryV3(t, auth)

	t.Run("correct", func(t *testing.T) {
		out, stderr, err := runCLI(t, "doctor", "--config", good, "--registry", "http://"+host)
		if err != nil || !strings.Contains(out, "result: ok") {
			t.Fatalf("doctor: %v\n%s%s", err, out, stderr)
		}
		// BRIDGE_CONFIG stands in for --config.
		t.Setenv("BRIDGE_CONFIG", good)
		if out, _, err := runCLI(t, "doctor", "--registry", "http://"+host); err != nil {
			t.Fatalf("with BRIDGE_CONFIG: %v\n%s", err, out)
		}
	})
	t.Run("wrong service", func(t *testing.T) {
		out, _, err := runCLI(t, "doctor", "--config", good, "--registry", "http://"+wrongService)
		if !errors.Is(err, errSilent) {
			t.Fatalf("doctor: %v, want exit 1\n%s", err, out)
		}
		for _, want := range []string{"FAIL registry.challenge", "registry auth.token.service: set to \"registry.test\"", "bridge token.service: set to \"elsewhere.test\""} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("json, redis down", func(t *testing.T) {
		down := config(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
		out, _, err := runCLI(t, "doctor", "--config", down, "--registry", "http://"+host, "--json")
		if !errors.Is(err, errSilent) {
			t.Fatalf("doctor: %v, want exit 1\n%s", err, out)
		}
		var rep struct {
			OK     bool `json:"ok"`
			Checks []struct {
				Check, Status string
				Fixes         []struct{ Side, Key string }
			} `json:"checks"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("--json: %v\n%s", err, out)
		}
		found := false
		for _, c := range rep.Checks {
			if c.Check == "store" && c.Status == "fail" && len(c.Fixes) == 1 && c.Fixes[0].Key == "store.redis.url" {
				found = true
			}
			if c.Check == "registry.token" && c.Status != "ok" {
				t.Errorf("registry.token = %s", c.Status)
			}
		}
		if rep.OK || !found {
			t.Fatalf("want ok=false and a failing store check naming store.redis.url:\n%s", out)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if _, _, err := runCLI(t, "doctor", "--config", good); !errors.Is(err, errUsage) {
			t.Fatalf("without --registry: %v, want usage", err)
		}
	})
}
