package oidc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Sentinel errors callers branch on.
var (
	// ErrRejected: the provider refused a refresh token (user disabled
	// or deleted, consent revoked, token expired). The user must log in
	// again.
	ErrRejected = errors.New("identity provider rejected the refresh token")
	// ErrNotAllowed: the user is in none of oidc.allowed_groups.
	ErrNotAllowed = errors.New("user is not in an allowed group")
	// ErrUnavailable: the provider could not be reached or answered
	// with a server error; try again later.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrNoUsername: neither the username claim nor a verified email is
	// present.
	ErrNoUsername = errors.New("no username claim and no verified email in the identity")
)

// Identity is the person behind a login, as the bridge uses it.
type Identity struct {
	// Subject is the provider's stable user id ("sub").
	Subject string
	// Username is the docker login username: the username claim, else
	// the email.
	Username string
	Email    string
	Groups   []string
}

// Tokens are what the provider handed out at login or refresh, to keep.
type Tokens struct {
	// RefreshToken is empty when the provider gives none (no
	// offline_access); then groups cannot be re-read later.
	RefreshToken string
	// IDToken is the raw ID token, for RP-initiated logout's hint.
	IDToken string
}

// LoginState is kept by the caller between AuthURL and Exchange, bound to
// the browser, and used once; Sealer.SealLogin lets the browser carry it.
type LoginState struct {
	State    string
	Nonce    string
	Verifier string // PKCE code verifier (RFC 7636), sent as S256 challenge
}

// NewLoginState returns a login state of fresh random values from
// crypto/rand.
func NewLoginState() (LoginState, error) {
	var b [64]byte
	if _, err := rand.Read(b[:]); err != nil {
		return LoginState{}, err
	}
	enc := base64.RawURLEncoding
	return LoginState{
		State:    enc.EncodeToString(b[:24]),
		Nonce:    enc.EncodeToString(b[24:48]),
		Verifier: oauth2.GenerateVerifier(),
	}, nil
}

// Options are a Provider's live values.
type Options struct {
	Config Config
	// RedirectURL is <public_url>/callback.
	RedirectURL string
	// HTTPClient talks to the provider; it must have a timeout. Default:
	// a client with a 10s timeout.
	HTTPClient *http.Client
	Log        *slog.Logger
	Now        func() time.Time
}

// Provider is the upstream login. Discovery happens on first use and is
// retried until it succeeds, so the bridge starts (and its token endpoint
// serves) while the provider is down.
type Provider struct {
	cfg      Config
	redirect string
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	secret   string

	mu         sync.Mutex
	ready      bool
	oauth      oauth2.Config
	verifier   *gooidc.IDTokenVerifier
	provider   *gooidc.Provider
	endSession string
}

// New returns a Provider; it does no I/O beyond reading the client secret
// file.
func New(o Options) (*Provider, error) {
	secret, err := o.Config.Secret()
	if err != nil {
		return nil, err
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Provider{cfg: o.Config, redirect: o.RedirectURL, client: o.HTTPClient, log: o.Log, now: o.Now, secret: secret}, nil
}

// Name is a short name of the provider for the login button.
func (p *Provider) Name() string {
	if p.cfg.DisplayName != "" {
		return p.cfg.DisplayName
	}
	if u, err := url.Parse(p.cfg.Issuer); err == nil {
		return u.Host
	}
	return p.cfg.Issuer
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, p.client)
}

// discover runs discovery once it succeeds; failures are retried on the
// next call.
func (p *Provider) discover(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		return nil
	}
	prov, err := gooidc.NewProvider(p.ctx(ctx), p.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("%w: discovery at %s: %v", ErrUnavailable, p.cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = prov.Claims(&extra)
	p.provider = prov
	if extra.EndSession != "" && originOf(extra.EndSession) == "" {
		p.log.WarnContext(ctx, "oidc: ignoring the provider's end_session_endpoint: not an absolute http(s) URL with a plain host", "end_session_endpoint", truncate(extra.EndSession, 200))
		extra.EndSession = ""
	}
	p.endSession = extra.EndSession
	p.verifier = prov.VerifierContext(p.ctx(context.WithoutCancel(ctx)), &gooidc.Config{ClientID: p.cfg.ClientID, Now: p.now})
	p.oauth = oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.secret,
		Endpoint:     prov.Endpoint(),
		RedirectURL:  p.redirect,
		Scopes:       p.cfg.Scopes,
	}
	p.ready = true
	return nil
}

// AuthURL returns the provider URL to send the browser to, carrying the
// state, the nonce and the PKCE S256 challenge of st.
func (p *Provider) AuthURL(ctx context.Context, st LoginState) (string, error) {
	if err := p.discover(ctx); err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)}
	for _, k := range slices.Sorted(maps.Keys(p.cfg.AuthParams)) {
		opts = append(opts, oauth2.SetAuthURLParam(k, p.cfg.AuthParams[k]))
	}
	return p.oauth.AuthCodeURL(st.State, opts...), nil
}

// Exchange trades the callback's code for tokens with the PKCE verifier,
// verifies the ID token and its nonce (go-oidc does not check the nonce),
// reads the identity from the ID token and, for what it lacks, userinfo,
// and applies allowed_groups. The caller has already checked the state.
func (p *Provider) Exchange(ctx context.Context, st LoginState, code string) (Identity, Tokens, error) {
	if err := p.discover(ctx); err != nil {
		return Identity{}, Tokens{}, err
	}
	tok, err := p.oauth.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(st.Verifier))
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.ErrorCode != "" && re.ErrorCode != "invalid_client" && re.ErrorCode != "unauthorized_client":
		// The provider refused this code (expired, replayed, wrong PKCE
		// verifier): this login failed; the user may start again.
		return Identity{}, Tokens{}, fmt.Errorf("oidc: exchange code: %s %s", re.ErrorCode, re.ErrorDescription)
	case err != nil:
		return Identity{}, Tokens{}, classify("exchange code", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return Identity{}, Tokens{}, errors.New("oidc: exchange code: the token response has no id_token")
	}
	idt, err := p.verifier.Verify(ctx, rawID)
	if err != nil {
		return Identity{}, Tokens{}, fmt.Errorf("oidc: verify ID token: %w", err)
	}
	if idt.Nonce != st.Nonce {
		return Identity{}, Tokens{}, errors.New("oidc: verify ID token: nonce does not match the login")
	}
	id, err := p.identityFrom(ctx, idt.Subject, idt, tok, true)
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	return id, Tokens{RefreshToken: tok.RefreshToken, IDToken: rawID}, nil
}

// Refresh uses a refresh token to re-read the identity, as revalidation
// does. It returns the identity and the tokens to keep (providers may
// rotate the refresh token). ErrRejected means the user must log in again;
// ErrUnavailable means the provider could not answer.
func (p *Provider) Refresh(ctx context.Context, subject, refreshToken string) (Identity, Tokens, error) {
	if err := p.discover(ctx); err != nil {
		return Identity{}, Tokens{}, err
	}
	src := p.oauth.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return Identity{}, Tokens{}, classify("refresh", err)
	}
	var idt *gooidc.IDToken
	rawID, _ := tok.Extra("id_token").(string)
	if rawID != "" {
		// The refreshed ID token carries no nonce (OIDC Core §12.2).
		if idt, err = p.verifier.Verify(ctx, rawID); err != nil {
			return Identity{}, Tokens{}, fmt.Errorf("oidc: verify refreshed ID token: %w", err)
		}
		if idt.Subject != subject {
			return Identity{}, Tokens{}, fmt.Errorf("%w: refreshed ID token is for another subject", ErrRejected)
		}
	}
	id, err := p.identityFrom(ctx, subject, idt, tok, false)
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	rt := tok.RefreshToken
	if rt == "" {
		rt = refreshToken
	}
	return id, Tokens{RefreshToken: rt, IDToken: rawID}, nil
}

// LogoutURL returns the provider's RP-initiated logout URL (OIDC
// RP-Initiated Logout 1.0), or "" when the provider advertises none.
func (p *Provider) LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirect string) string {
	if p.discover(ctx) != nil || p.endSession == "" {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", p.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// LogoutOrigin returns the origin (scheme://host[:port]) that LogoutURL
// sends browsers to, for a Content-Security-Policy's form-action, or ""
// when the provider advertises no end_session_endpoint. Like LogoutURL it
// runs discovery first if it has not succeeded yet, and answers "" while
// the provider cannot be reached.
func (p *Provider) LogoutOrigin(ctx context.Context) string {
	if p.discover(ctx) != nil {
		return ""
	}
	return originOf(p.endSession)
}

// originOf returns the origin of an absolute http(s) URL, in lower case and
// without the scheme's default port, or "" when raw is not one or its host
// holds characters that have no place in a CSP source expression.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	host := strings.ToLower(u.Host)
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return ""
		}
	}
	switch {
	case u.Scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case u.Scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	return u.Scheme + "://" + host
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// identityFrom reads the identity from the ID token's claims and, when
// they lack the username or the groups, from userinfo. At login
// (login=true) a username is required; at refresh a missing one is
// reported as "" and the caller keeps the name it has.
func (p *Provider) identityFrom(ctx context.Context, subject string, idt *gooidc.IDToken, tok *oauth2.Token, login bool) (Identity, error) {
	claims := map[string]json.RawMessage{}
	if idt != nil {
		if err := idt.Claims(&claims); err != nil {
			return Identity{}, fmt.Errorf("oidc: ID token claims: %w", err)
		}
	}
	_, hasGroups := claims[p.cfg.GroupsClaim]
	_, hasUser := claims[p.cfg.UsernameClaim]
	if !hasGroups || !hasUser {
		ui, err := p.provider.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			// Without userinfo the groups or the username are unknown:
			// going on would make the person a member of nothing, or
			// name them by a fallback they may not own.
			return Identity{}, classify("userinfo", err)
		}
		var more map[string]json.RawMessage
		if err := ui.Claims(&more); err != nil {
			return Identity{}, fmt.Errorf("oidc: userinfo claims: %w", err)
		}
		if s, _ := stringClaim(more, "sub"); s != subject {
			return Identity{}, fmt.Errorf("%w: userinfo is for another subject", ErrRejected)
		}
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	id := Identity{Subject: subject}
	id.Email, _ = stringClaim(claims, "email")
	id.Username, _ = stringClaim(claims, p.cfg.UsernameClaim)
	if id.Username == "" && login && emailVerified(claims) {
		// An unverified address could name someone else's account. At
		// refresh the caller keeps the name it has: a fallback there
		// would look like a rename.
		id.Username = id.Email
	}
	if id.Username == "" && login {
		return Identity{}, ErrNoUsername
	}
	id.Groups = groupsClaim(claims[p.cfg.GroupsClaim])
	if len(p.cfg.AllowedGroups) > 0 && !slices.ContainsFunc(id.Groups, func(g string) bool {
		return slices.Contains(p.cfg.AllowedGroups, g)
	}) {
		return id, ErrNotAllowed
	}
	return id, nil
}

// emailVerified reports whether the claims say email_verified: true (a
// boolean, or the string "true" some providers send).
func emailVerified(claims map[string]json.RawMessage) bool {
	var b bool
	if json.Unmarshal(claims["email_verified"], &b) == nil {
		return b
	}
	s, _ := stringClaim(claims, "email_verified")
	return s == "true"
}

func stringClaim(claims map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := claims[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// groupsClaim accepts what providers put in a groups claim: an array of
// strings, a single string, or an array of objects with a "name" (some
// providers), sorted and de-duplicated. Anything else is no groups.
func groupsClaim(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var out []string
	var one string
	var many []json.RawMessage
	switch {
	case json.Unmarshal(raw, &one) == nil:
		out = []string{one}
	case json.Unmarshal(raw, &many) == nil:
		for _, m := range many {
			var s string
			var obj struct {
				Name string `json:"name"`
			}
			switch {
			case json.Unmarshal(m, &s) == nil:
				out = append(out, s)
			case json.Unmarshal(m, &obj) == nil && obj.Name != "":
				out = append(out, obj.Name)
			}
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return strings.TrimSpace(s) == "" })
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// classify maps an OAuth2 failure to ErrRejected, when the provider
// refused this user's grant (invalid_grant: disabled, deleted, consent
// revoked, token expired), or ErrUnavailable for everything else — an
// outage, but also a rejected client secret or a malformed request, which
// are the bridge's configuration problems and must not suspend users.
func classify(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		return fmt.Errorf("%w: %s: %s %s", ErrRejected, op, re.ErrorCode, re.ErrorDescription)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}
