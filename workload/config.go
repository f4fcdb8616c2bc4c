package workload

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/accounts"
)

// Config is the config file's `workloads:` section: the OIDC issuers whose
// tokens CI jobs and Kubernetes pods may present as their password.
type Config struct {
	// Issuers are the trusted issuers, each with its own rules.
	Issuers []IssuerConfig `yaml:"issuers" json:"issuers"`
	// MaxRefreshTokenLifetime caps every issuer's refresh_token_lifetime.
	// Default 1h.
	MaxRefreshTokenLifetime time.Duration `yaml:"max_refresh_token_lifetime" json:"max_refresh_token_lifetime"`
	// MaxRefreshTokensPerWorkload caps one workload's (one issuer and
	// mapped username's) live refresh tokens; past it a token response
	// carries no refresh token. Default accounts.DefaultMaxWorkloadRefresh.
	MaxRefreshTokensPerWorkload int `yaml:"max_refresh_tokens_per_workload" json:"max_refresh_tokens_per_workload"`
	// CacheSize bounds how many verified tokens are kept in memory
	// (until their exp). Default 10000.
	CacheSize int `yaml:"cache_size" json:"cache_size"`
}

// IssuerConfig is one trusted issuer, modeled on Kubernetes'
// AuthenticationConfiguration.jwt[] (JWTAuthenticator).
type IssuerConfig struct {
	// Name names the issuer in logs, metrics and `bridge policy explain`.
	Name string `yaml:"name" json:"name"`
	// URL is the issuer: tokens' iss must equal it exactly, and it is the
	// base of discovery unless DiscoveryURL is set.
	URL string `yaml:"url" json:"url"`
	// DiscoveryURL, if set, is where the discovery document is read (for
	// example a Kubernetes API server reached inside the cluster); the
	// document's issuer must still equal URL.
	DiscoveryURL string `yaml:"discovery_url" json:"discovery_url"`
	// CertificateAuthorityFile is a PEM bundle that replaces the system
	// roots for discovery and keys (a private CA).
	CertificateAuthorityFile string `yaml:"certificate_authority_file" json:"certificate_authority_file"`
	// Audiences: a token's aud must contain at least one. Required.
	Audiences []string `yaml:"audiences" json:"audiences"`
	// Algorithms are the accepted signature algorithms. Default RS256,
	// ES256. Never none, never HMAC.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// MaxTokenAge, if set, refuses tokens issued (iat) longer ago.
	MaxTokenAge time.Duration `yaml:"max_token_age" json:"max_token_age"`
	// Reuse is until_exp (the same token works until it expires; the
	// default) or one_shot (each token once, by jti, on every replica).
	Reuse string `yaml:"reuse" json:"reuse"`
	// RefreshTokenLifetime is the life of the bridge's own refresh token
	// handed out with offline_token=true or access_type=offline.
	// Default 15m; at most max_refresh_token_lifetime.
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime" json:"refresh_token_lifetime"`
	// BasicUsername, if set, is the username a client must send with the
	// token (or the mapped username); else any username is accepted.
	BasicUsername string `yaml:"basic_username" json:"basic_username"`
	// ClaimValidationRules must all hold for a token to be accepted.
	ClaimValidationRules []ClaimValidationRule `yaml:"claim_validation_rules" json:"claim_validation_rules"`
	// ClaimMappings make the username and groups.
	ClaimMappings ClaimMappings `yaml:"claim_mappings" json:"claim_mappings"`
	// UserValidationRules must all hold for the mapped user.
	UserValidationRules []UserValidationRule `yaml:"user_validation_rules" json:"user_validation_rules"`
}

// ClaimValidationRule is either claim + required_value (the claim is a
// string equal to the value) or a CEL expression over `claims` that
// yields a bool.
type ClaimValidationRule struct {
	Claim         string `yaml:"claim" json:"claim"`
	RequiredValue string `yaml:"required_value" json:"required_value"`
	Expression    string `yaml:"expression" json:"expression"`
	// Message is logged when the rule fails.
	Message string `yaml:"message" json:"message"`
}

// UserValidationRule is a CEL expression over `user` (username, groups)
// that yields a bool.
type UserValidationRule struct {
	Expression string `yaml:"expression" json:"expression"`
	Message    string `yaml:"message" json:"message"`
}

// ClaimMappings say how a token becomes a user.
type ClaimMappings struct {
	// Username is required. Its prefix is required and never empty: it
	// is the issuer's namespace of usernames, which no person, robot or
	// other issuer can enter.
	Username PrefixedClaim `yaml:"username" json:"username"`
	// Groups are optional; without them the workload has only the
	// rules that match its username.
	Groups PrefixedClaim `yaml:"groups" json:"groups"`
}

// PrefixedClaim is a claim name or a CEL expression over `claims`, and a
// prefix put before the result. Unlike Kubernetes, the prefix applies to
// expressions too, so that an expression cannot leave the namespace.
type PrefixedClaim struct {
	Claim      string `yaml:"claim" json:"claim"`
	Expression string `yaml:"expression" json:"expression"`
	Prefix     string `yaml:"prefix" json:"prefix"`
}

// Reuse policies.
const (
	ReuseUntilExp = "until_exp"
	ReuseOneShot  = "one_shot"
)

// allowedAlgorithms are the asymmetric JWS algorithms (RFC 7518 §3.1).
var allowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// SetDefaults fills unset fields with their defaults.
func (c *Config) SetDefaults() {
	if c.MaxRefreshTokenLifetime == 0 {
		c.MaxRefreshTokenLifetime = time.Hour
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10_000
	}
	if c.MaxRefreshTokensPerWorkload == 0 {
		c.MaxRefreshTokensPerWorkload = accounts.DefaultMaxWorkloadRefresh
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		if len(is.Algorithms) == 0 {
			is.Algorithms = []string{"RS256", "ES256"}
		}
		if is.Reuse == "" {
			is.Reuse = ReuseUntilExp
		}
		if is.RefreshTokenLifetime == 0 {
			is.RefreshTokenLifetime = min(15*time.Minute, c.MaxRefreshTokenLifetime)
		}
	}
}

// Validate reports every problem at once, with key paths under prefix,
// compiling every expression (so `bridge config check` finds type errors).
func (c *Config) Validate(prefix string) error {
	_, err := compile(c, prefix)
	return err
}

// compile validates c and compiles its issuers.
func compile(c *Config, prefix string) ([]*issuerRules, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxRefreshTokenLifetime < time.Minute {
		add("%s.max_refresh_token_lifetime: must be at least 1m, got %v", prefix, c.MaxRefreshTokenLifetime)
	}
	if c.MaxRefreshTokensPerWorkload < 1 {
		add("%s.max_refresh_tokens_per_workload: must be positive, got %d", prefix, c.MaxRefreshTokensPerWorkload)
	}
	if c.CacheSize < 1 {
		add("%s.cache_size: must be positive, got %d", prefix, c.CacheSize)
	}
	env, err := newCELEnv()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	names, urls := map[string]int{}, map[string]int{}
	var rules []*issuerRules
	for i := range c.Issuers {
		is := &c.Issuers[i]
		p := fmt.Sprintf("%s.issuers[%d]", prefix, i)
		switch {
		case is.Name == "":
			add("%s.name: required", p)
		case strings.ContainsAny(is.Name, " :/\t\n") || len(is.Name) > 64:
			add("%s.name: %q must be at most 64 characters without white space, ':' or '/'", p, is.Name)
		default:
			if j, dup := names[is.Name]; dup {
				add("%s.name: %q is also the name of issuers[%d]", p, is.Name, j)
			}
			names[is.Name] = i
		}
		if err := checkURL(is.URL); err != nil {
			add("%s.url: %v", p, err)
		} else if j, dup := urls[is.URL]; dup {
			add("%s.url: %q is also the url of issuers[%d]: merge their rules", p, is.URL, j)
		} else {
			urls[is.URL] = i
		}
		if is.DiscoveryURL != "" {
			if err := checkURL(is.DiscoveryURL); err != nil {
				add("%s.discovery_url: %v", p, err)
			}
		}
		if is.CertificateAuthorityFile != "" {
			if _, err := loadPool(is.CertificateAuthorityFile); err != nil {
				add("%s.certificate_authority_file: %v", p, err)
			}
		}
		if len(is.Audiences) == 0 {
			add("%s.audiences: at least one is required (a token meant for another service must not open the registry)", p)
		}
		for j, a := range is.Audiences {
			if a == "" {
				add("%s.audiences[%d]: empty", p, j)
			}
		}
		for j, a := range is.Algorithms {
			if !slices.Contains(allowedAlgorithms, a) {
				add("%s.algorithms[%d]: %q is not allowed; use one of %s (never none or HMAC)", p, j, a, strings.Join(allowedAlgorithms, ", "))
			}
		}
		if is.MaxTokenAge < 0 {
			add("%s.max_token_age: must not be negative", p)
		}
		if is.Reuse != ReuseUntilExp && is.Reuse != ReuseOneShot {
			add("%s.reuse: want %s or %s, got %q", p, ReuseUntilExp, ReuseOneShot, is.Reuse)
		}
		if is.RefreshTokenLifetime < time.Minute || is.RefreshTokenLifetime > c.MaxRefreshTokenLifetime {
			add("%s.refresh_token_lifetime: want between 1m and max_refresh_token_lifetime (%v), got %v", p, c.MaxRefreshTokenLifetime, is.RefreshTokenLifetime)
		}
		if is.BasicUsername != "" {
			if err := accounts.ValidUsername(is.BasicUsername); err != nil {
				add("%s.basic_username: %v", p, err)
			}
		}
		r, err := compileRules(env, is, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	// Each issuer's username prefix is its own namespace: no prefix may
	// start another, or one issuer could mint the other's usernames.
	for i := range c.Issuers {
		for j := range c.Issuers {
			a, b := c.Issuers[i].ClaimMappings.Username.Prefix, c.Issuers[j].ClaimMappings.Username.Prefix
			if i != j && a != "" && b != "" && strings.HasPrefix(b, a) && (len(a) < len(b) || i < j) {
				add("%s.issuers[%d].claim_mappings.username.prefix: %q overlaps issuers[%d]'s %q: one issuer could make the other's usernames", prefix, j, b, i, a)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rules, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("required")
	case err != nil:
		return err
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return fmt.Errorf("%q: want https (plain http only on loopback, for tests)", s)
	case u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q: want https://host[/path], without user, query or fragment", s)
	}
	return nil
}

func isLoopback(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }

// Prefixes returns each issuer's username prefix by issuer name, for
// accounts.Options.WorkloadPrefixes.
func (c *Config) Prefixes() map[string]string {
	m := make(map[string]string, len(c.Issuers))
	for _, is := range c.Issuers {
		m[is.Name] = is.ClaimMappings.Username.Prefix
	}
	return m
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
