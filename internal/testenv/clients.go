package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Install hints for the client tools.
const (
	skopeoHint = "scripts/install-deps.sh (or: apt-get install -y skopeo)"
	craneHint  = "make deps (scripts/install-deps.sh pins its version)"
	regctlHint = "make deps (scripts/install-deps.sh pins its version)"
	orasHint   = "make deps (scripts/install-deps.sh pins its version)"
)

// Client is a registry client command-line tool (skopeo, crane, regctl or
// oras) with its own HOME and credential files in a temporary directory. It
// talks plain HTTP to the registry. Every method runs the real binary once
// and returns its combined output; the error wraps ErrExit if the tool
// failed. A Client is safe for concurrent use, but concurrent logins to the
// same registry overwrite each other.
type Client struct {
	// Name is the tool's name: "skopeo", "crane", "regctl" or "oras".
	Name string
	// LoginChecks reports whether Login makes the registry verify the
	// credentials. crane's "auth login" only writes its config file, so
	// wrong credentials show only on the next command.
	LoginChecks bool

	path string
	dir  string
	env  []string
	args toolArgs

	mu       sync.Mutex
	prepared map[string]bool // hosts for which prepare has run
}

// toolArgs builds a tool's command lines. policy is the skopeo signature
// policy file; the other tools ignore it.
type toolArgs struct {
	// prepare, if set, returns a command to run once per registry host
	// before any other (regctl's "registry set --tls disabled").
	prepare func(host string) []string
	// login reads the password from stdin.
	login func(host, user string) []string
	push  func(layoutDir, tag, ref string) []string
	pull  func(ref, layoutDir, tag string) []string
}

// Skopeo returns a skopeo client. Its auth file is REGISTRY_AUTH_FILE in a
// temporary directory, and it copies with an accept-anything signature
// policy of its own. As root, skopeo still writes its blob info cache to
// /var/lib/containers/cache; the tool has no flag to move it.
func Skopeo(t testing.TB) *Client {
	t.Helper()
	c := newClient(t, "skopeo", skopeoHint)
	c.LoginChecks = true
	policy := filepath.Join(c.dir, "policy.json")
	registries := filepath.Join(c.dir, "registries.conf")
	writeFile(t, policy, `{"default":[{"type":"insecureAcceptAnything"}]}`)
	writeFile(t, registries, "unqualified-search-registries = []\n")
	c.env = append(c.env,
		"REGISTRY_AUTH_FILE="+filepath.Join(c.dir, "auth.json"),
		"CONTAINERS_REGISTRIES_CONF="+registries,
		"XDG_RUNTIME_DIR="+c.dir,
	)
	c.args = toolArgs{
		login: func(host, user string) []string {
			return []string{"login", "--tls-verify=false", "--username", user, "--password-stdin", host}
		},
		push: func(layoutDir, tag, ref string) []string {
			return []string{"--policy", policy, "copy", "--dest-tls-verify=false", "oci:" + layoutDir + ":" + tag, "docker://" + ref}
		},
		pull: func(ref, layoutDir, tag string) []string {
			return []string{"--policy", policy, "copy", "--src-tls-verify=false", "docker://" + ref, "oci:" + layoutDir + ":" + tag}
		},
	}
	return c
}

// Crane returns a crane (go-containerregistry) client with DOCKER_CONFIG in
// a temporary directory. Its Login checks nothing (LoginChecks is false).
func Crane(t testing.TB) *Client {
	t.Helper()
	c := newClient(t, "crane", craneHint)
	c.args = toolArgs{
		login: func(host, user string) []string {
			return []string{"auth", "login", host, "--username", user, "--password-stdin"}
		},
		push: func(layoutDir, _, ref string) []string {
			return []string{"push", "--insecure", layoutDir, ref}
		},
		pull: func(ref, layoutDir, _ string) []string {
			return []string{"pull", "--insecure", "--format", "oci", ref, layoutDir}
		},
	}
	return c
}

// Regctl returns a regctl (regclient) client whose ~/.regctl lives in a
// temporary directory; each registry host is set to plain HTTP before its
// first use. Its Login pings /v2/ with the credentials.
func Regctl(t testing.TB) *Client {
	t.Helper()
	c := newClient(t, "regctl", regctlHint)
	c.LoginChecks = true
	c.args = toolArgs{
		prepare: func(host string) []string {
			return []string{"registry", "set", "--tls", "disabled", host}
		},
		login: func(host, user string) []string {
			return []string{"registry", "login", host, "--user", user, "--pass-stdin"}
		},
		push: func(layoutDir, tag, ref string) []string {
			return []string{"image", "copy", "ocidir://" + layoutDir + ":" + tag, ref}
		},
		pull: func(ref, layoutDir, tag string) []string {
			return []string{"image", "copy", ref, "ocidir://" + layoutDir + ":" + tag}
		},
	}
	return c
}

// Oras returns an oras client with DOCKER_CONFIG in a temporary directory.
// Its Login pings /v2/ with the credentials.
func Oras(t testing.TB) *Client {
	t.Helper()
	c := newClient(t, "oras", orasHint)
	c.LoginChecks = true
	c.args = toolArgs{
		login: func(host, user string) []string {
			return []string{"login", "--plain-http", "--username", user, "--password-stdin", host}
		},
		push: func(layoutDir, tag, ref string) []string {
			return []string{"cp", "--from-oci-layout", "--to-plain-http", layoutDir + ":" + tag, ref}
		},
		pull: func(ref, layoutDir, tag string) []string {
			return []string{"cp", "--from-plain-http", "--to-oci-layout", ref, layoutDir + ":" + tag}
		},
	}
	return c
}

// Tools are the constructors of every client tool, in the order skopeo,
// crane, regctl, oras: a test that needs a second, fresh client (empty
// credential store) of the same tool calls the constructor again.
var Tools = []func(testing.TB) *Client{Skopeo, Crane, Regctl, Oras}

// Clients returns one client of every tool in Tools.
func Clients(t testing.TB) []*Client {
	t.Helper()
	clients := make([]*Client, 0, len(Tools))
	for _, tool := range Tools {
		clients = append(clients, tool(t))
	}
	return clients
}

func newClient(t testing.TB, name, hint string) *Client {
	t.Helper()
	dir := t.TempDir()
	return &Client{
		Name: name,
		path: Tool(t, name, hint),
		dir:  dir,
		env: []string{
			"HOME=" + dir,
			"DOCKER_CONFIG=" + filepath.Join(dir, ".docker"),
			"XDG_CONFIG_HOME=" + filepath.Join(dir, ".config"),
			"TMPDIR=" + dir,
		},
		prepared: map[string]bool{},
	}
}

// Login stores user and password for the registry host ("localhost:PORT").
// For the tools whose LoginChecks is true, it also checks them against the
// registry and fails if they are refused.
func (c *Client) Login(ctx context.Context, host, user, password string) (string, error) {
	return c.run(ctx, "login", host, password, c.args.login(host, user))
}

// Push copies the image from its OCI layout to ref ("host/repo:tag"),
// with the credentials of the last Login to that host, if any.
func (c *Client) Push(ctx context.Context, img OCIImage, ref string) (string, error) {
	return c.run(ctx, "push", refHost(ref), "", c.args.push(img.Dir, img.Tag, ref))
}

// Pull copies the image ref ("host/repo:tag") into a new OCI image layout
// at layoutDir, tagged "v1"; LayoutManifests reads back what arrived.
func (c *Client) Pull(ctx context.Context, ref, layoutDir string) (string, error) {
	return c.run(ctx, "pull", refHost(ref), "", c.args.pull(ref, layoutDir, "v1"))
}

// Exec runs the tool with args, as typed after its name on a command line,
// in the client's environment (HOME, credential and configuration files);
// stdin, if not empty, is its input. It adds no flags: for skopeo, neither
// the signature policy that Push and Pull pass nor any TLS setting.
func (c *Client) Exec(ctx context.Context, stdin string, args ...string) (string, error) {
	out, err := Run(ctx, Command{Path: c.path, Args: args, Env: c.env, Stdin: stdin})
	if err != nil {
		return out, fmt.Errorf("testenv: %s: %w", c.Name, err)
	}
	return out, nil
}

// run runs one command line of the tool; op names it in errors.
func (c *Client) run(ctx context.Context, op, host, stdin string, args []string) (string, error) {
	if out, err := c.prepare(ctx, host); err != nil {
		return out, err
	}
	out, err := Run(ctx, Command{Path: c.path, Args: args, Env: c.env, Stdin: stdin})
	if err != nil {
		return out, fmt.Errorf("testenv: %s %s: %w", c.Name, op, err)
	}
	return out, nil
}

// prepare runs the tool's per-host set-up command once per host.
func (c *Client) prepare(ctx context.Context, host string) (string, error) {
	if c.args.prepare == nil {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prepared[host] {
		return "", nil
	}
	out, err := Run(ctx, Command{Path: c.path, Args: c.args.prepare(host), Env: c.env})
	if err != nil {
		return out, fmt.Errorf("testenv: %s: prepare %s: %w", c.Name, host, err)
	}
	c.prepared[host] = true
	return out, nil
}

// refHost returns the registry host of a reference "host/repo:tag".
func refHost(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// UseIdentityToken stores token as the client's identity token for host
// (the "identitytoken" of Docker's config.json and containers' auth.json,
// what `docker login` keeps after an offline_token login): the client
// then asks the token endpoint with grant_type=refresh_token.
func (c *Client) UseIdentityToken(t testing.TB, host, token string) {
	t.Helper()
	doc := fmt.Sprintf(`{"auths":{%q:{"identitytoken":%q}}}`, host, token)
	if err := os.MkdirAll(filepath.Join(c.dir, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.dir, ".docker", "config.json"), doc)
	writeFile(t, filepath.Join(c.dir, "auth.json"), doc)
}

// Dir is the client's HOME: its credential and configuration files live
// under it (DOCKER_CONFIG is Dir()/.docker; skopeo's auth file is
// Dir()/auth.json).
func (c *Client) Dir() string { return c.dir }

// Setenv adds "KEY=value" entries to the client's environment; a key
// given again overrides the earlier value (PATH included).
func (c *Client) Setenv(kv ...string) { c.env = append(c.env, kv...) }
