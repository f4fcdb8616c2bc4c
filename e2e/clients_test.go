package e2e_test

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// clientCase is one client tool against one registry, for eachClient.
type clientCase struct {
	reg  string                           // the registry's name, "v3" or "2.8"
	host string                           // the registry, "localhost:PORT"
	tool func(testing.TB) *testenv.Client // c's constructor, for a fresh client of the same tool
	c    *testenv.Client
}

// eachClient starts each registry of registries trusting w's bridge and
// runs, in a subtest per registry, perRegistry (if not nil) and then test
// in a subtest per client tool of testenv.Tools, with a new client of it.
func eachClient(t *testing.T, w *world, perRegistry func(t *testing.T, host string), test func(t *testing.T, cc clientCase)) {
	t.Helper()
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, w.tokenAuth())
			if perRegistry != nil {
				perRegistry(t, host)
			}
			for _, tool := range testenv.Tools {
				c := tool(t)
				t.Run(c.Name, func(t *testing.T) {
					test(t, clientCase{reg: reg.name, host: host, tool: tool, c: c})
				})
			}
		})
	}
}

// TestClients logs in, pushes and pulls with every client against both
// registries: team-a's password may push to team-a/** and to its own
// users/alice/**, not to team-b/**, and a wrong password gets nowhere.
func TestClients(t *testing.T) {
	w := newWorld(t, worldOptions{})
	img := testenv.OCILayout(t, t.TempDir())
	eachClient(t, w, nil, func(t *testing.T, cc clientCase) {
		c, host := cc.c, cc.host
		pw := w.mint(t, password{user: "alice", groups: "team-a", name: "clients-" + cc.reg + "-" + c.Name})
		login(t, c, host, "alice", pw)

		pushPull(t, c, img, host+"/team-a/"+c.Name+"-app:v1")
		pushPull(t, c, img, host+"/users/alice/"+c.Name+"-app:v1")
		out, err := c.Push(t.Context(), img, host+"/team-b/x:v1")
		assertDenied(t, "push to team-b", out, err)

		t.Run("wrong password", func(t *testing.T) {
			fresh := cc.tool(t)
			out, err := fresh.Login(t.Context(), host, "alice", tamper(pw))
			if fresh.LoginChecks {
				assertDenied(t, "login with a wrong password", out, err)
			} else if err != nil {
				t.Fatalf("%s login only stores credentials, yet it failed: %v\n%s", fresh.Name, err, out)
			}
			out, err = fresh.Push(t.Context(), img, host+"/team-a/"+c.Name+"-wrong:v1")
			assertDenied(t, "push with a wrong password", out, err)
		})
	})
}

// TestReadOnly checks that a read-only password pulls but never pushes, not
// even to its owner's own namespace.
func TestReadOnly(t *testing.T) {
	w := newWorld(t, worldOptions{})
	img := testenv.OCILayout(t, t.TempDir())
	const repo = "/team-a/ro-app:v1"
	seedRepo := func(t *testing.T, host string) { seed(t, w, host, img, host+repo) }
	eachClient(t, w, seedRepo, func(t *testing.T, cc clientCase) {
		c, host := cc.c, cc.host
		pw := w.mint(t, password{user: "alice", groups: "team-a", name: "ro-" + cc.reg + "-" + c.Name, readOnly: true})
		login(t, c, host, "alice", pw)
		pull(t, c, img, host+repo)
		out, err := c.Push(t.Context(), img, host+"/team-a/ro-app:"+c.Name)
		assertDenied(t, "read-only push to team-a", out, err)
		out, err = c.Push(t.Context(), img, host+"/users/alice/"+c.Name+"-ro:v1")
		assertDenied(t, "read-only push to the own namespace", out, err)
	})
}

// TestRSAKeys runs a push and pull with an RS256 signing key, which both
// registries accept (docs/protocol.md §3.3).
func TestRSAKeys(t *testing.T) {
	w := newWorld(t, worldOptions{alg: "RS256"})
	img := testenv.OCILayout(t, t.TempDir())
	pw := w.mint(t, password{user: "alice", groups: "team-a", name: "rsa"})
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, w.tokenAuth())
			c := testenv.Crane(t)
			login(t, c, host, "alice", pw)
			pushPull(t, c, img, host+"/team-a/rsa:v1")
		})
	}
}

// seed pushes img to ref with a fresh read-write password of alice in
// team-a and a fresh crane, so that later pulls have something to fetch.
func seed(t testing.TB, w *world, host string, img testenv.OCIImage, ref string) {
	t.Helper()
	pw := w.mint(t, password{user: "alice", groups: "team-a", name: "seed-" + strings.NewReplacer("/", "-", ":", "-").Replace(ref)})
	c := testenv.Crane(t)
	login(t, c, host, "alice", pw)
	if out, err := c.Push(t.Context(), img, ref); err != nil {
		t.Fatalf("seed %s: %v\n%s", ref, err, out)
	}
}

func login(t testing.TB, c *testenv.Client, host, user, pw string) {
	t.Helper()
	if out, err := c.Login(t.Context(), host, user, pw); err != nil {
		t.Fatalf("%s login %s as %s: %v\n%s", c.Name, host, user, err, out)
	}
}

// pushPull pushes img to ref and pulls it back.
func pushPull(t testing.TB, c *testenv.Client, img testenv.OCIImage, ref string) {
	t.Helper()
	if out, err := c.Push(t.Context(), img, ref); err != nil {
		t.Fatalf("%s push %s: %v\n%s", c.Name, ref, err, out)
	}
	pull(t, c, img, ref)
}

// pull pulls ref into a new OCI layout and checks it is img.
func pull(t testing.TB, c *testenv.Client, img testenv.OCIImage, ref string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pulled")
	if out, err := c.Pull(t.Context(), ref, dir); err != nil {
		t.Fatalf("%s pull %s: %v\n%s", c.Name, ref, err, out)
	}
	got, err := testenv.LayoutManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, img.ManifestDigest) {
		t.Errorf("%s pull %s: layout lists %v, want %s", c.Name, ref, got, img.ManifestDigest)
	}
}

// authFailure matches what the clients print when the token endpoint or
// the registry refuses them, so that a denial is not confused with a
// broken command line.
var authFailure = regexp.MustCompile(`(?i)unauthori[sz]ed|denied|authentication required|invalid username/password|insufficient.scope|\b401\b|\b403\b`)

// assertDenied fails the test unless a client command failed for want of
// authorisation.
func assertDenied(t testing.TB, what, out string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want it refused:\n%s", what, out)
		return
	}
	if !authFailure.MatchString(out) {
		t.Errorf("%s failed, but not with an authorisation error: %v\n%s", what, err, out)
	}
}

// tamper returns pw with one character of its secret changed: a password
// of the right form and id whose secret is wrong.
func tamper(pw string) string {
	b := []byte(pw)
	i := len(b) - 10
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}
