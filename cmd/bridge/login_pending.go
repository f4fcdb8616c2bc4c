package main

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-bridge/bridge/httpapi"
	"github.com/registry-bridge/bridge/store"
)

// newLogin: the browser login is wired once the store has sessions.
func newLogin(cfg *fileConfig, st, cached store.Store, reg prometheus.Registerer, log *slog.Logger) (*httpapi.LoginOptions, httpapi.GroupResolver, error) {
	if cfg.OIDC == nil {
		return nil, nil, nil
	}
	return nil, nil, errors.New("oidc: browser login not wired yet")
}
