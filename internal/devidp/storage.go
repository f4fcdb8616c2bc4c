package devidp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// authRequestLifetime bounds the time between /authorize and the code
	// exchange.
	authRequestLifetime = 10 * time.Minute
	// sessionLifetime is how long a browser stays signed in at the provider.
	sessionLifetime = 8 * time.Hour
	// scopeGroups asks for the groups claim.
	scopeGroups = "groups"
)

var (
	errBadCredentials = errors.New("invalid username or password")
	errDisabled       = errors.New("account is disabled")
	errNotFound       = errors.New("not found or expired")
)

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

// storage is the provider's in-memory state and its op.Storage face. Every
// record handed to zitadel/oidc is a copy, so the library never reads a
// struct this package later changes.
type storage struct {
	now             func() time.Time
	accessLifetime  time.Duration
	groupsInIDToken bool
	key             signingKey

	mu            sync.Mutex
	users         map[string]*User // by username
	usernames     map[string]string
	clients       map[string]*client
	authRequests  map[string]*authRequest
	codes         map[string]string // code → auth request id
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken // by token value
	sessions      map[string]session       // by cookie value
}

// authRequest is one /authorize request on its way to a code exchange.
type authRequest struct {
	id, clientID, redirectURI, state, nonce, loginHint, code string
	scopes                                                   []string
	responseType                                             oidc.ResponseType
	responseMode                                             oidc.ResponseMode
	challenge                                                oidc.CodeChallenge
	maxAge                                                   *time.Duration
	created                                                  time.Time
	subject                                                  string
	authTime                                                 time.Time
	done                                                     bool
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { c := a.challenge; return &c }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func (a *authRequest) copy() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	return &c
}

type accessToken struct {
	id, clientID, subject string
	scopes                []string
	expires               time.Time
}

type refreshToken struct {
	token, clientID, subject string
	scopes, amr              []string
	authTime                 time.Time
}

// refreshRequest is a copy of a refresh token, as the refresh grant sees it.
type refreshRequest struct{ refreshToken }

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string                 { return r.amr }
func (r *refreshRequest) GetAudience() []string            { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time           { return r.authTime }
func (r *refreshRequest) GetClientID() string              { return r.clientID }
func (r *refreshRequest) GetScopes() []string              { return r.scopes }
func (r *refreshRequest) GetSubject() string               { return r.subject }
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }

// grant is what both an authorization code and a refresh token carry.
type grant interface {
	GetClientID() string
	GetSubject() string
	GetScopes() []string
	GetAMR() []string
	GetAuthTime() time.Time
}

type session struct {
	subject  string
	authTime time.Time
	expires  time.Time
}

// randomToken returns 32 bytes from crypto/rand, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documentation)
	return base64.RawURLEncoding.EncodeToString(b)
}

// activeUserLocked returns the enabled user with the subject; s.mu is held.
func (s *storage) activeUserLocked(subject string) (*User, error) {
	u, ok := s.users[s.usernames[subject]]
	if !ok {
		return nil, fmt.Errorf("user %s: %w", subject, errNotFound)
	}
	if u.Disabled {
		return nil, errDisabled
	}
	return u, nil
}

// pruneLocked drops expired login requests, access tokens and sessions.
func (s *storage) pruneLocked() {
	now := s.now()
	for id, ar := range s.authRequests {
		if now.Sub(ar.created) > authRequestLifetime {
			delete(s.codes, ar.code)
			delete(s.authRequests, id)
		}
	}
	for id, at := range s.accessTokens {
		if now.After(at.expires) {
			delete(s.accessTokens, id)
		}
	}
	for id, se := range s.sessions {
		if now.After(se.expires) {
			delete(s.sessions, id)
		}
	}
}

// checkPassword returns the subject of the enabled user with these
// credentials. It does the same comparison work for unknown users.
func (s *storage) checkPassword(username, password string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := "\x00no such user\x00"
	u, known := s.users[username]
	if known {
		want = u.Password
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 || !known {
		return "", errBadCredentials
	}
	if u.Disabled {
		return "", errDisabled
	}
	return u.subject(), nil
}

// authRequest returns a copy of a pending login request.
func (s *storage) authRequest(id string) (*authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || s.now().Sub(ar.created) > authRequestLifetime {
		return nil, false
	}
	return ar.copy(), true
}

// finishLogin marks a login request as authenticated by subject.
func (s *storage) finishLogin(id, subject string, authTime time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || s.now().Sub(ar.created) > authRequestLifetime {
		return fmt.Errorf("login request: %w", errNotFound)
	}
	ar.subject, ar.authTime, ar.done = subject, authTime, true
	return nil
}

// newSession starts a browser session and returns its cookie value.
func (s *storage) newSession(subject string, authTime time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := randomToken()
	s.sessions[id] = session{subject: subject, authTime: authTime, expires: s.now().Add(sessionLifetime)}
	return id
}

// session returns the live session of an enabled user.
func (s *storage) session(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[id]
	if !ok || s.now().After(se.expires) {
		return session{}, false
	}
	if _, err := s.activeUserLocked(se.subject); err != nil {
		return session{}, false
	}
	return se, true
}

func (s *storage) endSession(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
}

// CreateAuthRequest stores a validated /authorize request. It refuses
// requests without PKCE S256.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	ar := &authRequest{
		id:           randomToken(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		loginHint:    req.LoginHint,
		scopes:       slices.Clone(req.Scopes),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		challenge:    oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
		created:      s.now(),
	}
	if req.MaxAge != nil {
		d := time.Duration(*req.MaxAge) * time.Second
		ar.maxAge = &d
	}
	s.authRequests[ar.id] = ar
	return ar.copy(), nil
}

// AuthRequestByID returns a pending login request.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	ar, ok := s.authRequest(id)
	if !ok {
		return nil, fmt.Errorf("devidp: auth request: %w", errNotFound)
	}
	return ar, nil
}

// AuthRequestByCode returns the authenticated request an issued code names.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("devidp: code: %w", errNotFound)
	}
	return s.AuthRequestByID(ctx, id)
}

// SaveAuthCode records the code issued for a login request.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok {
		return fmt.Errorf("devidp: save code: %w", errNotFound)
	}
	ar.code = code
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest forgets a login request and its code: codes are single-use.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ar, ok := s.authRequests[id]; ok {
		delete(s.codes, ar.code)
		delete(s.authRequests, id)
	}
	return nil
}

// CreateAccessToken issues an access token for a code or refresh grant.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, ok := req.(grant)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.activeUserLocked(g.GetSubject()); err != nil {
		return "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
	}
	at := s.newAccessTokenLocked(g)
	return at.id, at.expires, nil
}

func (s *storage) newAccessTokenLocked(g grant) *accessToken {
	at := &accessToken{
		id:       randomToken(),
		clientID: g.GetClientID(),
		subject:  g.GetSubject(),
		scopes:   slices.Clone(g.GetScopes()),
		expires:  s.now().Add(s.accessLifetime),
	}
	s.accessTokens[at.id] = at
	return at
}

// CreateAccessAndRefreshTokens issues an access token and a new refresh
// token. On the refresh grant the presented token is consumed: each
// refresh token works once.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, ok := req.(grant)
	if !ok {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.activeUserLocked(g.GetSubject()); err != nil {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
	}
	if current != "" {
		if _, ok := s.refreshTokens[current]; !ok {
			// A concurrent refresh used it first.
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		delete(s.refreshTokens, current)
	}
	rt := &refreshToken{
		token:    randomToken(),
		clientID: g.GetClientID(),
		subject:  g.GetSubject(),
		scopes:   slices.Clone(g.GetScopes()),
		amr:      slices.Clone(g.GetAMR()),
		authTime: g.GetAuthTime(),
	}
	s.refreshTokens[rt.token] = rt
	at := s.newAccessTokenLocked(g)
	return at.id, rt.token, at.expires, nil
}

// TokenRequestByRefreshToken looks up a refresh token of an enabled user.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return nil, fmt.Errorf("devidp: refresh token: %w", errNotFound)
	}
	if _, err := s.activeUserLocked(rt.subject); err != nil {
		return nil, fmt.Errorf("devidp: refresh token: %w", err)
	}
	c := *rt
	c.scopes, c.amr = slices.Clone(rt.scopes), slices.Clone(rt.amr)
	return &refreshRequest{c}, nil
}

// TerminateSession ends the user's browser sessions (RP-initiated logout
// with an id_token_hint). Tokens stay valid, as at most providers.
func (s *storage) TerminateSession(_ context.Context, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, se := range s.sessions {
		if se.subject == subject {
			delete(s.sessions, id)
		}
	}
	return nil
}

// RevokeToken revokes an access token (by id) or a refresh token (by value).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
	}
	return nil
}

// GetRefreshTokenInfo names the user of a refresh token; the token is its own id.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// GetClientByClientID returns a registered client.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id] // never written after New
	if !ok {
		return nil, fmt.Errorf("devidp: client %q: %w", id, errNotFound)
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a client secret in constant time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(c.cfg.Secret)) != 1 {
		return errors.New("devidp: wrong client id or secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op.Storage; see SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims from the user's
// current record, so a refreshed ID token carries current groups.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.activeUserLocked(req.GetSubject())
	if err != nil {
		return oidc.ErrInvalidGrant().WithParent(err)
	}
	fillUserinfo(info, u, scopes, s.groupsInIDToken)
	return nil
}

// SetUserinfoFromToken answers /userinfo for a live access token.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || at.subject != subject || s.now().After(at.expires) {
		return oidc.ErrAccessDenied().WithDescription("access token is invalid or expired")
	}
	u, err := s.activeUserLocked(subject)
	if err != nil {
		return oidc.ErrAccessDenied().WithDescription("user is disabled or unknown")
	}
	fillUserinfo(info, u, at.scopes, true)
	return nil
}

// fillUserinfo sets the claims the scopes ask for: profile gives
// preferred_username (and name), email gives email, groups gives groups.
// Without full only sub and preferred_username are set.
func fillUserinfo(info *oidc.UserInfo, u *User, scopes []string, full bool) {
	info.Subject = u.subject()
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.Username
		if full {
			info.Name = u.Name
		}
	}
	if !full {
		return
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		info.Email, info.EmailVerified = u.Email, true
	}
	if slices.Contains(scopes, scopeGroups) {
		info.AppendClaims(scopeGroups, append([]string{}, u.Groups...))
	}
}

// SetIntrospectionFromToken answers token introspection for access tokens.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || at.subject != subject || at.clientID != clientID || s.now().After(at.expires) {
		return errors.New("devidp: token is not active")
	}
	resp.Active = true
	resp.Subject, resp.ClientID, resp.Scope = subject, clientID, at.scopes
	resp.Expiration = oidc.FromTime(at.expires)
	return nil
}

// GetPrivateClaimsFromScopes adds nothing: access tokens are opaque.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID refuses: JWT client authentication is not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("devidp: JWT profile is not supported")
}

// ValidateJWTProfileScopes refuses: the JWT profile grant is not offered.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devidp: JWT profile is not supported")
}

func (s *storage) Health(context.Context) error { return nil }
