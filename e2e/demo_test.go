package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/devidp"
	"github.com/registry-bridge/bridge/internal/testenv"
)

// demoStartTimeout bounds scripts/demo.sh from start to "demo: ready": two
// go builds (cached after the first) and three servers. A missing registry
// binary is built too, which takes minutes: scripts/install-deps.sh (make
// test) builds it first.
const demoStartTimeout = 5 * time.Minute

// demoReady is the line scripts/demo.sh prints once everything answers.
const demoReady = "demo: ready"

// demo is a running scripts/demo.sh (make demo) on free ports, with its
// work directory and binaries in temporary directories.
type demo struct {
	proc                            *testenv.Process
	dir                             string // DEMO_DIR
	bin                             string // DEMO_BIN_DIR: bridge and devidp
	idpPort, bridgePort, regPort    int
	banner                          string // stdout up to the ready line
	bridgeURL, idpURL, registryHost string
}

// startDemo runs scripts/demo.sh the way `make demo` does, with
// revalidation.every set to revalidate, and returns once it has
// printed its ready line.
func startDemo(t *testing.T, revalidate string) *demo {
	t.Helper()
	testenv.SkipUnlessE2E(t)
	root := testenv.RepoRoot(t)
	d := &demo{
		dir:        t.TempDir(),
		bin:        t.TempDir(),
		idpPort:    testenv.FreePort(t),
		bridgePort: testenv.FreePort(t),
		regPort:    testenv.FreePort(t),
	}
	d.bridgeURL = fmt.Sprintf("http://localhost:%d", d.bridgePort)
	d.idpURL = fmt.Sprintf("http://localhost:%d", d.idpPort)
	d.registryHost = fmt.Sprintf("localhost:%d", d.regPort)
	env := append(goEnv(t),
		"DEMO_DIR="+d.dir,
		"DEMO_BIN_DIR="+d.bin,
		"DEMO_IDP_PORT="+strconv.Itoa(d.idpPort),
		"DEMO_BRIDGE_PORT="+strconv.Itoa(d.bridgePort),
		"DEMO_REGISTRY_PORT="+strconv.Itoa(d.regPort),
		"DEMO_REVALIDATE_EVERY="+revalidate,
	)
	d.proc = testenv.Start(t, testenv.Cmd{
		Name: "scripts/demo.sh",
		Path: "/bin/bash",
		Args: []string{filepath.Join(root, "scripts", "demo.sh")},
		Env:  env,
	})
	t.Cleanup(func() {
		if t.Failed() {
			d.logComponents(t)
		}
	})
	d.banner = d.waitFor(t, demoReady, demoStartTimeout)
	return d
}

// logComponents logs the tail of each component's log in the demo's
// logs directory.
func (d *demo) logComponents(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(d.dir, "logs", "*.log"))
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		const tail = 8 << 10
		if len(b) > tail {
			b = b[len(b)-tail:]
		}
		t.Logf("demo: %s (tail):\n%s", filepath.Base(f), b)
	}
}

// waitFor polls the script's stdout until a line equals line, and returns
// the output up to it. It fails the test if the script exits first or time
// runs out. Polling a file a child writes; nothing to wait on.
func (d *demo) waitFor(t *testing.T, line string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		stdout, _ := d.proc.Output()
		if before, _, ok := strings.Cut(stdout+"\n", "\n"+line+"\n"); ok {
			return before
		}
		if exited, err := d.proc.Exited(); exited {
			_, stderr := d.proc.Output()
			t.Fatalf("scripts/demo.sh exited before %q: %v\n--- stdout ---\n%s\n--- stderr ---\n%s", line, err, stdout, stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("scripts/demo.sh did not print %q within %v", line, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// command returns the banner's command line that starts with prefix, as a
// person would copy it.
func (d *demo) command(t *testing.T, prefix string) string {
	t.Helper()
	for l := range strings.Lines(d.banner) {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("the demo's instructions have no command starting with %q:\n%s", prefix, d.banner)
	return ""
}

// usersFile is the devidp users file the demo runs with.
func (d *demo) usersFile() string { return filepath.Join(d.dir, "users.yaml") }

// goEnv returns the Go environment the script's go build needs: testenv
// gives processes a fresh HOME, which would otherwise mean an empty build
// cache and module cache, and a rebuild of everything.
func goEnv(t *testing.T) []string {
	t.Helper()
	keys := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOSUMDB", "GOFLAGS", "GOTOOLCHAIN", "GONOSUMDB", "GOPRIVATE"}
	out, err := exec.Command("go", append([]string{"env", "-json"}, keys...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var values map[string]string
	if err := json.Unmarshal(out, &values); err != nil {
		t.Fatalf("go env -json: %v", err)
	}
	var env []string
	for _, k := range keys {
		if v := values[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// TestDemo runs `make demo`'s script and checks what it prints, what it
// writes and what it starts, short of the browser login (browser_test.go
// does that): the printed users and commands match the files and ports,
// the bridge's config passes `bridge config check`, the image it builds
// is a valid OCI layout, the registry trusts the bridge's tokens, and
// Ctrl-C stops everything.
func TestDemo(t *testing.T) {
	d := startDemo(t, "30s")

	t.Run("instructions", func(t *testing.T) {
		img := filepath.Join(d.dir, "image")
		for _, want := range []string{
			"Open  " + d.bridgeURL + " ",
			"skopeo login --tls-verify=false -u alice " + d.registryHost + "\n",
			"skopeo copy --dest-tls-verify=false oci:" + img + ":v1 docker://" + d.registryHost + "/team-a/app:v1\n",
			"docker login " + d.registryHost + " -u alice\n",
			"docker push " + d.registryHost + "/team-a/app:v1\n",
			d.usersFile(),
			"Ctrl-C stops everything.",
		} {
			if !strings.Contains(d.banner, want) {
				t.Errorf("the instructions lack %q:\n%s", want, d.banner)
			}
		}
		cfg, err := devidp.LoadConfig(d.usersFile())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Issuer = d.idpURL
		if err := cfg.Validate(); err != nil {
			t.Errorf("users file: %v", err)
		}
		if len(cfg.Users) < 2 {
			t.Errorf("users file has %d users, want a few", len(cfg.Users))
		}
		// Every user is printed with the password that works and the groups they have.
		for _, u := range cfg.Users {
			groups := strings.Join(u.Groups, ", ")
			if groups == "" {
				groups = "(none)"
			}
			line := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(u.Username) + `\s+/ ` + regexp.QuoteMeta(u.Password) + `\s+groups: ` + regexp.QuoteMeta(groups) + `$`)
			if !line.MatchString(d.banner) {
				t.Errorf("the instructions do not show %s / %s with groups %s:\n%s", u.Username, u.Password, groups, d.banner)
			}
		}
		if want := d.bridgeURL + "/callback"; len(cfg.Clients) != 1 || len(cfg.Clients[0].RedirectURIs) != 1 || cfg.Clients[0].RedirectURIs[0] != want {
			t.Errorf("clients = %+v, want one with redirect URI %s", cfg.Clients, want)
		}
	})

	t.Run("bridge config checks", func(t *testing.T) {
		out, err := testenv.Run(t.Context(), testenv.Command{
			Path: filepath.Join(d.bin, "bridge"),
			Args: []string{"config", "check", "--config", filepath.Join(d.dir, "bridge.yaml")},
			Env:  []string{"HOME=" + t.TempDir()},
		})
		if err != nil {
			t.Errorf("bridge config check: %v\n%s", err, out)
		}
	})

	t.Run("image layout", func(t *testing.T) {
		dir := filepath.Join(d.dir, "image")
		// Every blob has its digest; the manifest, config and layer exist.
		digests, err := testenv.VerifyLayout(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(digests) != 1 {
			t.Fatalf("index.json lists %v, want one manifest", digests)
		}
		blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
		if err != nil {
			t.Fatal(err)
		}
		if len(blobs) != 3 {
			t.Errorf("%d blobs, want 3 (layer, config, manifest)", len(blobs))
		}
	})

	t.Run("registry trusts the bridge", func(t *testing.T) {
		// Anyone may pull public/**: an anonymous token for a repository that
		// does not exist gets 404 from the registry, not 401.
		const path = "/v2/public/nothing/tags/list"
		first := registryDo(t, http.MethodGet, d.registryHost, path, "")
		wantRealm := fmt.Sprintf(`realm="%s/token"`, d.bridgeURL)
		if first.status != http.StatusUnauthorized || !strings.Contains(first.challenge, wantRealm) {
			t.Fatalf("unauthenticated: %d %q, want 401 with %s", first.status, first.challenge, wantRealm)
		}
		status, tr := getToken(t, d.bridgeURL, url.Values{"service": {d.registryHost}, "scope": {"repository:public/nothing:pull"}}, "", "")
		if status != http.StatusOK {
			t.Fatalf("anonymous token: status %d", status)
		}
		if got := registryDo(t, http.MethodGet, d.registryHost, path, tr.Token); got.status != http.StatusNotFound {
			t.Errorf("with the bridge's token: %d %q, want 404 (accepted, no such repository)", got.status, got.challenge)
		}
	})

	t.Run("Ctrl-C stops everything", func(t *testing.T) {
		// A terminal's Ctrl-C sends SIGINT; a shell started with SIGINT
		// ignored (a background job) cannot trap it, so use SIGTERM there,
		// which the script handles the same way.
		sig := os.Signal(syscall.SIGINT)
		if signal.Ignored(os.Interrupt) {
			sig = syscall.SIGTERM
			t.Log("SIGINT is ignored in this process (and so in the script); sending SIGTERM")
		}
		if err := d.proc.Signal(sig); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		// 0: a stop that was asked for is a clean stop (make prints no
		// "Error 143"); a signal that killed the script would be an error.
		if err := d.proc.Wait(ctx); err != nil {
			t.Errorf("script: %v, want exit status 0 from its trap", err)
		}
		if _, stderr := d.proc.Output(); !strings.Contains(stderr, "demo: stopped") {
			t.Errorf("stderr lacks %q:\n%s", "demo: stopped", stderr)
		}
		for _, port := range []int{d.idpPort, d.bridgePort, d.regPort} {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				conn.Close()
				t.Errorf("port %d still answers after the script stopped", port)
			}
		}
	})
}

// TestDemoPinsTheRegistryOfInstallDeps keeps scripts/demo.sh building the
// same registry version as scripts/install-deps.sh, which make test uses.
func TestDemoPinsTheRegistryOfInstallDeps(t *testing.T) {
	root := testenv.RepoRoot(t)
	pin := regexp.MustCompile(`github\.com/distribution/distribution/v3/cmd/registry@(v[0-9][^\s"']*)`)
	versions := map[string]string{}
	for _, f := range []string{"scripts/demo.sh", "scripts/install-deps.sh"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		m := pin.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s does not pin the registry (%s)", f, pin)
		}
		versions[f] = string(m[1])
	}
	if versions["scripts/demo.sh"] != versions["scripts/install-deps.sh"] {
		t.Errorf("registry versions differ: %v", versions)
	}
}
