package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	dockerclient "github.com/docker/docker-credential-helpers/client"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// helperTimeout bounds one run of the credential helper, device login
// included.
const helperTimeout = 2 * time.Minute

// buildCredHelper builds cmd/docker-credential-bridge into a new
// directory and returns that directory, to put first on PATH.
func buildCredHelper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "docker-credential-bridge"), "./cmd/docker-credential-bridge")
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/docker-credential-bridge: %v\n%s", err, out)
	}
	return dir
}

// credHelper runs the helper binary with HOME and its credential
// directory in temporary directories.
type credHelper struct {
	bin  string // directory of the binary
	home string
	dir  string // DOCKER_CREDENTIAL_BRIDGE_DIR
}

func (h credHelper) env() []string {
	return []string{
		"PATH=" + h.bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + h.home, "XDG_CONFIG_HOME=" + filepath.Join(h.home, ".config"),
		"DOCKER_CREDENTIAL_BRIDGE_DIR=" + h.dir, "DOCKER_CREDENTIAL_BRIDGE_NO_BROWSER=1",
	}
}

// helperRun is a running helper command.
type helperRun struct {
	cmd    *exec.Cmd
	stdout strings.Builder
	mu     sync.Mutex
	stderr strings.Builder
	url    chan string // the verification URL, once printed
	done   chan error
}

var verificationRE = regexp.MustCompile(`https?://\S+/device\?user_code=[A-Z]{4}-[A-Z]{4}`)

// start runs the helper with args and stdin; the caller waits with wait.
func (h credHelper) start(t *testing.T, stdin string, args ...string) *helperRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), helperTimeout)
	t.Cleanup(cancel)
	r := &helperRun{url: make(chan string, 1), done: make(chan error, 1)}
	r.cmd = exec.CommandContext(ctx, filepath.Join(h.bin, "docker-credential-bridge"), args...)
	r.cmd.Env = h.env()
	r.cmd.Stdin = strings.NewReader(stdin)
	r.cmd.Stdout = &r.stdout
	pipe, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.stderr.WriteString(line + "\n")
			r.mu.Unlock()
			if m := verificationRE.FindString(line); m != "" && !sent {
				r.url <- m
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		r.done <- r.cmd.Wait()
	}()
	return r
}

func (r *helperRun) errText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// verificationURL waits for the helper to print its verification URL.
func (r *helperRun) verificationURL(t *testing.T) string {
	t.Helper()
	select {
	case u := <-r.url:
		return u
	case err := <-r.done:
		t.Fatalf("the helper exited (%v) without printing a verification URL:\n%s", err, r.errText())
	case <-time.After(helperTimeout):
		t.Fatalf("the helper printed no verification URL:\n%s", r.errText())
	}
	return ""
}

// wait waits for the helper to exit and returns its stdout and error.
func (r *helperRun) wait(t *testing.T) (string, error) {
	t.Helper()
	select {
	case err := <-r.done:
		return r.stdout.String(), err
	case <-time.After(helperTimeout):
		t.Fatalf("the helper did not finish:\n%s", r.errText())
	}
	return "", nil
}

// get runs the protocol's get for server and decodes the answer.
func (h credHelper) get(t *testing.T, server string) (user, secret, stderr string) {
	t.Helper()
	r := h.start(t, server, "get")
	out, err := r.wait(t)
	if err != nil {
		t.Fatalf("get %s: %v\nstdout: %s\nstderr: %s", server, err, out, r.errText())
	}
	var c struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("get %s printed %q: %v", server, out, err)
	}
	return c.Username, c.Secret, r.errText()
}

// approve opens the verification URL in the signed-in browser, checks
// what the page shows, and presses decision ("approve" or "deny").
func (p *page) approve(verification, wantCode, wantHost, decision string) {
	p.t.Helper()
	p.do("open the verification URL",
		chromedp.Navigate(verification),
		chromedp.WaitVisible(chromedp.CSS("#device-approve")),
	)
	if got := p.text("#device-code"); got != wantCode {
		p.t.Errorf("the approval page shows code %q, want %q", got, wantCode)
	}
	if got := p.text("#device-warning"); !strings.Contains(got, "Approve only if you started this") {
		p.t.Errorf("the approval page lacks the warning: %q", got)
	}
	if got := p.text("#device-host"); got != wantHost {
		p.t.Errorf("the approval page shows host %q, want %q", got, wantHost)
	}
	if got := p.text("#device-ip"); got != "127.0.0.1" {
		p.t.Errorf("the approval page shows address %q, want 127.0.0.1", got)
	}
	p.screenshot("device-confirm")
	p.do(decision, chromedp.Click(chromedp.CSS("#device-"+decision)), chromedp.WaitVisible(chromedp.CSS("#device-result")))
}

// deviceLogin runs the helper with args (and stdin), approves (or denies)
// its code in the browser, and returns its stdout and error.
func (p *page) deviceLogin(h credHelper, decision, stdin string, args ...string) (string, string, error) {
	p.t.Helper()
	r := h.start(p.t, stdin, args...)
	u := r.verificationURL(p.t)
	code := u[strings.LastIndex(u, "=")+1:]
	host, _ := os.Hostname()
	p.approve(u, code, host, decision)
	out, err := r.wait(p.t)
	return out, r.errText(), err
}

// refreshStatus asks the bridge for a token with a refresh token and
// returns the status.
func refreshStatus(t *testing.T, bridge, service, refresh string) int {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {service}, "client_id": {"e2e"}}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).PostForm(bridge+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// userAgents are substrings of each client tool's User-Agent.
var userAgents = map[string]string{"skopeo": "containers/", "crane": "go-containerregistry", "regctl": "regclient", "oras": "oras"}

// tokenGrants counts the bridge's granted token requests by grant, from
// its audit log, of the clients whose User-Agent contains agent.
func (d *demo) tokenGrants(t *testing.T, agent string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, "logs", "bridge.log"))
	if err != nil {
		t.Fatal(err)
	}
	grant := regexp.MustCompile(`grant=(\S+)`)
	n := map[string]int{}
	for line := range strings.Lines(string(b)) {
		if !strings.Contains(line, "msg=token ") || !strings.Contains(line, "outcome=granted") || !strings.Contains(line, agent) {
			continue
		}
		if m := grant.FindStringSubmatch(line); m != nil {
			n[m[1]]++
		}
	}
	return n
}

// useHelper configures client c to take credentials from the helper and
// nothing else: credHelpers in its docker config (crane, regctl, oras)
// and in its containers auth file (skopeo), for hosts.
func useHelper(t *testing.T, c *testenv.Client, h credHelper, hosts ...string) []string {
	t.Helper()
	helpers := map[string]string{}
	for _, host := range hosts {
		helpers[host] = "bridge"
	}
	b, _ := json.Marshal(map[string]any{"credHelpers": helpers})
	files := []string{filepath.Join(c.Dir(), ".docker", "config.json"), filepath.Join(c.Dir(), "auth.json")}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.Setenv(h.env()...)
	return files
}

// TestDeviceLogin is the terminal login with every real part: the demo's
// bridge, provider and registry v3, a registry 2.8 trusting the same
// bridge, the credential helper binary, headless Chromium approving on
// /device, and skopeo, crane, regctl and oras pushing and pulling with
// only the helper configured — no password typed, nothing secret in their
// config files.
func TestDeviceLogin(t *testing.T) {
	d := startDemo(t, "30s")
	p := &page{t: t, ctx: newBrowser(t), d: d}
	h := credHelper{bin: buildCredHelper(t), home: t.TempDir()}
	h.dir = filepath.Join(h.home, ".config", "registry-bridge")
	reg28 := testenv.Registry28(t, testenv.TokenAuth{
		Realm: d.bridgeURL + "/token", Service: d.registryHost, Issuer: "registry-bridge-demo",
		RootCertBundle: filepath.Join(d.dir, "keys", "signing.crt"),
	})
	p.login("alice", "alice-password")

	// get for a fresh registry starts a device login; approved in the
	// browser, it hands out the identity token.
	r := h.start(t, d.registryHost, "get")
	u := r.verificationURL(t)
	if !strings.HasPrefix(u, d.bridgeURL+"/device?user_code=") {
		t.Fatalf("verification URL %s is not the bridge's /device", u)
	}
	host, _ := os.Hostname()
	p.approve(u, u[strings.LastIndex(u, "=")+1:], host, "approve")
	p.screenshot("device-approved")
	out, err := r.wait(t)
	if err != nil {
		t.Fatalf("get: %v\n%s\n%s", err, out, r.errText())
	}
	var first struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(out), &first); err != nil || first.Username != "<token>" || !strings.HasPrefix(first.Secret, "rbr_") {
		t.Fatalf("get printed %q (%v), want the identity token", out, err)
	}
	fi, err := os.Stat(filepath.Join(h.dir, "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v, want mode 0600", fi, err)
	}

	// A second get reuses it: no new login.
	user, secret, stderr := h.get(t, "http://"+d.registryHost+"/v2/")
	if user != first.Username || secret != first.Secret || strings.Contains(stderr, "/device") {
		t.Fatalf("second get: %q %q, stderr %q; want the stored credential and no login", user, secret, stderr)
	}

	// Docker's own side of the protocol (docker-credential-helpers/client,
	// what the docker CLI runs) gets the identity token, and trades it
	// with Docker's refresh grant (client_id=docker, access_type=offline).
	t.Run("docker helper client and refresh grant", func(t *testing.T) {
		env := map[string]string{}
		for _, kv := range h.env() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		creds, err := dockerclient.Get(dockerclient.NewShellProgramFuncWithEnv(filepath.Join(h.bin, "docker-credential-bridge"), &env), d.registryHost)
		if err != nil || creds.Username != "<token>" || creds.Secret != first.Secret {
			t.Fatalf("docker-credential-helpers client Get: %+v %v", creds, err)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {creds.Secret}, "service": {d.registryHost},
			"client_id": {"docker"}, "access_type": {"offline"}, "scope": {"repository:users/alice/docker:pull,push"}}
		a := devicePost(t, d.bridgeURL+"/token", form)
		if a.status != http.StatusOK || a.str("access_token") == "" || !strings.Contains(a.str("scope"), "users/alice/docker:pull,push") {
			t.Fatalf("Docker's refresh grant: %d %v", a.status, a.body)
		}
	})

	// login ahead of time for the 2.8 registry.
	if out, stderr, err := p.deviceLogin(h, "approve", "", "login", reg28); err != nil || !strings.Contains(stderr, "Logged in to "+reg28+" as alice") {
		t.Fatalf("login %s: %v\n%s\n%s", reg28, err, out, stderr)
	}
	_, secret28, _ := h.get(t, reg28)

	// Every client pushes and pulls on both registries with only the helper.
	img := testenv.OCILayout(t, t.TempDir())
	for _, host := range []string{d.registryHost, reg28} {
		for _, tool := range testenv.Tools {
			c := tool(t)
			t.Run(host+"/"+c.Name, func(t *testing.T) {
				files := useHelper(t, c, h, d.registryHost, reg28)
				agent := userAgents[c.Name]
				before := d.tokenGrants(t, agent)
				pushPull(t, c, img, host+"/team-a/"+c.Name+"-device:v1")
				pushPull(t, c, img, host+"/users/alice/"+c.Name+"-device:v1")
				// The identity token went through the OAuth2 refresh grant
				// (the audit log is flushed every 100ms).
				waitUntil(t, 5*time.Second, c.Name+" made a refresh_token grant", func() bool {
					return d.tokenGrants(t, agent)["refresh_token"] > before["refresh_token"]
				})
				for _, f := range files {
					b, _ := os.ReadFile(f)
					if strings.Contains(string(b), "rbp_") || strings.Contains(string(b), "rbr_") || strings.Contains(string(b), `"auth"`) {
						t.Errorf("%s holds a credential:\n%s", f, b)
					}
				}
			})
		}
	}

	// Configured for username and password instead, the same stored
	// credential goes through Basic.
	t.Run("password mode", func(t *testing.T) {
		c := testenv.Oras(t)
		useHelper(t, c, h, d.registryHost)
		c.Setenv("DOCKER_CREDENTIAL_BRIDGE_MODE=password")
		if d.tokenGrants(t, userAgents["oras"])["refresh_token"] == 0 {
			t.Fatal("the audit log shows no refresh grant of oras: is its User-Agent still matched?")
		}
		before := d.tokenGrants(t, userAgents["oras"])
		pushPull(t, c, img, d.registryHost+"/users/alice/password-mode:v1")
		waitUntil(t, 5*time.Second, "a Basic or password grant", func() bool {
			after := d.tokenGrants(t, userAgents["oras"])
			return after["basic"]+after["password"] > before["basic"]+before["password"]
		})
	})

	// Denied in the browser: the helper fails with the RFC's error and
	// stores nothing.
	denied := credHelper{bin: h.bin, home: t.TempDir()}
	denied.dir = filepath.Join(denied.home, "creds")
	out, stderr, err = p.deviceLogin(denied, "deny", d.registryHost, "get")
	if err == nil || !strings.Contains(out+stderr, "denied") {
		t.Fatalf("get denied in the browser: %v\n%s\n%s", err, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(denied.dir, "credentials.json")); err == nil {
		b, _ := os.ReadFile(filepath.Join(denied.dir, "credentials.json"))
		if strings.Contains(string(b), "rbp_") {
			t.Fatalf("a denied login stored a credential:\n%s", b)
		}
	}

	t.Run("refusals", func(t *testing.T) { deviceRefusals(t, d, p) })

	// erase revokes on the bridge: the next token request is 401.
	if got := refreshStatus(t, d.bridgeURL, d.registryHost, first.Secret); got != http.StatusOK {
		t.Fatalf("refresh grant before erase: %d", got)
	}
	r = h.start(t, d.registryHost, "erase")
	if out, err := r.wait(t); err != nil {
		t.Fatalf("erase: %v\n%s\n%s", err, out, r.errText())
	}
	if got := refreshStatus(t, d.bridgeURL, d.registryHost, first.Secret); got != http.StatusUnauthorized {
		t.Fatalf("refresh grant after erase: %d, want 401", got)
	}
	// logout does the same for the 2.8 registry.
	r = h.start(t, "", "logout", reg28)
	if out, err := r.wait(t); err != nil {
		t.Fatalf("logout: %v\n%s\n%s", err, out, r.errText())
	}
	if got := refreshStatus(t, d.bridgeURL, d.registryHost, secret28); got != http.StatusUnauthorized {
		t.Fatalf("refresh grant after logout: %d, want 401", got)
	}
	r = h.start(t, "", "list")
	if out, err := r.wait(t); err != nil || strings.TrimSpace(out) != "{}" {
		t.Fatalf("list after erase and logout: %q %v", out, err)
	}
	// With nothing stored and no one to approve, a client's push fails
	// cleanly instead of using anything stale.
	c := testenv.Crane(t)
	useHelper(t, c, h, d.registryHost)
	c.Setenv("DOCKER_CREDENTIAL_BRIDGE_NONINTERACTIVE=1")
	out, err = c.Push(t.Context(), img, d.registryHost+"/team-a/after-logout:v1")
	assertDenied(t, fmt.Sprintf("push after logout (%s)", c.Name), out, err)
}

// deviceAnswer is a JSON answer of the bridge's device endpoints.
type deviceAnswer struct {
	status int
	body   map[string]any
}

func (a deviceAnswer) str(k string) string { v, _ := a.body[k].(string); return v }

func devicePost(t *testing.T, u string, form url.Values) deviceAnswer {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := deviceAnswer{status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &a.body)
	return a
}

// deviceRefusals checks, against the real bridge binary and in the
// browser, that polling too fast, wrong codes and a code another person
// decided already are refused with the RFC's errors and mint nothing.
// (Expiry, denial by the approver and the caps are in
// httpapi/device_test.go, with an injected clock.)
func deviceRefusals(t *testing.T, d *demo, p *page) {
	start := devicePost(t, d.bridgeURL+"/device/code", url.Values{"client_id": {"docker-credential-bridge"}, "host": {"refusals.example"}})
	if start.status != http.StatusOK {
		t.Fatalf("POST /device/code: %d %v", start.status, start.body)
	}
	poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {start.str("device_code")}, "client_id": {"docker-credential-bridge"}}
	for _, want := range []string{"authorization_pending", "slow_down"} {
		if a := devicePost(t, d.bridgeURL+"/token", poll); a.status != http.StatusBadRequest || a.str("error") != want {
			t.Fatalf("poll: %d %v, want 400 %s", a.status, a.body, want)
		}
	}

	// A wrong code gets an error on the page and no approve button.
	p.do("enter a wrong code",
		chromedp.Navigate(d.bridgeURL+"/device"),
		chromedp.SendKeys(chromedp.CSS("#user-code"), "BBBB-BBBB"),
		chromedp.Click(chromedp.CSS("#device-continue")),
		chromedp.WaitVisible(chromedp.CSS("#device-error")),
	)

	// alice approves; bob, signed in next, cannot decide it again.
	p.approve(start.str("verification_uri_complete"), start.str("user_code"), "refusals.example", "approve")
	p.do("log out",
		chromedp.Navigate(d.bridgeURL),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	p.login("bob", "bob-password")
	p.do("bob opens alice's approved code",
		chromedp.Navigate(start.str("verification_uri_complete")),
		chromedp.WaitVisible(chromedp.CSS("#device-error")),
	)
	p.do("bob's page", chromedp.Navigate(d.bridgeURL), chromedp.WaitVisible(chromedp.CSS("#mint")))
	if body := p.text("body"); strings.Contains(body, "device:") {
		t.Errorf("bob has a device password:\n%s", body)
	}
}
