package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/distribution/v3/configuration"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// registryConfigPath is where the registry:3 image reads its config when
// the command is not overridden (distribution's Dockerfile: CMD ["serve",
// "/etc/distribution/config.yml"]).
const registryConfigPath = "/etc/distribution/config.yml"

// sharedComposeValues are the variables of deploy/compose/.env that must
// agree across services, with a second value for each. TestCompose loads
// the stack once as shipped and once with all of these replaced: a value
// written out literally anywhere instead of taken from .env makes the
// second run disagree with itself. Ports stay: they are also published.
var sharedComposeValues = map[string]string{
	"BRIDGE_PUBLIC_URL":  "http://127.0.0.1:5001",
	"REGISTRY_SERVICE":   "127.0.0.1:5000",
	"TOKEN_ISSUER":       "changed-issuer",
	"DEX_ISSUER":         "http://dex.localhost:5556/changed-path",
	"OIDC_CLIENT_ID":     "changed-client",
	"OIDC_CLIENT_SECRET": "changed-secret-0123456789",
}

// The example users of dex.yaml and the passwords compose/README.md gives.
var dexUsers = []struct {
	name, password string
	groups         []string
}{
	{"alice", "alice-example-password", []string{"registry-admins"}},
	{"bob", "bob-example-password", []string{"team-a"}},
}

func TestCompose(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "deploy", "compose")
	bin := testenv.BuildBridge(t)
	// What the one-shot keygen service leaves in the `keys` volume.
	keysDir := generateKeys(t, bin, filepath.Join(t.TempDir(), "keys"))

	dotenv := readDotEnv(t, filepath.Join(dir, ".env"))
	for name, changed := range sharedComposeValues {
		if dotenv[name] == "" || dotenv[name] == changed {
			t.Errorf(".env: want %s defined, and not as %q (the test's changed value)", name, changed)
		}
	}
	readme := string(readFile(t, "deploy/compose/README.md"))
	for _, u := range dexUsers {
		if !strings.Contains(readme, "`"+u.password+"`") {
			t.Errorf("compose/README.md does not give %s's password %s", u.name, u.password)
		}
	}

	tests := []struct {
		name      string
		overrides map[string]string
	}{
		{"as shipped", nil},
		{"every shared value changed in one place", sharedComposeValues},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadCompose(t, dir, tt.overrides)
			s := newComposeStack(t, p, keysDir)
			if tt.overrides != nil {
				// Each changed value must reach the bridge; the checks
				// below make every other service agree with the bridge.
				got := map[string]string{
					"BRIDGE_PUBLIC_URL":  s.bridgeCfg.PublicURL,
					"REGISTRY_SERVICE":   s.bridgeCfg.Token.Service,
					"TOKEN_ISSUER":       s.bridgeCfg.Token.Issuer,
					"DEX_ISSUER":         s.bridgeCfg.OIDC.Issuer,
					"OIDC_CLIENT_ID":     s.bridgeCfg.OIDC.ClientID,
					"OIDC_CLIENT_SECRET": s.bridgeCfg.OIDC.ClientSecret,
				}
				for _, name := range slices.Sorted(maps.Keys(tt.overrides)) {
					if got[name] != tt.overrides[name] {
						t.Errorf("changing %s in .env does not reach the bridge: it has %q", name, got[name])
					}
				}
			}
			t.Run("bridge config check", func(t *testing.T) { s.checkBridge(t, bin) })
			t.Run("registry", s.checkRegistry)
			t.Run("dex", s.checkDex)
			t.Run("redis", s.checkRedis)
			t.Run("keys", s.checkKeys)
			t.Run("access rules", s.checkAccess)
		})
	}
}

// loadCompose loads docker-compose.yml the way `docker compose` does:
// .env in the project directory, with overrides taking precedence as the
// shell environment would. The machine's own environment is not used.
func loadCompose(t *testing.T, dir string, overrides map[string]string) *types.Project {
	t.Helper()
	var env []string
	for k, v := range overrides {
		env = append(env, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(env),
		cli.WithEnvFiles(filepath.Join(dir, ".env")),
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker compose would reject the file: %v", err)
	}
	return p
}

// readDotEnv reads KEY=VALUE lines.
func readDotEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf(".env: %q is not KEY=VALUE", line)
		}
		env[k] = v
	}
	return env
}

// composeStack is one loaded compose project with its services resolved.
type composeStack struct {
	p                                  *types.Project
	keysDir                            string
	volumeDirs                         map[string]string // named volume → its stand-in directory
	bridge, registry, dex, redis, keys types.ServiceConfig
	bridgeEnv                          map[string]string
	bridgeMounts                       mounts
	bridgeConfigFile                   string // on this machine
	bridgeCfg                          bridgeConfig
	bridgeListenPort                   int
}

func newComposeStack(t *testing.T, p *types.Project, keysDir string) *composeStack {
	t.Helper()
	s := &composeStack{p: p, keysDir: keysDir, volumeDirs: map[string]string{}}
	for _, name := range []string{"bridge", "registry", "dex", "redis", "keys"} {
		svc, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %q: %v", name, err)
		}
		switch name {
		case "bridge":
			s.bridge = svc
		case "registry":
			s.registry = svc
		case "dex":
			s.dex = svc
		case "redis":
			s.redis = svc
		case "keys":
			s.keys = svc
		}
	}
	s.bridgeEnv = serviceEnv(t, s.bridge)
	s.bridgeMounts = s.mounts(t, s.bridge)
	configPath := flagValue(s.bridge.Command, "--config")
	if configPath == "" {
		configPath = s.bridgeEnv["BRIDGE_CONFIG"]
	}
	if configPath == "" {
		t.Fatal("bridge: no --config in command and no BRIDGE_CONFIG")
	}
	file, ok := s.bridgeMounts.hostPath(configPath)
	if !ok {
		t.Fatalf("bridge: config %s is not mounted into the container", configPath)
	}
	s.bridgeConfigFile = file
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("bridge config: %v", err)
	}
	s.bridgeCfg = parseBridgeConfig(t, data, s.bridgeEnv)
	s.bridgeListenPort = listenPort(t, s.bridgeCfg.Listen)
	return s
}

// mounts maps a service's volumes onto this machine: binds to their
// sources, the `keys` volume to the generated keys, other named volumes to
// empty directories.
func (s *composeStack) mounts(t *testing.T, svc types.ServiceConfig) mounts {
	t.Helper()
	var ms mounts
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeBind:
			ms = append(ms, mount{Target: v.Target, Source: v.Source, Origin: "bind " + v.Source})
		case types.VolumeTypeVolume:
			if _, ok := s.p.Volumes[v.Source]; !ok {
				t.Errorf("service %s: volume %q is not declared under volumes:", svc.Name, v.Source)
			}
			d, ok := s.volumeDirs[v.Source]
			if !ok {
				d = t.TempDir()
				if v.Source == "keys" {
					d = s.keysDir
				}
				s.volumeDirs[v.Source] = d
			}
			ms = append(ms, mount{Target: v.Target, Source: d, Origin: "volume " + v.Source})
		default:
			t.Errorf("service %s: unexpected %s mount at %s", svc.Name, v.Type, v.Target)
		}
	}
	return ms
}

// serviceEnv returns a service's environment; a variable without a value
// would come from the shell at `up` time, which a shared value must not.
func serviceEnv(t *testing.T, svc types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v == nil {
			t.Errorf("service %s: environment %s has no value", svc.Name, k)
			continue
		}
		env[k] = *v
	}
	return env
}

// flagValue returns the value after flag in a command line.
func flagValue(cmd []string, flag string) string {
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// publishedFor returns the host port (and host IP) publishing the
// service's container port target.
func publishedFor(svc types.ServiceConfig, target int) (hostIP string, port int, ok bool) {
	for _, p := range svc.Ports {
		if int(p.Target) == target {
			n, err := strconv.Atoi(p.Published)
			if err == nil {
				return p.HostIP, n, true
			}
		}
	}
	return "", 0, false
}

// loopback reports whether a host name reaches this machine from a browser
// or a docker client on it.
func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasSuffix(host, ".localhost")
}

// checkBridge runs `bridge config check` on the bridge's config with the
// container's environment and its mounted paths mapped here, and checks
// how browsers and clients reach it.
func (s *composeStack) checkBridge(t *testing.T, bin string) {
	data, err := os.ReadFile(s.bridgeConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	mapped := filepath.Join(t.TempDir(), "bridge.yaml")
	writeFile(t, mapped, rewritePaths(t, data, s.bridgeMounts))
	checkBridgeConfig(t, bin, mapped, s.bridgeEnv)

	if host, _, _ := strings.Cut(s.bridgeCfg.Listen, ":"); host != "0.0.0.0" && host != "" {
		t.Errorf("bridge listen %q: in a container it must listen on all interfaces", s.bridgeCfg.Listen)
	}
	host, port := urlHostPort(t, s.bridgeCfg.PublicURL)
	hostIP, published, ok := publishedFor(s.bridge, s.bridgeListenPort)
	switch {
	case !ok:
		t.Errorf("bridge: listen port %d is not published", s.bridgeListenPort)
	case published != port:
		t.Errorf("bridge: public_url %s uses port %d, but the listen port is published as %d", s.bridgeCfg.PublicURL, port, published)
	case hostIP == "127.0.0.1" && !loopback(host):
		t.Errorf("bridge: public_url host %q cannot reach a port published on 127.0.0.1 only", host)
	}
	if s.bridge.Build == nil || s.bridge.Build.Target != "runtime" {
		t.Errorf("bridge: want build target runtime of the Dockerfile, got %+v", s.bridge.Build)
	}
	if !s.bridge.ReadOnly {
		t.Error("bridge: want read_only: true (it writes nothing)")
	}
	if !slices.Contains(s.bridge.CapDrop, "ALL") {
		t.Error("bridge: want cap_drop: [ALL]")
	}
}

func (s *composeStack) checkRegistry(t *testing.T) {
	env := serviceEnv(t, s.registry)
	ms := s.mounts(t, s.registry)
	configPath := registryConfigPath
	if n := len(s.registry.Command); n > 0 {
		configPath = s.registry.Command[n-1]
	}
	file, ok := ms.hostPath(configPath)
	if !ok {
		t.Fatalf("registry: %s is not mounted", configPath)
	}
	cfg := parseRegistryConfig(t, file, env)

	token, ok := cfg.Auth["token"]
	if !ok || len(cfg.Auth) != 1 {
		t.Fatalf("registry: want exactly auth.token, got %v", slices.Collect(maps.Keys(cfg.Auth)))
	}
	want := map[string]string{
		"realm":   strings.TrimSuffix(s.bridgeCfg.PublicURL, "/") + "/token",
		"service": s.bridgeCfg.Token.Service,
		"issuer":  s.bridgeCfg.Token.Issuer,
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got, _ := token[k].(string); got != want[k] {
			t.Errorf("registry auth.token.%s = %q, bridge says %q", k, got, want[k])
		}
	}
	bundle, _ := token["rootcertbundle"].(string)
	regCert, ok := ms.hostPath(bundle)
	if !ok {
		t.Fatalf("registry: rootcertbundle %s is not mounted", bundle)
	}
	bridgeCert, ok := s.bridgeMounts.hostPath(s.bridgeCfg.Token.CertificateFile)
	if !ok {
		t.Fatalf("bridge: certificate_file %s is not mounted", s.bridgeCfg.Token.CertificateFile)
	}
	if regCert != bridgeCert {
		t.Errorf("registry rootcertbundle %s (%s) is not the bridge's certificate_file %s (%s)", bundle, regCert, s.bridgeCfg.Token.CertificateFile, bridgeCert)
	}

	// Clients reach the registry by the name in the tokens.
	svcHost, svcPort := hostPort(t, s.bridgeCfg.Token.Service)
	addrPort := listenPort(t, "0.0.0.0"+cfg.HTTP.Addr)
	_, published, ok := publishedFor(s.registry, addrPort)
	if !ok {
		t.Fatalf("registry: http.addr %s is not published", cfg.HTTP.Addr)
	}
	if svcPort != published || !loopback(svcHost) {
		t.Errorf("token.service %q: want the registry as clients on this machine reach it (localhost:%d)", s.bridgeCfg.Token.Service, published)
	}
	dependsOnKeys(t, s.registry)
}

// parseRegistryConfig parses file with distribution's own parser, with
// env as the only REGISTRY_* variables (they override the file).
func parseRegistryConfig(t *testing.T, file string, env map[string]string) *configuration.Configuration {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "REGISTRY_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := configuration.Parse(f)
	if err != nil {
		t.Fatalf("registry config: distribution rejects it: %v", err)
	}
	return cfg
}

// dependsOnKeys checks that svc waits for the one-shot key generation.
func dependsOnKeys(t *testing.T, svc types.ServiceConfig) {
	t.Helper()
	if d, ok := svc.DependsOn["keys"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("%s: want depends_on keys: condition: service_completed_successfully", svc.Name)
	}
}

// dexConfig is the part of Dex's config the bridge depends on.
type dexConfig struct {
	Issuer  string `yaml:"issuer"`
	Storage struct {
		Type   string `yaml:"type"`
		Config struct {
			File string `yaml:"file"`
		} `yaml:"config"`
	} `yaml:"storage"`
	Web struct {
		HTTP string `yaml:"http"`
	} `yaml:"web"`
	StaticClients []struct {
		ID           string   `yaml:"id"`
		IDEnv        string   `yaml:"idEnv"`
		Secret       string   `yaml:"secret"`
		SecretEnv    string   `yaml:"secretEnv"`
		RedirectURIs []string `yaml:"redirectURIs"`
	} `yaml:"staticClients"`
	EnablePasswordDB bool `yaml:"enablePasswordDB"`
	StaticPasswords  []struct {
		Email             string   `yaml:"email"`
		Username          string   `yaml:"username"`
		PreferredUsername string   `yaml:"preferredUsername"`
		UserID            string   `yaml:"userID"`
		Hash              string   `yaml:"hash"`
		Groups            []string `yaml:"groups"`
	} `yaml:"staticPasswords"`
}

// renderDexConfig renders Dex's config as the Dex image's entrypoint does
// (gomplate, a superset of text/template) with the two functions the file
// uses; any other function is an error here, so the file stays checkable.
func renderDexConfig(t *testing.T, file string, env map[string]string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	funcs := template.FuncMap{
		"getenv": func(name string, def ...string) string {
			if v := env[name]; v != "" {
				return v
			}
			if len(def) > 0 {
				return def[0]
			}
			return ""
		},
		"required": func(args ...any) (any, error) {
			v := args[len(args)-1]
			if v == nil || v == "" {
				return nil, fmt.Errorf("required: %v", args[:len(args)-1])
			}
			return v, nil
		},
	}
	tmpl, err := template.New(filepath.Base(file)).Option("missingkey=error").Funcs(funcs).Parse(string(data))
	if err != nil {
		t.Fatalf("dex config template: %v", err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]any{"Env": env}); err != nil {
		t.Fatalf("dex config template: %v", err)
	}
	return out.Bytes()
}

func (s *composeStack) checkDex(t *testing.T) {
	env := serviceEnv(t, s.dex)
	ms := s.mounts(t, s.dex)
	if len(s.dex.Command) < 3 || s.dex.Command[0] != "dex" || s.dex.Command[1] != "serve" {
		t.Fatalf("dex: want command [dex serve FILE], got %v", s.dex.Command)
	}
	configPath := s.dex.Command[len(s.dex.Command)-1]
	if !strings.HasSuffix(configPath, ".yaml") {
		t.Errorf("dex: the image only templates *.yaml, *.tpl and *.tmpl configs; got %s", configPath)
	}
	file, ok := ms.hostPath(configPath)
	if !ok {
		t.Fatalf("dex: %s is not mounted", configPath)
	}
	var dex dexConfig
	dec := yaml.NewDecoder(bytes.NewReader(renderDexConfig(t, file, env)))
	if err := dec.Decode(&dex); err != nil {
		t.Fatalf("dex config: %v", err)
	}

	if dex.Issuer != s.bridgeCfg.OIDC.Issuer {
		t.Errorf("dex issuer %q, bridge oidc.issuer %q", dex.Issuer, s.bridgeCfg.OIDC.Issuer)
	}
	// The bridge container and the browser on the host both use the issuer URL.
	host, port := urlHostPort(t, dex.Issuer)
	names := []string{s.dex.Name}
	for _, n := range s.dex.Networks {
		if n != nil {
			names = append(names, n.Aliases...)
		}
	}
	if !slices.Contains(names, host) {
		t.Errorf("dex issuer host %q: the bridge container cannot resolve it (service name or aliases: %s)", host, quoteList(names))
	}
	if !loopback(host) {
		t.Errorf("dex issuer host %q: a browser on the host does not resolve it to 127.0.0.1 (use a *.localhost name)", host)
	}
	httpPort := listenPort(t, dex.Web.HTTP)
	if httpPort != port {
		t.Errorf("dex listens on %d, its issuer URL says %d", httpPort, port)
	}
	if _, published, ok := publishedFor(s.dex, httpPort); !ok || published != port {
		t.Errorf("dex: port %d must be published as %d for browsers", httpPort, port)
	}
	if _, ok := ms.find(dex.Storage.Config.File); dex.Storage.Type == "sqlite3" && !ok {
		t.Errorf("dex: sqlite3 file %s is not on a volume; logins and refresh tokens are lost on restart", dex.Storage.Config.File)
	}

	// The bridge's client.
	found := false
	for _, c := range dex.StaticClients {
		id, secret := c.ID, c.Secret
		if c.IDEnv != "" {
			id = env[c.IDEnv]
		}
		if c.SecretEnv != "" {
			secret = env[c.SecretEnv]
		}
		if id != s.bridgeCfg.OIDC.ClientID {
			continue
		}
		found = true
		if secret != s.bridgeCfg.OIDC.ClientSecret {
			t.Errorf("dex client %q: secret differs from the bridge's oidc.client_secret", id)
		}
		callback := strings.TrimSuffix(s.bridgeCfg.PublicURL, "/") + "/callback"
		if !slices.Contains(c.RedirectURIs, callback) {
			t.Errorf("dex client %q: redirectURIs %v lack the bridge's %s", id, c.RedirectURIs, callback)
		}
	}
	if !found {
		t.Errorf("dex has no static client %q (the bridge's oidc.client_id)", s.bridgeCfg.OIDC.ClientID)
	}

	// Dex sends groups and preferred_username only for the groups and
	// profile scopes.
	for _, sc := range []string{"openid", "groups", "profile"} {
		if len(s.bridgeCfg.OIDC.Scopes) > 0 && !slices.Contains(s.bridgeCfg.OIDC.Scopes, sc) {
			t.Errorf("bridge oidc.scopes %v lack %q", s.bridgeCfg.OIDC.Scopes, sc)
		}
	}
	if c := s.bridgeCfg.OIDC.GroupsClaim; c != "" && c != "groups" {
		t.Errorf("bridge oidc.groups_claim %q: Dex's claim is groups", c)
	}

	// Two users in different groups, with the documented passwords.
	if !dex.EnablePasswordDB {
		t.Error("dex: enablePasswordDB must be true for staticPasswords")
	}
	if len(dex.StaticPasswords) != len(dexUsers) {
		t.Fatalf("dex has %d static users, want %d", len(dex.StaticPasswords), len(dexUsers))
	}
	for i, u := range dexUsers {
		p := dex.StaticPasswords[i]
		if p.Username != u.name || p.PreferredUsername != u.name {
			t.Errorf("dex user %d: username %q preferredUsername %q, want %q", i, p.Username, p.PreferredUsername, u.name)
		}
		if !slices.Equal(p.Groups, u.groups) {
			t.Errorf("dex user %s: groups %v, want %v", u.name, p.Groups, u.groups)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(p.Hash), []byte(u.password)); err != nil {
			t.Errorf("dex user %s: hash does not match the documented password: %v", u.name, err)
		}
		if p.UserID == "" || p.Email == "" {
			t.Errorf("dex user %s: userID and email are required by Dex", u.name)
		}
	}
}

func (s *composeStack) checkRedis(t *testing.T) {
	host, port := urlHostPort(t, s.bridgeCfg.Store.Redis.URL)
	names := []string{s.redis.Name}
	for _, n := range s.redis.Networks {
		if n != nil {
			names = append(names, n.Aliases...)
		}
	}
	if !slices.Contains(names, host) {
		t.Errorf("bridge store.redis.url host %q is not the redis service (%s)", host, quoteList(names))
	}
	cmd := strings.Join(s.redis.Command, " ")
	redisPort := 6379
	if p := flagValue(s.redis.Command, "--port"); p != "" {
		redisPort, _ = strconv.Atoi(p)
	}
	if port != redisPort {
		t.Errorf("bridge store.redis.url port %d, redis listens on %d", port, redisPort)
	}
	if !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis: want AOF persistence (--appendonly yes), command %q", cmd)
	}
	if _, ok := s.mounts(t, s.redis).find("/data"); !ok {
		t.Error("redis: /data (the AOF) is not on a volume")
	}
	if s.redis.HealthCheck == nil || len(s.redis.HealthCheck.Test) == 0 {
		t.Error("redis: no healthcheck for the bridge to wait on")
	}
	if d, ok := s.bridge.DependsOn["redis"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Error("bridge: want depends_on redis: condition: service_healthy")
	}
}

// checkKeys follows the key files from the one-shot keygen service to the
// bridge and the registry.
func (s *composeStack) checkKeys(t *testing.T) {
	if s.keys.Build == nil || s.keys.Build.Target != "keygen" {
		t.Fatalf("keys: want build target keygen of the Dockerfile, got %+v", s.keys.Build)
	}
	if s.keys.Build.Context != testenv.RepoRoot(t) {
		t.Errorf("keys: build context %s, want the repository root", s.keys.Build.Context)
	}
	_, stages := parseDockerfile(t, readFile(t, "Dockerfile"))
	out := keygenOutDir(t, stage(t, stages, "keygen"))
	km, ok := s.mounts(t, s.keys).find(out)
	if !ok || km.Target != out || !strings.HasPrefix(km.Origin, "volume ") {
		t.Fatalf("keys: the keygen image writes to %s, which must be a named volume of the service", out)
	}
	for _, f := range []struct{ key, path string }{
		{"token.signing_key_file", s.bridgeCfg.Token.SigningKeyFile},
		{"token.certificate_file", s.bridgeCfg.Token.CertificateFile},
		{"oidc.encryption_key_file", s.bridgeCfg.OIDC.EncryptionKeyFile},
	} {
		m, ok := s.bridgeMounts.find(f.path)
		if !ok || m.Origin != km.Origin {
			t.Errorf("bridge %s %s: not on the %s the keygen service writes", f.key, f.path, km.Origin)
		}
	}
	for _, v := range s.bridge.Volumes {
		if v.Type == types.VolumeTypeVolume && "volume "+v.Source == km.Origin && !v.ReadOnly {
			t.Error("bridge: mount the keys volume read-only")
		}
	}
	dependsOnKeys(t, s.bridge)
	if s.keys.Restart != "" && s.keys.Restart != "no" {
		t.Errorf("keys: a one-shot must not restart, got restart %q", s.keys.Restart)
	}
}

// keygenOutDir returns the directory the keygen stage's entrypoint passes
// to `bridge keys generate --out`.
func keygenOutDir(t *testing.T, st dockerfileStage) string {
	t.Helper()
	ep, ok := st.last("ENTRYPOINT")
	if !ok {
		t.Fatal("Dockerfile keygen stage: no ENTRYPOINT")
	}
	var argv []string
	if err := json.Unmarshal([]byte(ep), &argv); err != nil {
		t.Fatalf("Dockerfile keygen ENTRYPOINT must be exec form: %v", err)
	}
	script := strings.FieldsFunc(strings.Join(argv, " "), func(r rune) bool {
		return r == ' ' || r == ';' || r == '"' || r == '\''
	})
	out := flagValue(script, "--out")
	if out == "" || !path.IsAbs(out) {
		t.Fatalf("Dockerfile keygen ENTRYPOINT does not run keys generate --out DIR: %v", argv)
	}
	return out
}

// checkAccess checks that the example users' groups mean something in the
// bridge's access rules.
func (s *composeStack) checkAccess(t *testing.T) {
	checkPolicy(t, s.bridgeCfg.Access, []policyCase{
		{"alice", dexUsers[0].groups, "repository:team-b/app:pull,push,delete", "delete,pull,push"},
		{"bob", dexUsers[1].groups, "repository:team-a/app:pull,push", "pull,push"},
		{"bob", dexUsers[1].groups, "repository:team-b/app:pull,push", ""},
		{"bob", dexUsers[1].groups, "repository:users/bob/tool:push", "push"},
	})
}
