package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/httpapi"
	"github.com/registry-bridge/bridge/internal/yamlconf"
	"github.com/registry-bridge/bridge/oidc"
	redisstore "github.com/registry-bridge/bridge/store/redis"
	"github.com/registry-bridge/bridge/tokens"
	"github.com/registry-bridge/bridge/workload"
)

// fileConfig is the configuration file (README: Configuration reference). Each section's type
// belongs to the package that uses it; this type only composes them. What loading derives from
// it (keys, compiled rules) is in loadedConfig.
type fileConfig struct {
	Listen       string                      `yaml:"listen"`
	PublicURL    string                      `yaml:"public_url"`
	TLS          *tlsConfig                  `yaml:"tls"`
	OIDC         *oidcSection                `yaml:"oidc"`
	Store        storeConfig                 `yaml:"store"`
	Token        tokens.Config               `yaml:"token"`
	Passwords    passwordsSection            `yaml:"passwords"`
	Sessions     httpapi.SessionConfig       `yaml:"sessions"`
	Revalidation accounts.RevalidationConfig `yaml:"revalidation"`
	Access       groups.Rules                `yaml:"access"`
	Log          logConfig                   `yaml:"log"`
	Server       serverConfig                `yaml:"server"`
	UI           uiConfig                    `yaml:"ui"`
	Workloads    workload.Config             `yaml:"workloads"`
	Device       httpapi.DeviceConfig        `yaml:"device"` // the terminal login (docs/device-login.md)
}

// oidcSection is the oidc section as a file may spell it: oidc.Config plus
// the keys that moved out of it (README: Migration notes). loadConfig
// copies them to their new place.
type oidcSection struct {
	oidc.Config `yaml:",inline"`
	// Deprecated: sessions.idle_timeout, sessions.max_age, revalidation.grace.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	SessionMaxAge      time.Duration `yaml:"session_max_age"`
	RevalidateGrace    time.Duration `yaml:"revalidate_grace"`
}

// passwordsSection is the passwords section as a file may spell it.
type passwordsSection struct {
	accounts.PasswordsConfig `yaml:",inline"`
	// Deprecated: revalidation.every.
	RevalidateEvery time.Duration `yaml:"revalidate_every"`
}

// loadedConfig is a configuration file as loadConfig returns it: the file
// and what loading derived from it for the sections the command uses.
type loadedConfig struct {
	fileConfig
	// source is the file's content this configuration was loaded from.
	source string
	// keys are the token keys loading read; nil unless the command uses
	// the token section.
	keys *tokens.Options
	// policy is the compiled access rules; nil unless the command uses
	// the access section.
	policy *groups.Policy
	// trustedProxies is server.trusted_proxies parsed; nil unless the
	// command uses the server section.
	trustedProxies []netip.Prefix
	// deprecations are the renamed keys the file still uses.
	deprecations []deprecation
}

// deprecation is a key of the file that has a new name.
type deprecation struct{ old, new string }

func (d deprecation) String() string {
	return fmt.Sprintf("%s is deprecated: use %s (README: Migration notes)", d.old, d.new)
}

// sections is a set of the file's top-level sections, the ones a command
// uses: loadConfig validates those and only decodes the others, so a
// command runs without the files and secrets of sections it does not use
// (passwords commands without the OIDC client secret or the signing key).
type sections uint16

const (
	useListen sections = 1 << iota
	usePublicURL
	useTLS
	useOIDC
	useStore
	useToken
	usePasswords
	useSessions
	useRevalidation
	useAccess
	useLog
	useServer
	useUI
	useWorkloads
	useDevice

	// useAll is what serve and config check need: everything.
	useAll = 1<<iota - 1
)

type uiConfig struct {
	// Title heads every page. Default "Container registry".
	Title string `yaml:"title"`
	// RegistryHost is the host[:port] people docker login to, shown in
	// the ready-made commands. Default token.service.
	RegistryHost string `yaml:"registry_host"`
}

type tlsConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type storeConfig struct {
	// Redis, when set, is the shared store; without it the bridge keeps
	// everything in memory (one instance, lost on restart).
	Redis *redisstore.Config `yaml:"redis"`
}

type logConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
	// FlushInterval batches log writes: info lines (the per-request
	// audit events) are written out at least this often; warnings and
	// errors at once. Default 100ms; negative writes every line at once.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

type serverConfig struct {
	// ShutdownTimeout bounds the graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// InsecureAllowHTTPPublicURL permits an http:// public_url on a
	// non-loopback host; browsers then send session cookies in clear.
	InsecureAllowHTTPPublicURL bool `yaml:"insecure_allow_http_public_url"`
	// InsecureAllowHTTPIssuer permits an http:// oidc.issuer on a
	// non-loopback host; discovery, keys and tokens then travel in clear.
	InsecureAllowHTTPIssuer bool `yaml:"insecure_allow_http_issuer"`
	// TrustedProxies are the proxies (CIDRs or addresses) whose
	// X-Forwarded-For names the client; none by default, when the peer's
	// address is the client's (docs/operations.md, "In front of the
	// bridge").
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// parseTrustedProxies reads server.trusted_proxies, reporting every bad
// entry with its key path.
func (c *serverConfig) parseTrustedProxies(prefix string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, v := range c.TrustedProxies {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil || a.Zone() != "" {
				errs = append(errs, fmt.Errorf("%s.trusted_proxies[%d]: want a CIDR such as 10.0.0.0/8 or an address, got %q", prefix, i, v))
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

// loadConfig reads, decodes, defaults and validates the file, reporting
// every problem at once. Every section is decoded strictly (unknown keys
// are errors), but only the sections in use are validated and have their
// files read. Relative paths in the file are taken relative to the
// file's directory.
func loadConfig(path string, use sections) (*loadedConfig, error) {
	if path == "" {
		return nil, errors.New("no config file: pass --config FILE or set BRIDGE_CONFIG")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := loadedConfig{source: string(data)}
	if err := yamlconf.Decode(data, &c.fileConfig, os.LookupEnv); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	c.resolvePaths(dir)
	deprecations, err := c.migrate()
	if err != nil {
		return nil, err
	}
	c.deprecations = deprecations
	c.setDefaults()
	if err := c.validate(use); err != nil {
		return nil, err
	}
	return &c, nil
}

// resolvePaths makes every relative file name of the file (each `…_file`
// key and token.previous_keys) relative to dir, the file's directory.
func (c *fileConfig) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.TLS != nil {
		abs(&c.TLS.CertFile)
		abs(&c.TLS.KeyFile)
	}
	if c.OIDC != nil {
		abs(&c.OIDC.ClientSecretFile)
		abs(&c.OIDC.EncryptionKeyFile)
	}
	if c.Store.Redis != nil {
		abs(&c.Store.Redis.PasswordFile)
	}
	for i := range c.Workloads.Issuers {
		abs(&c.Workloads.Issuers[i].CertificateAuthorityFile)
	}
	abs(&c.Token.SigningKeyFile)
	abs(&c.Token.CertificateFile)
	for i := range c.Token.PreviousKeys {
		abs(&c.Token.PreviousKeys[i])
	}
}

// migrate copies the keys that moved to their new place and returns the
// old ones the file uses. An old and a new key both set to different
// values is an error naming both.
func (c *fileConfig) migrate() ([]deprecation, error) {
	type rename struct {
		deprecation
		from, to *time.Duration
	}
	var renames []rename
	if c.OIDC != nil {
		renames = append(renames,
			rename{deprecation{"oidc.session_idle_timeout", "sessions.idle_timeout"}, &c.OIDC.SessionIdleTimeout, &c.Sessions.IdleTimeout},
			rename{deprecation{"oidc.session_max_age", "sessions.max_age"}, &c.OIDC.SessionMaxAge, &c.Sessions.MaxAge},
			rename{deprecation{"oidc.revalidate_grace", "revalidation.grace"}, &c.OIDC.RevalidateGrace, &c.Revalidation.Grace})
	}
	renames = append(renames,
		rename{deprecation{"passwords.revalidate_every", "revalidation.every"}, &c.Passwords.RevalidateEvery, &c.Revalidation.Every})
	var found []deprecation
	var errs []error
	for _, r := range renames {
		switch {
		case *r.from == 0:
			continue
		case *r.to == 0:
			*r.to = *r.from
		case *r.to != *r.from:
			errs = append(errs, fmt.Errorf("%s: %v conflicts with %s: %v; remove the deprecated %s", r.old, *r.from, r.new, *r.to, r.old))
			continue
		}
		found = append(found, r.deprecation)
	}
	return found, errors.Join(errs...)
}

func (c *fileConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5001"
	}
	if c.OIDC != nil {
		c.OIDC.SetDefaults()
	}
	c.Token.SetDefaults()
	c.Passwords.SetDefaults()
	c.Sessions.SetDefaults()
	c.Revalidation.SetDefaults()
	c.Workloads.SetDefaults()
	c.Device.SetDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.FlushInterval == 0 {
		c.Log.FlushInterval = 100 * time.Millisecond
	}
	if c.UI.RegistryHost == "" {
		c.UI.RegistryHost = c.Token.Service
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 15 * time.Second
	}
}

// validate checks the sections in use, loading the keys and compiling the
// rules when the token and access sections are among them.
func (c *loadedConfig) validate(use sections) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if use&useListen != 0 {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			add(fmt.Errorf("listen: want host:port, got %q", c.Listen))
		}
	}
	if use&usePublicURL != 0 {
		add(c.validatePublicURL())
	}
	if use&useTLS != 0 && c.TLS != nil {
		add(c.TLS.Validate("tls"))
	}
	if use&useOIDC != 0 && c.OIDC != nil {
		add(c.OIDC.Validate("oidc"))
		if u, err := url.Parse(c.OIDC.Issuer); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !c.Server.InsecureAllowHTTPIssuer {
			add(fmt.Errorf("oidc.issuer: %q is plain http: anyone on the path could forge logins (use https, or set server.insecure_allow_http_issuer)", c.OIDC.Issuer))
		}
		if c.Store.Redis != nil && c.OIDC.EncryptionKeyFile == "" && c.OIDC.ClientSecret == "" && c.OIDC.ClientSecretFile == "" {
			add(errors.New("oidc.encryption_key_file: required with store.redis when there is no client secret (it encrypts the identity provider's refresh tokens at rest; `bridge keys generate` writes one)"))
		}
	}
	if use&useStore != 0 && c.Store.Redis != nil {
		add(c.Store.Redis.Validate(redisstore.KeyPath))
	}
	if use&useToken != 0 {
		// Load validates the section and reads the key files once; serve
		// and the key commands use the result.
		if opts, err := c.Token.Load("token"); err != nil {
			add(err)
		} else {
			c.keys = &opts
		}
	}
	if use&usePasswords != 0 {
		add(c.Passwords.Validate("passwords"))
	}
	if use&useSessions != 0 {
		add(c.Sessions.Validate("sessions"))
	}
	if use&useRevalidation != 0 {
		add(c.Revalidation.Validate("revalidation"))
	}
	if use&useDevice != 0 {
		add(c.Device.Validate("device"))
		if !c.Device.Disabled && c.Device.Lifetime > c.Passwords.MaxLifetime {
			add(fmt.Errorf("device.lifetime: %v is longer than passwords.max_lifetime %v", c.Device.Lifetime, c.Passwords.MaxLifetime))
		}
	}
	if use&useAccess != 0 {
		// Compiling validates the rules; serve and policy explain use the
		// result.
		if p, err := groups.Compile(c.Access); err != nil {
			add(err)
		} else {
			c.policy = p
		}
	}
	if use&useWorkloads != 0 {
		add(c.Workloads.Validate("workloads"))
	}
	if use&useLog != 0 {
		add(c.Log.Validate("log"))
	}
	if use&useServer != 0 && c.Server.ShutdownTimeout < 0 {
		add(errors.New("server.shutdown_timeout: must not be negative"))
	}
	if use&useServer != 0 {
		if p, err := c.Server.parseTrustedProxies("server"); err != nil {
			add(err)
		} else {
			c.trustedProxies = p
		}
	}
	return errors.Join(errs...)
}

// Validate checks the section; its key paths start with prefix.
func (c *tlsConfig) Validate(prefix string) error {
	var errs []error
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, fmt.Errorf("%s: set both cert_file and key_file", prefix))
	}
	for _, f := range []struct{ key, file string }{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if f.file != "" {
			if _, err := os.Stat(f.file); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %v", prefix, f.key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Validate checks the section; its key paths start with prefix.
func (c *logConfig) Validate(prefix string) error {
	var errs []error
	if _, err := parseLevel(c.Level); err != nil {
		errs = append(errs, fmt.Errorf("%s.level: %v", prefix, err))
	}
	if c.FlushInterval > 5*time.Second {
		errs = append(errs, fmt.Errorf("%s.flush_interval: at most 5s, got %v", prefix, c.FlushInterval))
	}
	if c.Format != "json" && c.Format != "text" {
		errs = append(errs, fmt.Errorf("%s.format: want json or text, got %q", prefix, c.Format))
	}
	return errors.Join(errs...)
}

func (c *fileConfig) validatePublicURL() error {
	if c.PublicURL == "" {
		return errors.New("public_url: required (the URL registries and browsers use to reach the bridge)")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public_url: want an absolute http(s) URL, got %q", c.PublicURL)
	}
	if strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("public_url: want scheme://host[:port] without a path, got %q", c.PublicURL)
	}
	if u.Scheme == "http" && c.OIDC != nil && !isLoopbackHost(u.Hostname()) && !c.Server.InsecureAllowHTTPPublicURL {
		return fmt.Errorf("public_url: %q is plain http on a non-loopback host; browser sessions would travel in clear (use https, or set server.insecure_allow_http_public_url)", c.PublicURL)
	}
	return nil
}

// publicURL returns public_url without a trailing slash.
func (c *fileConfig) publicURL() string { return strings.TrimSuffix(c.PublicURL, "/") }

func isLoopbackHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	if err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(c logConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newServerLogger is newLogger behind a logBuffer, unless
// log.flush_interval is negative; the caller closes the buffer.
func newServerLogger(c logConfig, w io.Writer) (*slog.Logger, func()) {
	if c.FlushInterval < 0 {
		return newLogger(c, w), func() {}
	}
	buf := newLogBuffer(w, c.FlushInterval)
	log := newLogger(c, buf)
	return slog.New(flushOnWarn{log.Handler(), buf}), buf.Close
}
