package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/httpapi"
	"github.com/registry-bridge/bridge/internal/filewatch"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/cache"
	"github.com/registry-bridge/bridge/store/memory"
	redisstore "github.com/registry-bridge/bridge/store/redis"
	"github.com/registry-bridge/bridge/tokens"
	"github.com/registry-bridge/bridge/workload"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	path := configFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, useAll)
	if err != nil {
		return fmt.Errorf("%s: invalid configuration:\n%w", *path, err)
	}
	log, closeLog := newServerLogger(cfg.Log, stderr)
	defer closeLog()
	logDeprecations(log, cfg)
	return serve(ctx, *path, cfg, log)
}

// openStore returns the configured store. The embedded store is only for
// `serve`: other commands run in their own process and could not share it.
func openStore(cfg *loadedConfig, log *slog.Logger) (store.Store, error) {
	if cfg.Store.Redis == nil {
		return memory.New(time.Now), nil
	}
	return redisstore.New(*cfg.Store.Redis, time.Now, log)
}

// newIssuer builds the token issuer from the keys loadConfig read.
func newIssuer(cfg *loadedConfig, now func() time.Time) (*tokens.Issuer, error) {
	if cfg.keys == nil {
		return nil, errors.New("token: the keys were not loaded (loadConfig without useToken)")
	}
	opts := *cfg.keys
	opts.Now = now
	return tokens.NewIssuer(opts)
}

func serve(ctx context.Context, path string, cfg *loadedConfig, log *slog.Logger) error {
	issuer, err := newIssuer(cfg, time.Now)
	if err != nil {
		return err
	}
	var current atomic.Pointer[groups.Policy]
	current.Store(cfg.policy)
	logRules(log, cfg.Access)

	st, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	if cfg.Server.InsecureAllowHTTPPublicURL {
		log.Warn("server.insecure_allow_http_public_url is set: browser sessions may travel in clear")
	}
	if cfg.Server.InsecureAllowHTTPIssuer {
		log.Warn("server.insecure_allow_http_issuer is set: logins at the identity provider could be forged on the network path")
	}
	if cfg.Store.Redis == nil {
		log.Warn("using the embedded in-memory store: passwords are lost on restart and only ONE bridge instance may run; configure store.redis for production")
	}
	// The cache closes the store behind it. A store that is down at
	// start is not fatal (a crash loop would not bring it back): the cache
	// logs it once, keeps subscribing in the background, and /readyz
	// answers 503 until it is subscribed.
	if cfg.Store.Redis != nil {
		redisstore.RouteLibraryLog(log)
	}
	cached := cache.New(st, cache.Options{Now: time.Now, Log: log})
	defer cached.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := cached.Start(ctx); err != nil {
		// The cache has logged why, once; this only says serving goes on.
		log.Debug("starting without the store; it is retried in the background", "store", storeKind(cfg))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	login, acc, err := newLogin(cfg, st, cached, reg, log)
	if err != nil {
		cached.Close()
		return err
	}
	defer acc.Close()
	var resolver httpapi.GroupResolver = acc
	if login == nil {
		resolver = nil // only robots: a password's own groups
	}
	workloads, err := newWorkloads(cfg, acc, st, log)
	if err != nil {
		return err
	}
	handler, err := httpapi.New(httpapi.Options{
		Log:       log,
		Passwords: cached,
		Ping:      cached.Ready,
		Tokens:    issuer,
		Policy:    current.Load,
		JWKS:      func() any { return issuer.JWKS() },
		Service:   cfg.Token.Service,
		PublicURL: cfg.publicURL(),
		Registry:  reg,
		Now:       time.Now,
		Groups:    resolver,
		Login:     login,
		Workloads: workloads,
		Device:    deviceOptions(cfg, st, login),

		TrustedProxies: cfg.trustedProxies,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}

	go watchConfig(path, cfg, &current, log)(ctx)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "public_url", cfg.publicURL(),
		"token_endpoint", cfg.publicURL()+"/token", "service", cfg.Token.Service, "issuer", cfg.Token.Issuer,
		"tls", cfg.TLS != nil, "store", storeKind(cfg), "version", readBuild(version, commit).Version)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func storeKind(cfg *loadedConfig) string {
	if cfg.Store.Redis != nil {
		return "redis"
	}
	return "memory"
}

// watchConfig reloads the access rules on SIGHUP and whenever the file
// changes (internal/filewatch; Kubernetes ConfigMap swaps included). A bad
// new file keeps the old policy and logs every problem. The watch is in
// place when watchConfig returns; the returned loop runs until ctx ends.
func watchConfig(path string, running *loadedConfig, current *atomic.Pointer[groups.Policy], log *slog.Logger) func(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	run := filewatch.Start(path, running.source, hup, log, func(trigger string) {
		reloadConfig(path, running, current, log, trigger)
	})
	return func(ctx context.Context) {
		defer signal.Stop(hup)
		run(ctx)
	}
}

func reloadConfig(path string, running *loadedConfig, current *atomic.Pointer[groups.Policy], log *slog.Logger, why string) {
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		log.Error("config reload failed; keeping the running configuration", "trigger", why, "err", err.Error())
		return
	}
	logDeprecations(log, cfg)
	current.Store(cfg.policy)
	var restart []string
	for name, pair := range map[string][2]any{
		"listen": {running.Listen, cfg.Listen}, "public_url": {running.PublicURL, cfg.PublicURL},
		"tls": {running.TLS, cfg.TLS}, "oidc": {running.OIDC, cfg.OIDC}, "store": {running.Store, cfg.Store},
		"token": {running.Token, cfg.Token}, "passwords": {running.Passwords, cfg.Passwords},
		"sessions": {running.Sessions, cfg.Sessions}, "revalidation": {running.Revalidation, cfg.Revalidation},
		"log": {running.Log, cfg.Log}, "server": {running.Server, cfg.Server}, "ui": {running.UI, cfg.UI},
		"workloads": {running.Workloads, cfg.Workloads}, "device": {running.Device, cfg.Device},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			restart = append(restart, name)
		}
	}
	log.Info("access rules reloaded", "trigger", why, "rules", len(cfg.Access))
	logRules(log, cfg.Access)
	if len(restart) > 0 {
		log.Warn("these sections changed but take effect only after a restart", "sections", restart)
	}
}

// logDeprecations warns about each renamed key the file still uses.
func logDeprecations(log *slog.Logger, cfg *loadedConfig) {
	for _, d := range cfg.deprecations {
		log.Warn("deprecated configuration key", "key", d.old, "use", d.new, "see", "README: Migration notes")
	}
}

// newWorkloads returns the verifier of workload OIDC tokens, or nil when
// the file trusts no issuer. No issuer is contacted before its first token.
func newWorkloads(cfg *loadedConfig, acc *accounts.Accounts, st store.Store, log *slog.Logger) (httpapi.WorkloadVerifier, error) {
	if len(cfg.Workloads.Issuers) == 0 {
		return nil, nil
	}
	v, err := workload.New(cfg.Workloads, workload.Options{Accounts: acc, Locks: st, Log: log})
	if err != nil {
		return nil, err
	}
	log.Info("workload tokens accepted", "issuers", v.Issuers())
	return v, nil
}
