package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// runCLI runs a command line and returns stdout, stderr and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// writeKeys generates a key pair into dir with the CLI itself.
func writeKeys(t *testing.T, dir string) {
	t.Helper()
	if _, stderr, err := runCLI(t, "keys", "generate", "--out", dir); err != nil {
		t.Fatalf("keys generate: %v\n%s", err, stderr)
	}
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// validConfig is a configuration with keys in dir and the access rules of
// deploy/examples/bridge.yaml.
func validConfig(dir string) string {
	return `
listen: 127.0.0.1:0
public_url: http://localhost:5001
token:
  issuer: registry-bridge
  service: registry.test
  signing_key_file: ` + dir + `/signing.key
  certificate_file: ` + dir + `/signing.crt
` + exampleAccess()
}

// exampleAccess returns the access section of deploy/examples/bridge.yaml.
func exampleAccess() string {
	body, err := os.ReadFile("../../deploy/examples/bridge.yaml")
	if err != nil {
		panic(err) // the repository is incomplete
	}
	s, err := testenv.Section(string(body), "access")
	if err != nil {
		panic(err)
	}
	return s
}

func TestConfigCheckOK(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir))
	out, _, err := runCLI(t, "config", "check", "--config", path)
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("config check: %v %q", err, out)
	}
	// BRIDGE_CONFIG stands in for --config.
	t.Setenv("BRIDGE_CONFIG", path)
	if _, _, err := runCLI(t, "config", "check"); err != nil {
		t.Fatalf("with BRIDGE_CONFIG: %v", err)
	}
}

func TestConfigCheckReportsEverything(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `
listen: nope
public_url: ftp://x/y
tokn: {}
token:
  issuer: ""
  lifetime: 5s
  signing_key_file: `+dir+`/missing.key
passwords:
  default_lifetime: 9000h
access:
  - groups: [a]
    repositories: ["a/***"]
    actions: [pull, fly]
  - repositories: ["x"]
    actions: [pull]
log:
  level: loud
`)
	_, stderr, err := runCLI(t, "config", "check", "--config", path)
	if !errors.Is(err, errSilent) {
		t.Fatalf("err = %v, want a failed check", err)
	}
	for _, want := range []string{
		`tokn (line 4): unknown key (did you mean "token"?)`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// Unknown keys stop decoding; fix that and the rest is reported at once.
	body, _ := os.ReadFile(path)
	path = writeConfig(t, dir, strings.Replace(string(body), "tokn: {}\n", "", 1))
	_, stderr, _ = runCLI(t, "config", "check", "--config", path)
	for _, want := range []string{
		"listen:", "public_url:", "token.issuer", "token.service", "token.lifetime", "token.signing_key_file",
		"passwords.default_lifetime", "access[0].repositories[0]", "access[0].actions[1]", "access[1]", "log.level",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"keys"}, {"keys", "rotate"}, {"passwords", "create", "--bogus"},
		{"passwords", "revoke", "--config", "x"}, {"keys", "generate"},
	} {
		if _, _, err := runCLI(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "bridge ") {
		t.Fatalf("%v %q", err, out)
	}
}

func TestKeysGenerateRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	before, _ := os.ReadFile(filepath.Join(dir, "signing.key"))
	if _, _, err := runCLI(t, "keys", "generate", "--out", dir); err == nil {
		t.Fatal("overwrote existing keys without --force")
	}
	after, _ := os.ReadFile(filepath.Join(dir, "signing.key"))
	if !bytes.Equal(before, after) {
		t.Fatal("key changed")
	}
	fi, err := os.Stat(filepath.Join(dir, "signing.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing.key mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, err := runCLI(t, "keys", "generate", "--out", dir, "--force", "--alg", "RS256"); err != nil {
		t.Fatalf("--force: %v", err)
	}
}

func TestKeysJWKS(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir))
	out, _, err := runCLI(t, "keys", "jwks", "--config", path)
	if err != nil || !strings.Contains(out, `"keys"`) || !strings.Contains(out, `"kid"`) {
		t.Fatalf("%v %s", err, out)
	}
}

func TestPolicyExplain(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir))
	out, _, err := runCLI(t, "policy", "explain", "--config", path, "--user", "alice", "--groups", "team-a",
		"--scope", "repository:team-a/app:pull,push", "--scope", "repository:team-b/x:push repository:users/alice/y:delete")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"repository:team-a/app:pull,push → pull,push",
		"access[1] via group team-a: team-a/**",
		"repository:team-b/x:push → (nothing)",
		"denied:",
		"repository:users/alice/y:delete → delete",
		"access[2] via user alice: users/alice/**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCLI(t, "policy", "explain", "--config", path, "--anonymous", "--scope", "repository:public/a:pull")
	if err != nil || !strings.Contains(out, "repository:public/a:pull → pull") {
		t.Fatalf("anonymous: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "policy", "explain", "--config", path, "--user", "a", "--scope", "repository:A:pull"); err == nil {
		t.Fatal("bad scope accepted")
	}
}

func TestPasswordsNeedRedis(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir))
	_, _, err := runCLI(t, "passwords", "create", "--config", path, "--user", "alice")
	if err == nil || !strings.Contains(err.Error(), "store.redis") {
		t.Fatalf("err = %v, want a message naming store.redis", err)
	}
	if _, _, err := runCLI(t, "passwords", "create", "--config", path, "--user", "a:b"); !errors.Is(err, errUsage) {
		t.Fatalf("username with ':' accepted: %v", err)
	}
}

// TestDeployExampleConfig keeps deploy/examples/bridge.yaml valid under the
// schema the binary enforces.
func TestDeployExampleConfig(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body, err := os.ReadFile("../../deploy/examples/bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(body), "/keys/", dir+"/")
	t.Setenv("OIDC_CLIENT_SECRET", "s3cret")
	path := writeConfig(t, dir, s)
	if _, stderr, err := runCLI(t, "config", "check", "--config", path); err != nil {
		t.Fatalf("deploy/examples/bridge.yaml: %v\n%s", err, stderr)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContractExampleConfig: the configuration example of the product's
// contract (every section, Redis, no encryption key file) stays valid.
func TestContractExampleConfig(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, `
listen: 127.0.0.1:5001
public_url: http://localhost:5001
tls:
  cert_file: `+dir+`/signing.crt
  key_file: `+dir+`/signing.key
oidc:
  issuer: https://idp.example.com
  client_id: registry-bridge
  client_secret: "s3cret"
  scopes: [openid, profile, email, groups, offline_access]
  username_claim: preferred_username
  groups_claim: groups
  allowed_groups: []
store:
  redis:
    url: redis://127.0.0.1:6379/0
token:
  issuer: registry-bridge
  service: registry.example.com
  lifetime: 5m
  signing_key_file: `+dir+`/signing.key
  certificate_file: `+dir+`/signing.crt
  previous_keys: []
passwords:
  default_lifetime: 720h
  max_lifetime: 2160h
  revalidate_every: 15m
access:
  - groups: [registry-admins]
    repositories: ["**"]
    actions: [pull, push, delete]
    catalog: true
  - groups: [team-a]
    repositories: ["team-a/**"]
    actions: [pull, push]
  - users: ["*"]
    repositories: ["users/${username}/**"]
    actions: [pull, push, delete]
  - anonymous: true
    repositories: ["public/**"]
    actions: [pull]
`)
	if _, stderr, err := runCLI(t, "config", "check", "--config", path); err != nil {
		t.Fatalf("the contract's example config: %v\n%s", err, stderr)
	}
}
