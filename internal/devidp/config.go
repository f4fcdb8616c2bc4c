package devidp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/registry-bridge/bridge/internal/yamlconf"
)

// DefaultTokenLifetime is the access-token and ID-token lifetime when the
// Config leaves it zero.
const DefaultTokenLifetime = 5 * time.Minute

// User is an account that can sign in at the provider.
type User struct {
	// Username is the login name typed into the form; it is also the
	// preferred_username claim.
	Username string `yaml:"username"`
	// Password is compared in plain text: this is a development provider.
	Password string `yaml:"password"`
	// Subject is the stable "sub" claim. When empty it is derived from
	// Username (see SubjectFor), so it survives restarts but is never the
	// username itself.
	Subject string `yaml:"subject"`
	// Email is the email claim (always reported as verified).
	Email string `yaml:"email"`
	// Name is the name claim.
	Name string `yaml:"name"`
	// Groups is the groups claim.
	Groups []string `yaml:"groups"`
	// Disabled users cannot sign in, and their refresh tokens and access
	// tokens stop working.
	Disabled bool `yaml:"disabled"`
}

// Client is a registered relying party. It authenticates at the token
// endpoint with client_secret_basic or client_secret_post, and must use
// PKCE with S256.
type Client struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
	// RedirectURIs are matched exactly. http is accepted only for loopback
	// hosts (localhost, 127.0.0.0/8, ::1).
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are accepted by the end_session endpoint in
	// addition to every redirect URI and the origin ("scheme://host/") of
	// every redirect URI.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
}

// Config is everything New needs. LoadConfig fills the YAML-tagged fields
// from a file; Log and Now are live values set by the caller.
type Config struct {
	// Issuer is the provider's URL, e.g. http://127.0.0.1:5556; Handler
	// serves the paths below it. http is allowed: development only.
	Issuer  string   `yaml:"issuer"`
	Users   []User   `yaml:"users"`
	Clients []Client `yaml:"clients"`
	// GroupsInIDToken puts groups, email and name into the ID token. When
	// false they are only in /userinfo, as many real providers do; the ID
	// token then carries sub and preferred_username only.
	GroupsInIDToken bool `yaml:"groups_in_id_token"`
	// AccessTokenLifetime and IDTokenLifetime default to
	// DefaultTokenLifetime.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime     time.Duration `yaml:"id_token_lifetime"`

	// Log receives sign-ins, failures and token grants; nil discards.
	Log *slog.Logger `yaml:"-"`
}

// LoadConfig reads a YAML file of the Config fields (issuer, users,
// clients, groups_in_id_token, access_token_lifetime, id_token_lifetime).
// Unknown keys are errors, and ${env:NAME} is replaced by the environment
// variable NAME. LoadConfig does not call Validate: cmd/devidp may supply
// the issuer from a flag.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("devidp: load config: %w", err)
	}
	var cfg Config
	if err := yamlconf.Decode(data, &cfg, os.LookupEnv); err != nil {
		return Config{}, fmt.Errorf("devidp: load config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports every problem in c at once, each prefixed with its key
// path.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.Issuer == "" {
		bad("issuer", "required")
	} else if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer", "want an absolute http(s) URL without query or fragment, got %q", c.Issuer)
	}
	if c.AccessTokenLifetime < 0 {
		bad("access_token_lifetime", "must not be negative")
	}
	if c.IDTokenLifetime < 0 {
		bad("id_token_lifetime", "must not be negative")
	}
	if len(c.Users) == 0 {
		bad("users", "at least one user is required")
	}
	usernames, subjects := map[string]bool{}, map[string]bool{}
	for i, u := range c.Users {
		path := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Username == "":
			bad(path+".username", "required")
		case usernames[u.Username]:
			bad(path+".username", "duplicate %q", u.Username)
		}
		usernames[u.Username] = true
		if u.Password == "" {
			bad(path+".password", "required")
		}
		sub := u.subject()
		if subjects[sub] {
			bad(path+".subject", "duplicate %q", sub)
		}
		subjects[sub] = true
	}
	if len(c.Clients) == 0 {
		bad("clients", "at least one client is required")
	}
	ids := map[string]bool{}
	for i, cl := range c.Clients {
		path := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.ID == "":
			bad(path+".id", "required")
		case ids[cl.ID]:
			bad(path+".id", "duplicate %q", cl.ID)
		}
		ids[cl.ID] = true
		if cl.Secret == "" {
			bad(path+".secret", "required")
		}
		if len(cl.RedirectURIs) == 0 {
			bad(path+".redirect_uris", "at least one is required")
		}
		for j, uri := range cl.RedirectURIs {
			if err := checkRedirectURI(uri); err != nil {
				bad(fmt.Sprintf("%s.redirect_uris[%d]", path, j), "%v", err)
			}
		}
		for j, uri := range cl.PostLogoutRedirectURIs {
			if err := checkRedirectURI(uri); err != nil {
				bad(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", path, j), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// checkRedirectURI accepts absolute https URLs, and http URLs on loopback.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("want an absolute URL without fragment, got %q", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("http is allowed only on loopback hosts, got %q", raw)
	default:
		return fmt.Errorf("want an http(s) URL, got %q", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SubjectFor returns the "sub" the provider gives username when the User
// sets no Subject: 20 hex characters of a SHA-256 of the username, stable
// across restarts.
func SubjectFor(username string) string {
	sum := sha256.Sum256([]byte("devidp subject\x00" + username))
	return hex.EncodeToString(sum[:10])
}

func (u User) subject() string {
	if u.Subject != "" {
		return u.Subject
	}
	return SubjectFor(u.Username)
}
