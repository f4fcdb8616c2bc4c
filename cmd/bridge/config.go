package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/internal/yamlconf"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/passwords"
	redisstore "github.com/registry-bridge/bridge/store/redis"
	"github.com/registry-bridge/bridge/tokens"
)

// fileConfig is the configuration file (README: Configuration reference). Each section's type
// belongs to the package that uses it; this type only composes them.
type fileConfig struct {
	Listen    string           `yaml:"listen"`
	PublicURL string           `yaml:"public_url"`
	TLS       *tlsConfig       `yaml:"tls"`
	OIDC      *oidc.Config     `yaml:"oidc"`
	Store     storeConfig      `yaml:"store"`
	Token     tokens.Config    `yaml:"token"`
	Passwords passwords.Config `yaml:"passwords"`
	Access    []groups.Rule    `yaml:"access"`
	Log       logConfig        `yaml:"log"`
	Server    serverConfig     `yaml:"server"`
	UI        uiConfig         `yaml:"ui"`

	// source is the file's content this configuration was loaded from.
	source string
	// tokenOptions holds the keys validation loaded, for newIssuer.
	tokenOptions *tokens.Options
	// policy is the compiled access rules.
	policy *groups.Policy
}

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
}

// loadConfig reads, decodes, defaults and validates the file, reporting
// every problem at once.
func loadConfig(path string) (*fileConfig, error) {
	if path == "" {
		return nil, errors.New("no config file: pass --config FILE or set BRIDGE_CONFIG")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := fileConfig{source: string(data)}
	if err := yamlconf.Decode(data, &c, os.LookupEnv); err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
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

func (c *fileConfig) validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		add(fmt.Errorf("listen: want host:port, got %q", c.Listen))
	}
	add(c.validatePublicURL())
	if c.TLS != nil {
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			add(errors.New("tls: set both cert_file and key_file"))
		}
		for key, f := range map[string]string{"tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile} {
			if f != "" {
				if _, err := os.Stat(f); err != nil {
					add(fmt.Errorf("%s: %v", key, err))
				}
			}
		}
	}
	if c.OIDC != nil {
		add(c.OIDC.Validate("oidc"))
		if u, err := url.Parse(c.OIDC.Issuer); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !c.Server.InsecureAllowHTTPIssuer {
			add(fmt.Errorf("oidc.issuer: %q is plain http: anyone on the path could forge logins (use https, or set server.insecure_allow_http_issuer)", c.OIDC.Issuer))
		}
		if c.Store.Redis != nil && c.OIDC.EncryptionKeyFile == "" && c.OIDC.ClientSecret == "" && c.OIDC.ClientSecretFile == "" {
			add(errors.New("oidc.encryption_key_file: required with store.redis when there is no client secret (it encrypts the identity provider's refresh tokens at rest; `bridge keys generate` writes one)"))
		}
	}
	if c.Store.Redis != nil {
		add(c.Store.Redis.Validate())
	}
	// Load validates the section and reads the key files once; serve and
	// the key commands use the result.
	if opts, err := c.Token.Load(); err != nil {
		add(err)
	} else {
		c.tokenOptions = &opts
	}
	add(c.Passwords.Validate("passwords"))
	// Compiling validates the rules; serve and policy explain use the result.
	if p, err := groups.Compile(c.Access); err != nil {
		add(err)
	} else {
		c.policy = p
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		add(fmt.Errorf("log.level: %v", err))
	}
	if c.Log.FlushInterval > 5*time.Second {
		add(fmt.Errorf("log.flush_interval: at most 5s, got %v", c.Log.FlushInterval))
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		add(fmt.Errorf("log.format: want json or text, got %q", c.Log.Format))
	}
	if c.Server.ShutdownTimeout < 0 {
		add(errors.New("server.shutdown_timeout: must not be negative"))
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
