package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Install hints for the registries, shown when a binary is missing.
const (
	registryV3Hint = "make deps (scripts/install-deps.sh pins its version)"
	registry28Hint = "scripts/install-deps.sh (or: apt-get install -y docker-registry)"
)

// TokenAuth is a registry's auth.token configuration. The zero value runs
// the registry without authentication, which is useful only to check the
// harness itself.
type TokenAuth struct {
	// Realm is the token endpoint the registry sends clients to, e.g.
	// "http://localhost:5001/token". Use a host name, not a loopback IP
	// literal: crane refuses those (go-containerregistry ≥ 0.21.4).
	Realm string
	// Service is the registry's name: the token's "aud" and the "service"
	// parameter of the challenge.
	Service string
	// Issuer is the "iss" the registry accepts.
	Issuer string
	// RootCertBundle is the path of a PEM file of certificates whose keys
	// (or chains, for tokens carrying x5c) verify tokens. Required.
	RootCertBundle string
	// JWKS is the path of a JWKS file of further verification keys. Only
	// registry v3 reads it; Registry28 fails the test if it is set.
	JWKS string
}

// enabled reports whether a configures token authentication.
func (a TokenAuth) enabled() bool { return a != TokenAuth{} }

// RegistryV3 runs distribution v3 ("registry serve CONFIG", from PATH or
// <repo root>/.tools/bin) with filesystem storage in t.TempDir() on
// localhost:PORT, and returns "localhost:PORT" once /v2/ answers.
func RegistryV3(t testing.TB, auth TokenAuth) string {
	t.Helper()
	bin := Tool(t, "registry", registryV3Hint)
	// v3 embeds the OpenTelemetry SDK; keep it from exporting anything.
	return runRegistry(t, "registry-v3", bin, auth, "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
}

// Registry28 runs Debian's distribution 2.8 ("docker-registry serve
// CONFIG") like RegistryV3. distribution 2.8 has no jwks option.
func Registry28(t testing.TB, auth TokenAuth) string {
	t.Helper()
	if auth.JWKS != "" {
		t.Fatalf("testenv: registry 2.8 has no auth.token.jwks option")
	}
	bin := Tool(t, "docker-registry", registry28Hint)
	return runRegistry(t, "registry-2.8", bin, auth)
}

func runRegistry(t testing.TB, name, bin string, auth TokenAuth, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	host := fmt.Sprintf("localhost:%d", FreePort(t))
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(registryConfig(filepath.Join(dir, "storage"), host, auth)), 0o600); err != nil {
		t.Fatalf("testenv: %s: write config: %v", name, err)
	}
	ready := http.StatusOK
	if auth.enabled() {
		ready = http.StatusUnauthorized
	}
	Start(t, Cmd{
		Name:        name,
		Path:        bin,
		Args:        []string{"serve", config},
		Env:         env,
		ReadyURL:    "http://" + host + "/v2/",
		ReadyStatus: ready,
	})
	return host
}

// registryConfig returns a registry config.yml. Strings are written as
// double-quoted YAML scalars; Go's %q quoting is valid YAML for them.
func registryConfig(storage, host string, auth TokenAuth) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\n")
	fmt.Fprintf(&b, "log:\n  level: info\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", storage)
	fmt.Fprintf(&b, "http:\n  addr: %q\n  secret: %q\n", host, "testenv-not-secret")
	if auth.enabled() {
		fmt.Fprintf(&b, "auth:\n  token:\n")
		fmt.Fprintf(&b, "    realm: %q\n    service: %q\n    issuer: %q\n", auth.Realm, auth.Service, auth.Issuer)
		fmt.Fprintf(&b, "    rootcertbundle: %q\n", auth.RootCertBundle)
		if auth.JWKS != "" {
			fmt.Fprintf(&b, "    jwks: %q\n", auth.JWKS)
		}
	}
	return b.String()
}
