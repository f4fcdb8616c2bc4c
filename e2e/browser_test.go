package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/passwords"
)

// Browser test bounds.
const (
	// browserTimeout bounds the whole browser session.
	browserTimeout = 2 * time.Minute
	// revalidateDeadline bounds how long a change at the provider may take
	// to reach the bridge, with passwords.revalidate_every at 1s.
	revalidateDeadline = 15 * time.Second
)

// chromiumHint is how to install the browser on Debian.
const chromiumHint = "apt-get install -y chromium (or: BRIDGE_BROWSER=1 scripts/install-deps.sh)"

// envArtifacts names a directory that keeps the screenshots after the test
// (CI artifacts, or a look by hand); without it they go to t.TempDir().
const envArtifacts = "BRIDGE_E2E_ARTIFACTS"

// newBrowser starts headless Debian Chromium with a fresh profile and HOME
// in temporary directories, and returns a tab's context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Require(t, "chromium", chromiumHint)
	home := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache")),
		chromedp.WindowSize(1200, 900),
	)
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	return tab
}

// page drives the bridge's web page in one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
	d   *demo
}

// do runs browser actions and fails the test, with the page's location
// and text, if one fails.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		p.t.Fatalf("browser: %s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

// text returns the text of the element sel.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// login opens the bridge, follows its login button to the provider, signs
// in there and waits for the signed-in page.
func (p *page) login(user, password string) {
	p.t.Helper()
	p.do("open the bridge and click #login",
		chromedp.Navigate(p.d.bridgeURL),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	if loc, _ := chromedp.Run(p.ctx, chromedp.Location()); !strings.HasPrefix(loc, p.d.idpURL+"/") {
		p.t.Fatalf("the login button led to %s, want the provider at %s", loc, p.d.idpURL)
	}
	p.do("sign in at the provider as "+user,
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#mint")),
	)
	if got := p.text("#login-username"); got != user {
		p.t.Errorf("signed-in page shows username %q, want %q", got, user)
	}
}

// mint creates an app password named name on the signed-in page and
// returns the username and password the minted page shows.
func (p *page) mint(name string) (username, password string) {
	p.t.Helper()
	p.do("mint "+name,
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.Click(chromedp.CSS("#mint")),
		chromedp.WaitVisible(chromedp.CSS("#new-password")),
	)
	return p.text("#username"), p.text("#new-password")
}

// screenshot saves the whole page as a PNG and logs its path.
func (p *page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		dir = p.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// skopeoCLI runs the skopeo command lines the demo prints, as a person
// would type them, with testenv.Skopeo's own HOME and auth file.
type skopeoCLI struct {
	c *testenv.Client
}

func newSkopeoCLI(t *testing.T) *skopeoCLI {
	t.Helper()
	return &skopeoCLI{c: testenv.Skopeo(t)}
}

// run runs a command line "skopeo …"; stdin, if set, is its input.
func (s *skopeoCLI) run(ctx context.Context, line, stdin string) (string, error) {
	args := strings.Fields(line)
	if len(args) == 0 || args[0] != "skopeo" {
		return "", fmt.Errorf("not a skopeo command line: %q", line)
	}
	return s.c.Exec(ctx, stdin, args[1:]...)
}

// TestBrowser is the whole product through a real browser, started by
// `make demo`'s script with group revalidation every second: alice logs in
// at the provider, mints a password and pushes with the printed skopeo
// commands; moved out of team-a at the provider, her push to team-a is
// denied within seconds while her own namespace still works; disabled,
// her password stops working; bob mints one and revokes it on the page,
// and it fails at once.
func TestBrowser(t *testing.T) {
	d := startDemo(t, "1s")
	p := &page{t: t, ctx: newBrowser(t), d: d}
	skopeo := newSkopeoCLI(t)
	ctx := t.Context()

	loginLine := d.command(t, "skopeo login ") // skopeo login --tls-verify=false -u alice HOST
	pushLine := d.command(t, "skopeo copy ")   // skopeo copy … docker://HOST/team-a/app:v1
	ownLine := strings.Replace(pushLine, "/team-a/app:", "/users/alice/app:", 1)
	if !strings.Contains(loginLine, " -u alice ") || !strings.Contains(pushLine, "docker://"+d.registryHost+"/team-a/app:v1") {
		t.Fatalf("unexpected demo commands:\n%s\n%s", loginLine, pushLine)
	}
	loginAs := func(user, password string) (string, error) {
		return skopeo.run(ctx, strings.Replace(loginLine, " -u alice ", " -u "+user+" ", 1)+" --password-stdin", password+"\n")
	}

	// alice: log in at the provider, mint, push with the printed commands.
	p.login("alice", "alice-password")
	if got := p.text("#groups"); got != "team-a" {
		t.Errorf("signed-in page shows groups %q, want team-a", got)
	}
	p.screenshot("signed-in")
	user, pw := p.mint("laptop")
	p.screenshot("minted")
	if cred, err := passwords.Parse(pw); user != "alice" || err != nil || cred.Kind != passwords.KindPassword {
		t.Fatalf("minted page shows username %q and password %q (%v)", user, pw, err)
	}
	if out, err := loginAs(user, pw); err != nil {
		t.Fatalf("skopeo login with the minted password: %v\n%s", err, out)
	}
	if out, err := skopeo.run(ctx, pushLine, ""); err != nil {
		t.Fatalf("the demo's push command as alice (team-a): %v\n%s", err, out)
	}

	// Out of team-a at the provider: after revalidation the push is denied,
	// but the password itself still works for alice's own namespace.
	editUser(t, d.usersFile(), "alice", "groups: [team-a]", "groups: []")
	var out string
	var err error
	waitUntil(t, revalidateDeadline, "push to team-a denied after alice left team-a", func() bool {
		out, err = skopeo.run(ctx, pushLine, "")
		return err != nil
	})
	assertDenied(t, "push to team-a after leaving the group", out, err)
	if out, err := skopeo.run(ctx, ownLine, ""); err != nil {
		t.Errorf("push to users/alice/app after leaving team-a: %v\n%s", err, out)
	}

	// Log out of the bridge: back at its login button.
	p.do("log out",
		chromedp.Navigate(d.bridgeURL),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)

	// Disabled at the provider: the password stops working.
	editUser(t, d.usersFile(), "alice", "disabled: false", "disabled: true")
	waitUntil(t, revalidateDeadline, "alice's password refused after she was disabled", func() bool {
		out, err = loginAs(user, pw)
		return err != nil
	})
	assertDenied(t, "skopeo login as disabled alice", out, err)

	// bob: mint, check, revoke on the page; the password fails at once.
	p.login("bob", "bob-password")
	bobUser, bobPw := p.mint("ci")
	if bobUser != "bob" {
		t.Errorf("minted page shows username %q, want bob", bobUser)
	}
	cred, err := passwords.Parse(bobPw)
	if err != nil {
		t.Fatalf("minted page shows password %q: %v", bobPw, err)
	}
	if out, err := loginAs(bobUser, bobPw); err != nil {
		t.Fatalf("skopeo login as bob: %v\n%s", err, out)
	}
	p.do("open bob's password list",
		chromedp.Navigate(d.bridgeURL),
		chromedp.WaitVisible(chromedp.CSS("#passwords")),
	)
	p.screenshot("passwords")
	p.do("revoke bob's password on the page",
		chromedp.Click(chromedp.CSS(`form[action="/passwords/`+cred.ID+`/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#no-passwords")),
	)
	out, err = loginAs(bobUser, bobPw)
	assertDenied(t, "skopeo login right after revoking on the page", out, err)
}

// editUser replaces from with to in the block of username in a demo users
// file, as a person editing it would, and fails the test if the block has
// no such line.
func editUser(t *testing.T, path, username, from, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?ms)^  - username: ` + regexp.QuoteMeta(username) + `\n.*?(?:^  - |^\S|\z)`)
	loc := block.FindIndex(b)
	if loc == nil {
		t.Fatalf("%s has no user %s", path, username)
	}
	text := string(b[loc[0]:loc[1]])
	if !strings.Contains(text, from) {
		t.Fatalf("user %s in %s has no %q:\n%s", username, path, from, text)
	}
	edited := string(b[:loc[0]]) + strings.Replace(text, from, to, 1) + string(b[loc[1]:])
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond every 200ms until it holds, and fails the test
// with what if it does not within timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
