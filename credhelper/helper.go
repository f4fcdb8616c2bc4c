package credhelper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
)

// ClientID is the public client the bridge's device login serves.
const ClientID = "docker-credential-bridge"

// Modes of what `get` returns.
const (
	// ModeToken returns the identity token: Username "<token>", Secret
	// the refresh token. Docker and containerd then use the OAuth2
	// refresh grant.
	ModeToken = "token"
	// ModePassword returns the username and the app password, for
	// clients that want a Basic login.
	ModePassword = "password"
)

// renewBefore: a credential that expires sooner than this is not handed
// out; `get` logs in again instead.
const renewBefore = 5 * time.Minute

// Options configure a Helper.
type Options struct {
	// Dir holds the credential file (FileName) and its lock.
	Dir string
	// Mode is ModeToken (default) or ModePassword.
	Mode string
	// Lifetime is the password lifetime to ask for; 0 takes the
	// bridge's default.
	Lifetime time.Duration
	// ReadOnly asks for read-only passwords.
	ReadOnly bool
	// Interactive permits `get` to start a device login when it holds
	// no credential; else it answers "credentials not found".
	Interactive bool
	// OpenBrowser, when set, is run with the verification URL (for
	// example xdg-open); failures are ignored.
	OpenBrowser func(url string) error
	// Insecure names registries (host[:port]) that may be reached over
	// plain http; loopback hosts always may.
	Insecure map[string]bool
	// HTTPClient makes every request; it must have a timeout.
	HTTPClient *http.Client
	// Stderr receives the login prompt and progress.
	Stderr io.Writer
	// Hostname names this machine to the approval page.
	Hostname string
	// ClientName is shown on the approval page.
	ClientName string
	Now        func() time.Time
}

// Helper is a credentials.Helper backed by device logins.
type Helper struct{ o Options }

var _ credentials.Helper = (*Helper)(nil)

// New returns a Helper; zero options get their defaults.
func New(o Options) (*Helper, error) {
	if o.Dir == "" {
		return nil, errors.New("credhelper: no directory for the credential file")
	}
	switch o.Mode {
	case "":
		o.Mode = ModeToken
	case ModeToken, ModePassword:
	default:
		return nil, fmt.Errorf("credhelper: mode %q: want %s or %s", o.Mode, ModeToken, ModePassword)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClientName == "" {
		o.ClientName = ClientID
	}
	return &Helper{o: o}, nil
}

// DefaultDir is $XDG_CONFIG_HOME/registry-bridge, else
// ~/.config/registry-bridge.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "registry-bridge"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "registry-bridge"), nil
}

// XDGOpen opens url with xdg-open (or open on macOS) when a graphical
// session seems to exist; it is a no-op otherwise.
func XDGOpen(url string) error {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return fmt.Errorf("not opening %q: only http(s) links", clean(url))
	}
	for _, cmd := range []string{"xdg-open", "open"} {
		if path, err := exec.LookPath(cmd); err == nil {
			if cmd == "xdg-open" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
				return nil
			}
			c := exec.Command(path, url)
			c.Stdout, c.Stderr = nil, nil
			if err := c.Start(); err != nil {
				return err
			}
			go func() { _ = c.Wait() }()
			return nil
		}
	}
	return nil
}

func (h *Helper) path() string { return filepath.Join(h.o.Dir, FileName) }

// locked runs fn with the credential file loaded, under the lock; fn's
// changes are saved when it returns save == true.
func (h *Helper) locked(fn func(f *file) (save bool, err error)) error {
	if err := os.MkdirAll(h.o.Dir, 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(h.o.Dir, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	f, err := load(h.path())
	if err != nil {
		return err
	}
	changed, err := fn(&f)
	if changed {
		if serr := save(h.path(), f); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// valid reports whether e may be handed out now.
func (h *Helper) valid(e Entry) bool {
	return e.Password != "" && (e.ExpiresAt.IsZero() || h.o.Now().Add(renewBefore).Before(e.ExpiresAt))
}

// answer returns e as `get` hands it out.
func (h *Helper) answer(e Entry) (string, string) {
	if h.o.Mode == ModeToken && e.RefreshToken != "" {
		return "<token>", e.RefreshToken
	}
	return e.Username, e.Password
}

// Get implements credentials.Helper: the stored credential for serverURL
// if it is still valid, else — when interactive — a new device login.
func (h *Helper) Get(serverURL string) (string, string, error) {
	reg, err := registryKey(serverURL)
	if err != nil {
		return "", "", err
	}
	var user, secret string
	err = h.locked(func(f *file) (bool, error) {
		if e, ok := f.Registries[reg]; ok && h.valid(e) {
			user, secret = h.answer(e)
			return false, nil
		}
		if !h.o.Interactive {
			return false, credentials.NewErrCredentialsNotFound()
		}
		e, err := h.deviceLogin(context.Background(), reg)
		if err != nil {
			return false, err
		}
		f.Registries[reg] = e
		user, secret = h.answer(e)
		return true, nil
	})
	return user, secret, err
}

// Add implements credentials.Helper: it keeps what a client's login
// hands over (`docker login -u … -p …`), in the same file.
func (h *Helper) Add(c *credentials.Credentials) error {
	reg, err := registryKey(c.ServerURL)
	if err != nil {
		return err
	}
	return h.locked(func(f *file) (bool, error) {
		e := Entry{Username: c.Username, Password: c.Secret}
		if c.Username == "<token>" {
			e = Entry{Username: c.Username, Password: c.Secret, RefreshToken: c.Secret}
		}
		f.Registries[reg] = e
		return true, nil
	})
}

// Delete implements credentials.Helper: it revokes the credential on the
// bridge, then forgets it. A failed revocation is reported, and the
// credential forgotten all the same.
func (h *Helper) Delete(serverURL string) error {
	reg, err := registryKey(serverURL)
	if err != nil {
		return err
	}
	return h.locked(func(f *file) (bool, error) {
		e, ok := f.Registries[reg]
		if !ok {
			return false, credentials.NewErrCredentialsNotFound()
		}
		delete(f.Registries, reg)
		return true, h.revoke(context.Background(), reg, e)
	})
}

// List implements credentials.Helper.
func (h *Helper) List() (map[string]string, error) {
	out := map[string]string{}
	err := h.locked(func(f *file) (bool, error) {
		for reg, e := range f.Registries {
			out[reg] = e.Username
		}
		return false, nil
	})
	return out, err
}

// Login logs in to registry now, replacing (and revoking) any stored
// credential.
func (h *Helper) Login(ctx context.Context, registry string) (Entry, error) {
	reg, err := registryKey(registry)
	if err != nil {
		return Entry{}, err
	}
	var got Entry
	err = h.locked(func(f *file) (bool, error) {
		e, err := h.deviceLogin(ctx, reg)
		if err != nil {
			return false, err
		}
		old, had := f.Registries[reg]
		f.Registries[reg], got = e, e
		if had && old.Password != e.Password {
			if err := h.revoke(ctx, reg, old); err != nil {
				fmt.Fprintf(h.o.Stderr, "warning: the previous credential could not be revoked: %v\n", err)
			}
		}
		return true, nil
	})
	return got, err
}

// Logout revokes and forgets the credential of registry.
func (h *Helper) Logout(ctx context.Context, registry string) error {
	return h.Delete(registry)
}

// revoke asks the bridge to delete e's password (RFC 7009).
func (h *Helper) revoke(ctx context.Context, reg string, e Entry) error {
	endpoint := e.RevocationEndpoint
	if endpoint == "" {
		_, md, err := h.discover(ctx, reg)
		if err != nil {
			return fmt.Errorf("revoke on the server: %w", err)
		}
		endpoint = md.RevocationEndpoint
	}
	if endpoint == "" {
		return errors.New("revoke on the server: it has no revocation endpoint")
	}
	if e.Bridge != "" {
		if err := h.sameOrigin("revocation_endpoint", e.Bridge, endpoint); err != nil {
			return fmt.Errorf("revoke on the server: %w", err)
		}
	}
	token := e.RefreshToken
	if token == "" {
		token = e.Password
	}
	resp, err := h.postForm(ctx, endpoint, url.Values{"token": {token}, "client_id": {ClientID}})
	if err != nil {
		return fmt.Errorf("revoke on the server: %w", err)
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("revoke on the server: %d %s", resp.status, resp.describe())
	}
	return nil
}

// oauthResponse is a decoded OAuth answer.
type oauthResponse struct {
	status int
	body   map[string]any
}

func (r oauthResponse) str(k string) string { v, _ := r.body[k].(string); return v }

func (r oauthResponse) num(k string) int { v, _ := r.body[k].(float64); return int(v) }

// describe is the server's error, fit to print.
func (r oauthResponse) describe() string {
	if d := r.str("error_description"); d != "" {
		return clean(r.str("error") + ": " + d)
	}
	return clean(r.str("error"))
}

func (h *Helper) postForm(ctx context.Context, u string, form url.Values) (oauthResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return oauthResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := h.o.HTTPClient.Do(req)
	if err != nil {
		return oauthResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return oauthResponse{}, fmt.Errorf("POST %s: %w", u, err)
	}
	out := oauthResponse{status: resp.StatusCode}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out.body); err != nil && resp.StatusCode != http.StatusOK {
			return out, fmt.Errorf("POST %s: %s", u, clean(resp.Status))
		}
	}
	return out, nil
}

// deviceLogin runs RFC 8628 against the bridge behind reg and returns the
// credential it mints.
func (h *Helper) deviceLogin(ctx context.Context, reg string) (Entry, error) {
	base, md, err := h.discover(ctx, reg)
	if err != nil {
		return Entry{}, err
	}
	form := url.Values{"client_id": {ClientID}, "client_name": {h.o.ClientName}, "host": {h.o.Hostname}}
	if h.o.Lifetime > 0 {
		form.Set("lifetime", h.o.Lifetime.String())
	}
	if h.o.ReadOnly {
		form.Set("read_only", "true")
	}
	start, err := h.postForm(ctx, md.DeviceAuthorizationEndpoint, form)
	if err != nil {
		return Entry{}, err
	}
	if start.status != http.StatusOK || start.str("device_code") == "" {
		return Entry{}, fmt.Errorf("start the login at %s: %d %s", base, start.status, start.describe())
	}
	verify, complete, code := start.str("verification_uri"), start.str("verification_uri_complete"), clean(start.str("user_code"))
	if complete == "" {
		complete = verify
	}
	// The link is where the person signs in: only on the bridge itself,
	// and nothing else (file:, custom schemes) is handed to the browser.
	for _, v := range []struct{ what, u string }{{"verification_uri", verify}, {"verification_uri_complete", complete}} {
		if err := h.sameOrigin(v.what, base, v.u); err != nil {
			return Entry{}, fmt.Errorf("start the login at %s: %w", base, err)
		}
	}
	fmt.Fprintf(h.o.Stderr, "To log in to %s, open\n\n    %s\n\nand check that the page shows the code %s. Waiting for approval...\n", reg, clean(complete), code)
	if h.o.OpenBrowser != nil {
		_ = h.o.OpenBrowser(complete)
	}
	interval := time.Duration(max(start.num("interval"), 1)) * time.Second
	deadline := h.o.Now().Add(time.Duration(max(start.num("expires_in"), 1)) * time.Second)
	for {
		select {
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		case <-time.After(interval):
		}
		if !h.o.Now().Before(deadline) {
			return Entry{}, errors.New("the code expired before it was approved; run the command again")
		}
		got, err := h.postForm(ctx, md.TokenEndpoint, url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {start.str("device_code")}, "client_id": {ClientID},
		})
		if err != nil {
			fmt.Fprintf(h.o.Stderr, "polling %s: %v (retrying)\n", md.TokenEndpoint, err)
			continue
		}
		if got.status == http.StatusOK {
			e := Entry{
				Bridge: base, RevocationEndpoint: md.RevocationEndpoint, Username: got.str("username"),
				Password: got.str("access_token"), RefreshToken: got.str("refresh_token"), PasswordID: got.str("password_id"),
			}
			if t, err := time.Parse(time.RFC3339, got.str("expires_at")); err == nil {
				e.ExpiresAt = t
			} else if n := got.num("expires_in"); n > 0 {
				e.ExpiresAt = h.o.Now().Add(time.Duration(n) * time.Second)
			}
			if e.Username == "" || e.Password == "" {
				return Entry{}, errors.New("the server's answer lacks the username or password")
			}
			fmt.Fprintf(h.o.Stderr, "Logged in to %s as %s (until %s).\n", reg, clean(e.Username), e.ExpiresAt.Local().Format(time.DateTime))
			return e, nil
		}
		switch got.str("error") {
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second // RFC 8628 §3.5
		case "access_denied":
			return Entry{}, fmt.Errorf("the login was denied: %s", got.describe())
		case "expired_token":
			return Entry{}, errors.New("the code expired before it was approved; run the command again")
		default:
			return Entry{}, fmt.Errorf("log in at %s: %d %s", base, got.status, got.describe())
		}
	}
}
