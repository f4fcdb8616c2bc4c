package oidc

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Config is the config file's `oidc:` section: the upstream OpenID Connect
// provider people log in at.
type Config struct {
	// Issuer is the provider's issuer URL; discovery is read from
	// <issuer>/.well-known/openid-configuration.
	Issuer string `yaml:"issuer" json:"issuer"`
	// ClientID and ClientSecret are the bridge's client at the provider.
	ClientID     string `yaml:"client_id" json:"client_id"`
	ClientSecret string `yaml:"client_secret" json:"-"`
	// ClientSecretFile, if set, holds the client secret (trailing
	// newlines are trimmed). Set it or ClientSecret, not both.
	ClientSecretFile string `yaml:"client_secret_file" json:"client_secret_file,omitempty"`
	// Scopes requested at login. Default: openid, profile, email, groups,
	// offline_access.
	Scopes []string `yaml:"scopes" json:"scopes"`
	// UsernameClaim names the claim that becomes the docker login
	// username; when it is absent a verified email is used. Default
	// preferred_username.
	UsernameClaim string `yaml:"username_claim" json:"username_claim"`
	// GroupsClaim names the claim holding the user's groups, an array or
	// a single string, read from the ID token, else from userinfo.
	// Default groups.
	GroupsClaim string `yaml:"groups_claim" json:"groups_claim"`
	// AllowedGroups, when not empty, admits only members of these groups.
	AllowedGroups []string `yaml:"allowed_groups" json:"allowed_groups,omitempty"`
	// AuthParams are extra parameters of the authorization request, e.g.
	// Google's access_type: offline and prompt: consent, without which
	// it issues no refresh token. The bridge's own parameters (state,
	// nonce, PKCE, scope, redirect_uri…) cannot be overridden.
	AuthParams map[string]string `yaml:"auth_params" json:"auth_params,omitempty"`
	// DisplayName names the provider on the login button ("Log in with
	// Okta"). Default: the issuer's host.
	DisplayName string `yaml:"display_name" json:"display_name,omitempty"`
	// EncryptionKeyFile holds the key that encrypts the users' refresh
	// tokens at rest (32 random bytes, raw or base64). When it is unset,
	// a key derived from the client secret is used with store.redis (so
	// rotating the secret makes users log in again), and a random key
	// with the embedded store, which forgets everything on restart anyway.
	EncryptionKeyFile string `yaml:"encryption_key_file" json:"encryption_key_file,omitempty"`
}

// SetDefaults fills unset fields with their defaults.
func (c *Config) SetDefaults() {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email", "groups", "offline_access"}
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "preferred_username"
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
}

// Validate reports every problem at once; each message starts with the
// key path under prefix (normally "oidc").
func (c *Config) Validate(prefix string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if c.Issuer == "" {
		bad("issuer", "required")
	} else if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("issuer", "want an http(s) URL, got %q", c.Issuer)
	}
	if c.ClientID == "" {
		bad("client_id", "required")
	}
	if c.ClientSecret != "" && c.ClientSecretFile != "" {
		bad("client_secret_file", "set either client_secret or client_secret_file, not both")
	}
	if c.ClientSecretFile != "" {
		if _, err := os.Stat(c.ClientSecretFile); err != nil {
			bad("client_secret_file", "%v", err)
		}
	}
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "openid") {
		bad("scopes", `must include "openid"`)
	}
	if c.EncryptionKeyFile != "" {
		if _, err := LoadEncryptionKey(c.EncryptionKeyFile); err != nil {
			bad("encryption_key_file", "%v", err)
		}
	}
	for k := range c.AuthParams {
		switch k {
		case "state", "nonce", "code_challenge", "code_challenge_method", "client_id", "redirect_uri", "response_type", "scope":
			bad("auth_params."+k, "set by the bridge itself; it cannot be overridden")
		}
	}
	for i, g := range c.AllowedGroups {
		if strings.TrimSpace(g) == "" {
			bad(fmt.Sprintf("allowed_groups[%d]", i), "empty group name")
		}
	}
	return errors.Join(errs...)
}

// Secret returns the client secret, reading ClientSecretFile if set.
func (c *Config) Secret() (string, error) {
	if c.ClientSecretFile == "" {
		return c.ClientSecret, nil
	}
	b, err := os.ReadFile(c.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("oidc: read client secret: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
