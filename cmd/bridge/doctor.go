package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/doctor"
	"github.com/registry-bridge/bridge/oidc"
)

// doctorTimeout bounds each request doctor makes.
const doctorTimeout = 10 * time.Second

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("doctor")
	path := configFlag(f)
	registry := f.String("registry", "", "the registry's URL, e.g. https://registry.example.com (required)")
	registryConfig := f.String("registry-config", "", "the registry's config.yml, to compare key by key (optional)")
	insecure := f.Bool("insecure-skip-tls-verify", false, "do not verify TLS certificates (self-signed test setups)")
	asJSON := f.Bool("json", false, "print the report as JSON")
	if _, err := parseFlags(f, args); err != nil {
		return err
	}
	if *registry == "" {
		return fmt.Errorf("%w: doctor needs --registry URL", errUsage)
	}
	if !strings.Contains(*registry, "://") {
		*registry = "https://" + *registry
	}
	if u, err := url.Parse(*registry); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: --registry: want http(s)://host[:port], got %q", errUsage, *registry)
	}
	cfg, err := loadConfig(*path, useAll)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration (fix it first; `bridge config check` prints the same):\n", *path)
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return errSilent
	}
	o := doctor.Options{
		Registry:       *registry,
		PublicURL:      cfg.publicURL(),
		Token:          cfg.Token,
		OIDC:           oidcConfig(cfg),
		RegistryConfig: *registryConfig,
		Client:         doctorClient(*insecure),
	}
	if cfg.Store.Redis != nil {
		o.Store = func(ctx context.Context) error {
			st, err := openStore(cfg, discardLogger())
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
			defer cancel()
			return st.Ping(ctx)
		}
	}
	report := doctor.Run(ctx, o)
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if report.Failed() {
		return errSilent
	}
	return nil
}

// doctorClient returns the client of every doctor request: bounded in
// time, never following redirects (doctor reads where they point).
func doctorClient(insecure bool) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: doctorTimeout,
		DisableKeepAlives:     true,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for it
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       doctorTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// oidcConfig returns the oidc section, or nil when there is none.
func oidcConfig(cfg *loadedConfig) *oidc.Config {
	if cfg.OIDC == nil {
		return nil
	}
	return &cfg.OIDC.Config
}
