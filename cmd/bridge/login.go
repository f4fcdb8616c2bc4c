package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/httpapi"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
)

// newLogin wires the account rules, and the browser login with group
// revalidation when the configuration has an oidc section; without one
// the login options are nil, there are only robots, and passwords act
// with the groups they were minted with.
func newLogin(cfg *loadedConfig, st, cached store.Store, reg prometheus.Registerer, log *slog.Logger) (*httpapi.LoginOptions, *accounts.Accounts, error) {
	if cfg.OIDC == nil {
		log.Info("no oidc section: browser login is off; mint passwords with `bridge passwords create`")
		return nil, accounts.New(accounts.Options{Store: st, Users: cached, Limits: cfg.Passwords.Limits(), Log: log,
			WorkloadPrefixes: cfg.Workloads.Prefixes()}), nil
	}
	sealer, err := newSealer(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	provider, err := oidc.New(oidc.Options{
		Config:      cfg.OIDC.Config,
		RedirectURL: cfg.publicURL() + "/callback",
		HTTPClient:  &http.Client{Timeout: 10 * time.Second},
		Log:         log,
	})
	if err != nil {
		return nil, nil, err
	}
	revalidations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bridge_revalidations_total",
		Help: "Group revalidations at the identity provider, by result (ok, rejected, unreachable, skipped_locked, busy, error).",
	}, []string{"result"})
	reg.MustRegister(revalidations)
	acc := accounts.New(accounts.Options{
		Store:         st,
		Users:         cached,
		Provider:      provider,
		Sealer:        sealer,
		Limits:        cfg.Passwords.Limits(),
		Revalidation:  cfg.Revalidation.Revalidation(),
		SessionMaxAge: cfg.Sessions.MaxAge,
		Log:           log,
		// People cannot take usernames inside a workload issuer's namespace.
		WorkloadPrefixes: cfg.Workloads.Prefixes(),
		Observe:          func(result string) { revalidations.WithLabelValues(result).Inc() },
	})
	return &httpapi.LoginOptions{
		Provider:    provider,
		Sessions:    st,
		Accounts:    acc,
		Sealer:      sealer,
		Limits:      cfg.Passwords.Limits(),
		IdleTimeout: cfg.Sessions.IdleTimeout,
		MaxAge:      cfg.Sessions.MaxAge,
		Registry:    cfg.UI.RegistryHost,
		Title:       cfg.UI.Title,
	}, acc, nil
}

// deviceOptions turns on the terminal login (docs/device-login.md)
// unless device.disabled is set; it needs the browser login.
func deviceOptions(cfg *loadedConfig, st store.Store, login *httpapi.LoginOptions) *httpapi.DeviceOptions {
	if login == nil {
		return nil
	}
	return cfg.Device.Options(st)
}

// newSealer returns what encrypts refresh tokens at rest: the key of
// oidc.encryption_key_file; else, with Redis, a key derived from the
// client secret (which a copy of Redis does not hold); else, for the
// embedded store that forgets everything on restart, a random key.
func newSealer(cfg *loadedConfig, log *slog.Logger) (*oidc.Sealer, error) {
	switch {
	case cfg.OIDC.EncryptionKeyFile != "":
		key, err := oidc.LoadEncryptionKey(cfg.OIDC.EncryptionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("oidc.encryption_key_file: %w", err)
		}
		return oidc.NewSealer(key)
	case cfg.Store.Redis != nil:
		secret, err := cfg.OIDC.Secret()
		if err != nil {
			return nil, err
		}
		log.Warn("oidc.encryption_key_file is not set: refresh tokens are encrypted with a key derived from the client secret; rotating the secret makes every browser user log in again")
		return oidc.DerivedSealer(secret)
	default:
		return oidc.RandomSealer()
	}
}
