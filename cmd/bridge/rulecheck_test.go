package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/internal/yamlconf"
	"github.com/registry-bridge/bridge/scope"
)

// squattableAccess are the access rules the project shipped before
// personal namespaces moved under users/.
const squattableAccess = `access:
  - groups: [registry-admins]
    repositories: ["**"]
    actions: [pull, push, delete]
    catalog: true
  - groups: [team-*]
    repositories: ["${group}/**"]
    actions: [pull, push]
  - users: ["*"]
    repositories: ["${username}/**"]
    actions: [pull, push, delete]
  - anonymous: true
    repositories: ["public/**"]
    actions: [pull]
`

// baseConfig is validConfig without its access section.
func baseConfig(dir string) string {
	return strings.TrimSuffix(validConfig(dir), exampleAccess())
}

func TestConfigCheckRefusesSquattableRules(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, baseConfig(dir)+squattableAccess)
	out, stderr, err := runCLI(t, "config", "check", "--config", path)
	if !errors.Is(err, errSilent) || strings.Contains(out, ": ok") {
		t.Fatalf("config check = %v, stdout %q; want a failure", err, out)
	}
	for _, want := range []string{
		`error: access[2] "${username}/**" (users *) overlaps access[1] "${group}/**" (groups team-*)`,
		`error: access[2] "${username}/**" (users *) overlaps access[3] "public/**" (anonymous requests): a person whose username is "public"`,
		`gets [pull push delete] on "public"`,
		"--allow-overlapping-rules",
		"users/${username}/**",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("config check output lacks %q:\n%s", want, stderr)
		}
	}

	// The flag accepts them, still saying what they are.
	out, stderr, err = runCLI(t, "config", "check", "--config", path, "--allow-overlapping-rules")
	if err != nil || !strings.Contains(out, ": ok") || !strings.Contains(stderr, "warning (accepted): access[2]") {
		t.Errorf("with --allow-overlapping-rules: %v, stdout %q, stderr:\n%s", err, out, stderr)
	}

	// So does allow_overlap on the personal rule.
	accepted := strings.Replace(squattableAccess, `repositories: ["${username}/**"]`, "repositories: [\"${username}/**\"]\n    allow_overlap: true", 1)
	path = writeConfig(t, dir, baseConfig(dir)+accepted)
	if out, stderr, err := runCLI(t, "config", "check", "--config", path); err != nil || !strings.Contains(out, ": ok") {
		t.Errorf("with allow_overlap: %v, stdout %q, stderr:\n%s", err, out, stderr)
	}
}

func TestConfigCheckWarnsAboutRedundantRules(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, baseConfig(dir)+exampleAccess()+`  - groups: [registry-admins]
    repositories: ["team-a/**"]
    actions: [pull]
`)
	out, stderr, err := runCLI(t, "config", "check", "--config", path)
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("config check: %v %q\n%s", err, out, stderr)
	}
	if want := "warning: access[4] adds nothing: access[0] grants"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// TestExamplePolicyTests runs deploy/examples/policy-test.yaml against
// deploy/examples/bridge.yaml, as the README and docs/access-rules.md say.
func TestExamplePolicyTests(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body, err := os.ReadFile("../../deploy/examples/bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OIDC_CLIENT_SECRET", "s3cret")
	path := writeConfig(t, dir, strings.ReplaceAll(string(body), "/keys/", dir+"/"))
	out, stderr, err := runCLI(t, "policy", "test", "--config", path, "../../deploy/examples/policy-test.yaml")
	if err != nil || !strings.Contains(out, " passed, 0 failed") || strings.Contains(out, "FAIL") {
		t.Fatalf("policy test: %v\n%s%s", err, out, stderr)
	}
}

func TestPolicyTestReportsDifferences(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir))
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(tests, []byte(`tests:
  - name: team-a may delete
    user: alice
    groups: [team-a]
    expect:
      - scope: repository:team-a/app:pull,push,delete
        actions: [pull, push, delete]
      - scope: repository:users/alice/app:pull
        actions: [pull]
  - user: bob
    scope: repository:team-b/x:push
    actions: []
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "policy", "test", "--config", path, tests)
	if !errors.Is(err, errSilent) {
		t.Fatalf("policy test = %v, want a failure\n%s", err, out)
	}
	want := `FAIL team-a may delete
  repository:team-a/app:pull,push,delete (user alice, groups team-a)
    want: pull,push,delete
    got:  pull,push
      granted by access[1] via group team-a: team-a/** [pull push]
      denied: delete not granted on repository team-a/app: the matching rules allow only [pull push]
ok   tests[1]
1 passed, 1 failed
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestPolicyTestFileErrors(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir))
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(tests, []byte(`tests:
  - user: alice
    scope: repository:a:pull
  - anonymous: true
    user: bob
    expect:
      - scope: "repository:UP:pull"
        actions: [pul]
  - user: carol
    actoins: []
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "policy", "test", "--config", path, tests)
	if err == nil || !strings.Contains(err.Error(), "tests[2].actoins (line 10): unknown key") {
		t.Fatalf("unknown key: %v", err)
	}
	if err := os.WriteFile(tests, []byte(`tests:
  - user: alice
    scope: repository:a:pull
  - anonymous: true
    user: bob
    expect:
      - scope: "repository:UP:pull"
        actions: [pul]
  - user: carol
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "policy", "test", "--config", path, tests)
	if err == nil {
		t.Fatal("policy test accepted a bad file")
	}
	for _, want := range []string{
		"tests[0].actions: required",
		"tests[1]: anonymous: true takes no user or groups",
		"tests[1].expect[0].scope: ",
		`tests[1].expect[0].actions[0]: unknown action "pul"`,
		"tests[2]: set scope and actions, or expect",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestREADMEShowsTheExampleAccess: the README's quick start shows
// deploy/examples/bridge.yaml's access section as it is.
func TestREADMEShowsTheExampleAccess(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\n"+exampleAccess()) {
		t.Errorf("README.md does not show deploy/examples/bridge.yaml's access section as it is:\n%s", exampleAccess())
	}
}

// TestExampleRulesCannotBeSquatted: for every namespace the example rules
// name literally, and an example of each group glob, a person with that
// username and no groups gets nothing beyond their own users/<name>/**
// and what anonymous requests get.
func TestExampleRulesCannotBeSquatted(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	c, err := loadConfig(writeConfig(t, dir, validConfig(dir)), useAll)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"users": true}
	for _, r := range c.Access {
		for _, g := range r.Groups {
			names[strings.ReplaceAll(g, "*", "a")] = true
		}
		for _, src := range r.Repositories {
			first, _, _ := strings.Cut(src, "/")
			if !strings.ContainsAny(first, "*$") {
				names[first] = true
			}
		}
	}
	for _, want := range []string{"team-a", "public", "registry-admins", "users"} {
		if !names[want] {
			t.Errorf("the example rules no longer name %s; the test names %v", want, names)
		}
	}
	anonymous := groups.Subject{Anonymous: true}
	for name := range names {
		sub := groups.Subject{Username: name}
		for _, repo := range []string{name + "/app", name + "/a/b", name, "users/" + name + "x/app", "team-a/app", "public/app"} {
			req := []scope.Scope{{Type: scope.TypeRepository, Name: repo, Actions: []string{"pull", "push", "delete"}}}
			got := c.policy.Grant(sub, req)[0].Actions
			everyone := c.policy.Grant(anonymous, req)[0].Actions
			if len(got) > len(everyone) {
				t.Errorf("a person named %q in no group gets %v on %s (anonymous requests: %v)", name, got, repo, everyone)
			}
		}
		own := []scope.Scope{{Type: scope.TypeRepository, Name: "users/" + name + "/app", Actions: []string{"push"}}}
		if got := c.policy.Grant(sub, own)[0].Actions; len(got) != 1 {
			t.Errorf("%q cannot push to users/%s/app: %v", name, name, got)
		}
		if got := c.policy.Grant(sub, []scope.Scope{{Type: scope.TypeRegistry, Name: scope.CatalogName, Actions: []string{"*"}}})[0].Actions; len(got) != 0 {
			t.Errorf("%q gets the catalog", name)
		}
	}
	if fs := groups.Lint(c.Access); len(fs) != 0 {
		t.Errorf("Lint of the example rules: %v", fs)
	}
}

// TestServeLogsSquattableRules: serve keeps serving rules config check
// refuses, and says so at start and at every reload.
func TestServeLogsSquattableRules(t *testing.T) {
	var rules []groups.Rule
	if err := yamlDecodeAccess(squattableAccess, &rules); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	logRules(slog.New(slog.NewTextHandler(&buf, nil)), rules)
	out := buf.String()
	for _, want := range []string{
		"level=WARN",
		"serving it anyway",
		"example_username=public",
		`access[2] \"${username}/**\" (users *) overlaps access[3] \"public/**\"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	logRules(slog.New(slog.NewTextHandler(&buf, nil)), nil)
	if buf.Len() != 0 {
		t.Errorf("no rules, log %q", buf.String())
	}
}

func yamlDecodeAccess(text string, rules *[]groups.Rule) error {
	var c struct {
		Access []groups.Rule `yaml:"access"`
	}
	err := yamlconf.Decode([]byte(text), &c, os.LookupEnv)
	*rules = c.Access
	return err
}
