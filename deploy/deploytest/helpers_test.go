package deploytest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/scope"
)

// generateKeys runs `bridge keys generate --out dir`, the command the
// compose keygen step runs, and returns dir.
func generateKeys(t testing.TB, bin, dir string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, "keys", "generate", "--out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("bridge keys generate: %v\n%s", err, out)
	}
	return dir
}

// mount is one filesystem mount of a container: Target inside the
// container shows Source on the test's filesystem.
type mount struct {
	Target string // absolute path in the container
	Source string // path on this machine
	Origin string // what provides it, for messages: "volume keys", "secret x"
}

// mounts resolves container paths through the longest matching mount.
type mounts []mount

// find returns the mount that holds the container path p.
func (ms mounts) find(p string) (mount, bool) {
	p = path.Clean(p)
	best, found := mount{}, false
	for _, m := range ms {
		t := path.Clean(m.Target)
		if (p == t || strings.HasPrefix(p, t+"/")) && len(t) >= len(best.Target) {
			best, found = m, true
		}
	}
	return best, found
}

// hostPath maps the container path p to this machine.
func (ms mounts) hostPath(p string) (string, bool) {
	m, ok := ms.find(p)
	if !ok {
		return "", false
	}
	rel := strings.TrimPrefix(path.Clean(p), path.Clean(m.Target))
	return filepath.Join(m.Source, filepath.FromSlash(rel)), true
}

// rewritePaths returns the YAML document data with every string value
// that is an absolute path (in a bridge config: a key, certificate or
// secret file) replaced by where its mount shows it on this machine. It
// fails the test for an absolute path that no mount provides: the file
// would not exist in the container.
func rewritePaths(t testing.TB, data []byte, ms mounts) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], strings.TrimPrefix(key+"."+n.Content[i].Value, "."))
			}
		case yaml.ScalarNode:
			if n.Tag != "!!str" || !strings.HasPrefix(n.Value, "/") {
				return
			}
			host, ok := ms.hostPath(n.Value)
			if !ok {
				t.Errorf("%s: %s is not on any volume mounted into the container", key, n.Value)
				return
			}
			n.Value = host
		}
	}
	walk(&doc, "")
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBridgeConfig runs `bridge config check` on file with exactly env as
// the process environment, and fails the test with every problem reported.
func checkBridgeConfig(t testing.TB, bin, file string, env map[string]string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, "config", "check", "--config", file)
	cmd.Env = envList(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("bridge config check (as the container would run it) failed: %v\n%s", err, out)
	}
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// envRef is the bridge config's environment reference, ${env:NAME}
// (internal/yamlconf).
var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

// bridgeConfig holds the parts of a bridge config file that other services
// must agree with, after ${env:NAME} expansion.
type bridgeConfig struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	OIDC      struct {
		Issuer            string   `yaml:"issuer"`
		ClientID          string   `yaml:"client_id"`
		ClientSecret      string   `yaml:"client_secret"`
		ClientSecretFile  string   `yaml:"client_secret_file"`
		Scopes            []string `yaml:"scopes"`
		UsernameClaim     string   `yaml:"username_claim"`
		GroupsClaim       string   `yaml:"groups_claim"`
		EncryptionKeyFile string   `yaml:"encryption_key_file"`
	} `yaml:"oidc"`
	Store struct {
		Redis struct {
			URL string `yaml:"url"`
		} `yaml:"redis"`
	} `yaml:"store"`
	Token struct {
		Issuer          string `yaml:"issuer"`
		Service         string `yaml:"service"`
		SigningKeyFile  string `yaml:"signing_key_file"`
		CertificateFile string `yaml:"certificate_file"`
	} `yaml:"token"`
	Access []groups.Rule `yaml:"access"`
}

// parseBridgeConfig expands ${env:NAME} from env and decodes the fields of
// bridgeConfig; `bridge config check` does the strict validation.
func parseBridgeConfig(t testing.TB, data []byte, env map[string]string) bridgeConfig {
	t.Helper()
	expanded := envRef.ReplaceAllFunc(data, func(ref []byte) []byte {
		name := string(envRef.FindSubmatch(ref)[1])
		v, ok := env[name]
		if !ok {
			t.Errorf("bridge config uses ${env:%s}, which the container's environment does not set", name)
		}
		return []byte(v)
	})
	var c bridgeConfig
	if err := yaml.Unmarshal(expanded, &c); err != nil {
		t.Fatalf("parse bridge config: %v", err)
	}
	return c
}

// listenPort returns the port of a host:port listen address.
func listenPort(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return n
}

// urlHostPort returns the host and port of an http(s) URL, the port
// defaulted from the scheme.
func urlHostPort(t testing.TB, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("URL %q: %v", raw, err)
	}
	p := u.Port()
	if p == "" {
		p = map[string]string{"http": "80", "https": "443", "redis": "6379", "rediss": "6379"}[u.Scheme]
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("URL %q: port %q", raw, p)
	}
	return u.Hostname(), n
}

// hostPort splits host:port, the form of token.service.
func hostPort(t testing.TB, s string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return s, 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: port %q", s, p)
	}
	return h, n
}

// policyCase is one access decision the example users must get.
type policyCase struct {
	user   string
	groups []string
	scope  string
	want   string // granted actions, comma-separated; "" for none
}

// checkPolicy compiles the config's access rules with the groups package
// the bridge uses and checks each decision.
func checkPolicy(t *testing.T, rules []groups.Rule, cases []policyCase) {
	t.Helper()
	policy, err := groups.Compile(rules)
	if err != nil {
		t.Fatalf("access rules: %v", err)
	}
	for _, c := range cases {
		t.Run(c.user+" "+c.scope, func(t *testing.T) {
			requested, err := scope.ParseAll([]string{c.scope})
			if err != nil {
				t.Fatal(err)
			}
			granted := policy.Grant(groups.Subject{Username: c.user, Groups: c.groups}, requested)
			var got []string
			for _, s := range granted {
				got = append(got, s.Actions...)
			}
			slices.Sort(got)
			if g := strings.Join(got, ","); g != c.want {
				t.Errorf("%s (groups %v) asking %s is granted %q, want %q", c.user, c.groups, c.scope, g, c.want)
			}
		})
	}
}

// dockerfileStage is one FROM … AS name stage of a Dockerfile.
type dockerfileStage struct {
	Name         string
	From         string
	Instructions []dockerfileInstruction
}

// dockerfileInstruction is one instruction, continuation lines joined.
type dockerfileInstruction struct {
	Cmd  string // upper case: FROM, COPY, RUN, …
	Args string
}

// parseDockerfile splits a Dockerfile into its global ARGs and stages. It
// handles comments and backslash continuations, which is all this
// repository's Dockerfile uses.
func parseDockerfile(t testing.TB, data []byte) (globalArgs map[string]string, stages []dockerfileStage) {
	t.Helper()
	globalArgs = map[string]string{}
	var logical []string
	var cur strings.Builder
	for line := range strings.SplitSeq(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cont, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		in := dockerfileInstruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		switch {
		case in.Cmd == "FROM":
			from, name, _ := strings.Cut(in.Args, " AS ")
			stages = append(stages, dockerfileStage{Name: strings.TrimSpace(name), From: strings.TrimSpace(from)})
		case len(stages) == 0 && in.Cmd == "ARG":
			k, v, _ := strings.Cut(in.Args, "=")
			globalArgs[k] = v
		case len(stages) == 0:
			t.Fatalf("Dockerfile: %s before the first FROM", in.Cmd)
		default:
			s := &stages[len(stages)-1]
			s.Instructions = append(s.Instructions, in)
		}
	}
	return globalArgs, stages
}

// stage returns the named stage.
func stage(t testing.TB, stages []dockerfileStage, name string) dockerfileStage {
	t.Helper()
	for _, s := range stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Dockerfile has no stage %q", name)
	return dockerfileStage{}
}

// last returns the arguments of the stage's last instruction cmd.
func (s dockerfileStage) last(cmd string) (string, bool) {
	for _, in := range slices.Backward(s.Instructions) {
		if in.Cmd == cmd {
			return in.Args, true
		}
	}
	return "", false
}

// all returns the arguments of every instruction cmd in the stage.
func (s dockerfileStage) all(cmd string) []string {
	var out []string
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

// readFile reads a file of the repository.
func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeFile writes data to path, creating its directory.
func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// quoteList formats names for messages.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
