package devidp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// ErrUnknownUser is returned by the runtime setters for a username that is
// not configured.
var ErrUnknownUser = errors.New("devidp: unknown user")

// Paths served by Handler besides zitadel/oidc's own (/authorize,
// /oauth/token, /userinfo, /keys, /end_session, /.well-known/…).
const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
)

// Provider is a running development OpenID Provider.
type Provider struct {
	issuer string
	log    *slog.Logger
	store  *storage
	op     *op.Provider
}

// New checks cfg, generates a signing key and returns the provider.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("devidp: config: %w", err)
	}
	issuer := strings.TrimSuffix(cfg.Issuer, "/")
	if cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = DefaultTokenLifetime
	}
	if cfg.IDTokenLifetime == 0 {
		cfg.IDTokenLifetime = DefaultTokenLifetime
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	st := &storage{
		now:             time.Now,
		accessLifetime:  cfg.AccessTokenLifetime,
		groupsInIDToken: cfg.GroupsInIDToken,
		key:             key,
		users:           map[string]*User{},
		usernames:       map[string]string{},
		clients:         map[string]*client{},
		authRequests:    map[string]*authRequest{},
		codes:           map[string]string{},
		accessTokens:    map[string]*accessToken{},
		refreshTokens:   map[string]*refreshToken{},
		sessions:        map[string]session{},
	}
	for _, u := range cfg.Users {
		u.Groups = slices.Clone(u.Groups)
		st.users[u.Username] = &u
		st.usernames[u.subject()] = u.Username
	}
	for _, c := range cfg.Clients {
		st.clients[c.ID] = &client{cfg: c, loginURL: issuer + loginPath, idTokenLifetime: cfg.IDTokenLifetime}
	}

	// The key encrypts the opaque access tokens; a new one per start.
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: issuer + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedClaims:          append(slices.Clone(op.DefaultSupportedClaims), scopeGroups),
		SupportedScopes:          append(slices.Clone(op.DefaultSupportedScopes), scopeGroups),
	}
	var opts []op.Option
	if strings.HasPrefix(issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	provider, err := op.NewProvider(opCfg, st, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("devidp: create provider: %w", err)
	}
	return &Provider{issuer: issuer, log: cfg.Log, store: st, op: provider}, nil
}

// Issuer returns the issuer URL, without a trailing slash.
func (p *Provider) Issuer() string { return p.issuer }

// Handler serves the provider at the root of the issuer URL: discovery,
// JWKS, authorize, token, userinfo, end_session, and the login form. If
// the issuer has a path, mount it with http.StripPrefix.
func (p *Provider) Handler() http.Handler {
	withIssuer := op.NewIssuerInterceptor(p.op.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.Handle("GET "+loginPath, withIssuer.HandlerFunc(p.showLogin))
	mux.Handle("POST "+loginPath, withIssuer.HandlerFunc(p.submitLogin))
	mux.HandleFunc("GET "+loggedOutPath, p.showLoggedOut)
	mux.HandleFunc(p.op.EndSessionEndpoint().Relative(), p.endSession)
	mux.Handle("/", p.op)
	return mux
}

// SetGroups replaces a user's groups. Tokens issued later, refreshed ID
// tokens and /userinfo answers carry the new groups.
func (p *Provider) SetGroups(username string, groups []string) error {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		return fmt.Errorf("devidp: set groups of %q: %w", username, ErrUnknownUser)
	}
	u.Groups = slices.Clone(groups)
	p.log.Info("devidp: groups changed", "user", username, "groups", groups)
	return nil
}

// SetDisabled disables or re-enables a user. A disabled user cannot sign
// in, their browser sessions end, the refresh_token grant fails with
// invalid_grant and /userinfo refuses their access tokens.
func (p *Provider) SetDisabled(username string, disabled bool) error {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		return fmt.Errorf("devidp: set disabled of %q: %w", username, ErrUnknownUser)
	}
	u.Disabled = disabled
	if disabled {
		sub := u.subject()
		for id, se := range s.sessions {
			if se.subject == sub {
				delete(s.sessions, id)
			}
		}
	}
	p.log.Info("devidp: user disabled flag changed", "user", username, "disabled", disabled)
	return nil
}

// RevokeRefreshTokens invalidates every refresh token of the user, as when
// they withdraw consent; later refresh_token grants fail with
// invalid_grant. Access tokens and browser sessions are untouched. An
// unknown username is a no-op.
func (p *Provider) RevokeRefreshTokens(username string) {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		return
	}
	sub := u.subject()
	n := 0
	for token, rt := range s.refreshTokens {
		if rt.subject == sub {
			delete(s.refreshTokens, token)
			n++
		}
	}
	p.log.Info("devidp: refresh tokens revoked", "user", username, "count", n)
}
