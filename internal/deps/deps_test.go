package deps

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/registry-bridge/bridge"

// rule is what one package of this module may reach, directly or through
// its dependencies (non-test imports: test files may import anything).
type rule struct {
	// dev marks a development or test-only package: no package that is
	// not dev may reach it, so it never ships inside the bridge.
	dev bool
	// ours, when not nil, lists the only packages of this module the
	// package may reach; none means no package of ours at all.
	ours []string
	// never lists import paths the package must not reach; each covers
	// the packages under it ("net" covers net/http).
	never []string
}

// none is an ours list that allows no package of this module.
var none = []string{}

// redis is the client library only store/redis (and what wires it) may use.
const redis = "github.com/redis"

// rules holds every package of the module, keyed by its path below the
// module; docs/architecture.md explains each rule. A package missing here
// fails the test: a new package must say where it stands.
var rules = map[string]rule{
	// The core: pure logic, no networking.
	"scope":     {ours: none, never: []string{"net", "os/exec"}},
	"groups":    {ours: []string{"scope"}, never: []string{"net", "os/exec"}},
	"tokens":    {ours: []string{"scope"}, never: []string{"net/http", redis}},
	"passwords": {ours: none, never: []string{"net", redis}},
	"web":       {ours: none, never: []string{"net/http"}},

	// Storage: only store/redis reaches go-redis; no store knows HTTP.
	"store":        {ours: none, never: []string{"net", redis}},
	"store/memory": {ours: []string{"store"}, never: []string{"net", redis}},
	"store/cache":  {ours: []string{"store"}, never: []string{"net/http", redis}},
	"store/redis":  {ours: []string{"store"}, never: []string{"net/http"}},

	// The login and the accounts: talk to the IdP, never serve HTTP, never
	// touch Redis directly.
	"oidc":     {ours: none, never: []string{redis}},
	"accounts": {never: []string{module + "/httpapi", module + "/store/redis", module + "/tokens", module + "/groups", module + "/cmd", redis}},

	// Workload identity: verifies CI and pod tokens against trusted
	// issuers; never serves HTTP, never touches Redis directly.
	"workload": {never: []string{module + "/httpapi", module + "/store/redis", module + "/cmd", redis}},

	// The doctor checks the wiring from the outside: it reaches neither
	// the server nor go-redis (cmd/bridge hands it a ping), nor anything
	// internal.
	"doctor": {never: []string{module + "/httpapi", module + "/internal", module + "/cmd", redis}},

	// Serving: the only net/http server code; reaches the store only
	// through the store interface.
	"httpapi": {never: []string{module + "/store/redis", module + "/cmd", redis}},

	// Helpers of the command and the provider.
	"internal/filewatch": {ours: none, never: []string{"net"}},
	"internal/yamlconf":  {ours: none, never: []string{"net", "os/exec"}},

	// The commands: the bridge wires everything; the kubelet plugin
	// only reads a request and answers it.
	"cmd/bridge":                     {},
	"cmd/bridge-credential-provider": {never: []string{module + "/httpapi", module + "/store", redis}},
	// The Docker credential helper runs on people's machines: it talks to
	// the bridge over HTTP and knows none of the server's code.
	"credhelper":                   {ours: none, never: []string{redis}},
	"cmd/docker-credential-bridge": {ours: []string{"credhelper"}, never: []string{redis}},

	// Development and tests only.
	"cmd/devidp":                     {dev: true},
	"internal/devidp":                {dev: true},
	"internal/testenv":               {dev: true},
	"internal/testenv/cmd/ocilayout": {dev: true},
	"internal/deps":                  {dev: true},
	"store/storetest":                {dev: true},
	"bench":                          {dev: true},
	"bench/internal/refserver":       {dev: true},
	"deploy/deploytest":              {dev: true},
	"e2e":                            {dev: true},
}

func TestImportBoundaries(t *testing.T) {
	deps := listDeps(t)
	// The listing must be what the rules think it is, or every check
	// below passes vacuously.
	if !slices.Contains(deps["httpapi"], "net/http") || !slices.Contains(deps["cmd/bridge"], module+"/httpapi") {
		t.Fatalf("go list output looks wrong: httpapi → %v", deps["httpapi"])
	}
	for _, p := range check(rules, deps) {
		t.Error(p)
	}
}

// TestCheckCatches feeds check a module that breaks each kind of rule.
func TestCheckCatches(t *testing.T) {
	r := map[string]rule{
		"scope":      {ours: none, never: []string{"net"}},
		"groups":     {ours: []string{"scope"}},
		"cmd/bridge": {},
		"e2e":        {dev: true},
		"gone":       {},
	}
	deps := map[string][]string{
		"scope":      {"net/http", "strings"},
		"groups":     {module + "/scope", module + "/store"},
		"cmd/bridge": {module + "/e2e", module + "/scopex"},
		"e2e":        {module + "/cmd/bridge"},
		"new":        {},
	}
	got := check(r, deps)
	for _, want := range []string{
		"scope reaches net/http",
		"groups reaches " + module + "/store",
		"cmd/bridge reaches " + module + "/e2e",
		"new is not in the rules",
		"gone is in the rules but not in the module",
	} {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("check missed %q; it said:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 5 {
		t.Errorf("check said %d things, want 5:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// check returns every way deps (package → everything it reaches, both
// keyed below the module) breaks the rules.
func check(rules map[string]rule, deps map[string][]string) []string {
	var problems []string
	for _, pkg := range sortedKeys(deps) {
		r, ok := rules[pkg]
		if !ok {
			problems = append(problems, pkg+" is not in the rules: add it to the table in internal/deps/deps_test.go")
			continue
		}
		for _, dep := range deps[pkg] {
			if own, ok := strings.CutPrefix(dep, module+"/"); ok {
				if d, known := rules[own]; known && d.dev && !r.dev {
					problems = append(problems, pkg+" reaches "+dep+", which is development-only")
				}
				if r.ours != nil && !slices.Contains(r.ours, own) {
					problems = append(problems, pkg+" reaches "+dep+" (of ours it may reach only "+strings.Join(r.ours, ", ")+")")
				}
			}
			for _, b := range r.never {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					problems = append(problems, pkg+" reaches "+dep+" (forbidden: "+b+")")
				}
			}
		}
	}
	for _, pkg := range sortedKeys(rules) {
		if _, ok := deps[pkg]; !ok {
			problems = append(problems, pkg+" is in the rules but not in the module: remove it")
		}
	}
	return problems
}

// listDeps lists every package of the module with what it reaches.
func listDeps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			t.Fatalf("go list: %s is not below %s", f[0], module)
		}
		deps[pkg] = f[1:]
	}
	return deps
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
