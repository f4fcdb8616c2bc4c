package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// Names every test world uses.
const (
	service = "registry.test"       // token "aud", registry auth.token.service
	issuer  = "registry-bridge-e2e" // token "iss", registry auth.token.issuer
)

// TestMain removes the bridge binary that testenv.BuildBridge builds once
// for the package's tests.
func TestMain(m *testing.M) { testenv.Main(m) }

// world is one bridge deployment: a Redis, a signing key pair, a config
// file and a running "bridge serve".
type world struct {
	bin    string // the bridge binary
	home   string // HOME for the bridge's sub-commands
	redis  string // "127.0.0.1:PORT"
	keys   string // directory with signing.key and signing.crt
	config string // the first server's config file
	url    string // the first server's public URL, "http://localhost:PORT"
	extra  string // appended to every config file
}

// worldOptions varies a world.
type worldOptions struct {
	// alg is the signing key algorithm for "keys generate --alg"; empty
	// means the bridge's default.
	alg string
	// extra is appended to the config file (more top-level sections).
	extra string
}

// newWorld starts Redis, generates keys, writes the config and starts
// "bridge serve", returning once /readyz answers 200.
func newWorld(t testing.TB, opts worldOptions) *world {
	t.Helper()
	testenv.SkipUnlessE2E(t)
	w := &world{bin: testenv.BuildBridge(t), home: t.TempDir(), redis: testenv.Redis(t), keys: t.TempDir()}
	args := []string{"keys", "generate", "--out", w.keys}
	if opts.alg != "" {
		args = append(args, "--alg", opts.alg)
	}
	w.mustRun(t, args...)
	for _, f := range []string{"signing.key", "signing.crt"} {
		if _, err := os.Stat(filepath.Join(w.keys, f)); err != nil {
			t.Fatalf("keys generate did not write %s: %v", f, err)
		}
	}
	w.extra = opts.extra
	w.config, w.url = w.serve(t)
	return w
}

// serve writes a config file for a new server on a free port, sharing the
// world's Redis and keys, starts it, and returns its config file and URL.
func (w *world) serve(t testing.TB) (config, url string) {
	t.Helper()
	port := testenv.FreePort(t)
	url = fmt.Sprintf("http://localhost:%d", port)
	config = filepath.Join(t.TempDir(), "bridge.yaml")
	text := fmt.Sprintf(configTemplate, port, url, w.redis, issuer, service,
		filepath.Join(w.keys, "signing.key"), filepath.Join(w.keys, "signing.crt")) + testenv.ExampleAccess(t) + w.extra
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, testenv.Cmd{
		Name:     "bridge " + url,
		Path:     w.bin,
		Args:     []string{"serve", "--config", config},
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", port),
	})
	return config, url
}

// configTemplate is the bridge configuration of docs/reference.md without the
// oidc section, so the bridge runs without browser login, and with the
// access rules of deploy/examples/bridge.yaml appended. Arguments: port,
// public URL, Redis address, issuer, service, key file, certificate file.
const configTemplate = `listen: 127.0.0.1:%d
public_url: %s
store:
  redis:
    url: redis://%s/0
token:
  issuer: %s
  service: %s
  lifetime: 5m
  signing_key_file: %s
  certificate_file: %s
passwords:
  default_lifetime: 720h
  max_lifetime: 2160h
revalidation:
  every: 15m
`

// tokenAuth is the registry configuration that trusts the world's bridge.
func (w *world) tokenAuth() testenv.TokenAuth {
	return testenv.TokenAuth{
		Realm:          w.url + "/token",
		Service:        service,
		Issuer:         issuer,
		RootCertBundle: filepath.Join(w.keys, "signing.crt"),
	}
}

// registries are the registries every test runs against.
var registries = []struct {
	name  string
	start func(testing.TB, testenv.TokenAuth) string
}{
	{"v3", testenv.RegistryV3},
	{"2.8", testenv.Registry28},
}

// run runs a bridge sub-command with the world's HOME and returns its
// stdout and stderr separately. testenv.Run bounds it with
// testenv.CommandTimeout and kills its process group at the end.
func (w *world) run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var e strings.Builder
	stdout, err = testenv.Run(ctx, testenv.Command{Path: w.bin, Args: args, Env: []string{"HOME=" + w.home}, Stderr: &e})
	return stdout, e.String(), err
}

// mustRun is run that fails the test on a non-zero exit.
func (w *world) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := w.run(t.Context(), args...)
	if err != nil {
		t.Fatalf("bridge %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// password describes an app password to mint with "passwords create".
type password struct {
	user     string
	groups   string // comma-separated
	name     string // unique per world, to find the id again
	readOnly bool
}

// mint creates the app password p with the CLI and returns the secret.
func (w *world) mint(t testing.TB, p password) string {
	t.Helper()
	args := []string{"passwords", "create", "--config", w.config, "--user", p.user, "--name", p.name}
	if p.groups != "" {
		args = append(args, "--groups", p.groups)
	}
	if p.readOnly {
		args = append(args, "--read-only")
	}
	out := w.mustRun(t, args...)
	secret, ok := strings.CutSuffix(out, "\n")
	if !ok || secret == "" || strings.ContainsAny(secret, " \n\t") {
		t.Fatalf("passwords create printed %q on stdout, want only the password and a newline", out)
	}
	return secret
}

// passwordID finds the id of user's password called name with
// "passwords list --json".
func (w *world) passwordID(t testing.TB, user, name string) string {
	t.Helper()
	out := w.mustRun(t, "passwords", "list", "--config", w.config, "--user", user, "--json")
	var list []struct {
		ID   string `json:"id"`
		User string `json:"user"`
		Name string `json:"name"`
	}
	if err := jsonUnmarshal(out, &list); err != nil {
		t.Fatalf("passwords list --json: %v\n%s", err, out)
	}
	for _, p := range list {
		if p.Name == name && p.User == user {
			if p.ID == "" {
				t.Fatalf("passwords list --json: password %q has no id:\n%s", name, out)
			}
			return p.ID
		}
	}
	t.Fatalf("passwords list --json has no password %q of %s:\n%s", name, user, out)
	return ""
}

// revoke revokes one password by id with the CLI.
func (w *world) revoke(t testing.TB, id string) {
	t.Helper()
	w.mustRun(t, "passwords", "revoke", "--config", w.config, id)
}
