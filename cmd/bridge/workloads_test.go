package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const workloadsSection = `
workloads:
  issuers:
    - name: github
      url: https://token.actions.githubusercontent.com
      audiences: [registry.test]
      certificate_authority_file: ca/roots.pem
      claim_validation_rules:
        - expression: claims.repository_owner_id == "65"
          message: octo-org only
        - claim: ref
          required_value: refs/heads/main
      claim_mappings:
        username: {prefix: gha-, claim: repository_id}
        groups: {expression: "['team-a']"}
`

func TestWorkloadsSection(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Any PEM certificate will do as a CA bundle.
	crt, err := os.ReadFile(filepath.Join(dir, "signing.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca", "roots.pem"), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	base := validConfig(dir)
	path := writeConfig(t, dir, base+workloadsSection)
	t.Chdir("/")
	if out, stderr, err := runCLI(t, "config", "check", "--config", path); err != nil {
		t.Fatalf("config check: %v\n%s%s", err, out, stderr)
	}
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Workloads.Issuers[0].CertificateAuthorityFile, filepath.Join(dir, "ca", "roots.pem"); got != want {
		t.Errorf("certificate_authority_file = %q, want %q", got, want)
	}
	if cfg.Workloads.Issuers[0].RefreshTokenLifetime.Minutes() != 15 || cfg.Workloads.Issuers[0].Reuse != "until_exp" {
		t.Errorf("defaults not applied: %+v", cfg.Workloads.Issuers[0])
	}

	bad := strings.NewReplacer(
		`claims.repository_owner_id == "65"`, `claims.repository_owner_id == 65 +`,
		"audiences: [registry.test]", "audiences: []\n      algorithms: [HS256]",
		"prefix: gha-, ", "",
	).Replace(workloadsSection)
	path = writeConfig(t, dir, base+bad)
	_, stderr, err := runCLI(t, "config", "check", "--config", path)
	if err == nil {
		t.Fatal("config check accepted a bad workloads section")
	}
	for _, want := range []string{
		"workloads.issuers[0].claim_validation_rules[0].expression: ERROR",
		"workloads.issuers[0].audiences: at least one is required",
		`workloads.issuers[0].algorithms[0]: "HS256" is not allowed`,
		"workloads.issuers[0].claim_mappings.username.prefix: required",
	} {
		if !strings.Contains(stderr+err.Error(), want) {
			t.Errorf("config check does not say %q:\n%s%v", want, stderr, err)
		}
	}
}

func TestPolicyExplainClaims(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	section := strings.Replace(workloadsSection, "      certificate_authority_file: ca/roots.pem\n", "", 1)
	section = strings.Replace(section, `['team-a']`, `['team-' + claims.team]`, 1)
	path := writeConfig(t, dir, validConfig(dir)+section)
	claims := filepath.Join(dir, "claims.json")
	write := func(body string) {
		if err := os.WriteFile(claims, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"iss": "https://token.actions.githubusercontent.com", "aud": "registry.test", "sub": "repo:octo-org/app:ref:refs/heads/main",
		"repository_id": "74", "repository_owner_id": "65", "ref": "refs/heads/main", "team": "a"}`)
	out, stderr, err := runCLI(t, "policy", "explain", "--config", path, "--claims", claims, "--issuer", "github",
		"--scope", "repository:team-a/app:pull,push", "repository:team-b/app:pull")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{
		"ok   audience",
		"ok   claim rule claims.repository_owner_id == \"65\"",
		"ok   username",
		"→ gha-74",
		"→ [team-a]",
		"workload user gha-74, groups [team-a]",
		"repository:team-a/app:pull,push → pull,push",
		"repository:team-b/app:pull → (nothing)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A failing rule is shown, with the rule's message, and nothing is granted.
	write(`{"aud": "registry.test", "repository_id": "74", "repository_owner_id": "65", "ref": "refs/pull/1/merge", "team": "a"}`)
	out, _, err = runCLI(t, "policy", "explain", "--config", path, "--claims", claims, "--scope", "repository:team-a/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "FAIL claim rule claims[\"ref\"] == \"refs/heads/main\"") || !strings.Contains(out, "refused (claim_rule)") || strings.Contains(out, "→ pull") {
		t.Errorf("a failing rule:\n%s", out)
	}
	if _, _, err := runCLI(t, "policy", "explain", "--config", path, "--claims", claims, "--issuer", "gitlab"); err == nil || !strings.Contains(err.Error(), `no issuer named "gitlab"`) {
		t.Errorf("unknown issuer: %v", err)
	}
}
