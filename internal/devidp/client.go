package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client is a registered Client as zitadel/oidc sees it: a confidential
// web application using the code flow, refresh tokens and the groups scope.
type client struct {
	cfg             Client
	loginURL        string // absolute URL of the login form
	idTokenLifetime time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.cfg.ID }
func (c *client) RedirectURIs() []string              { return c.cfg.RedirectURIs }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTokenLifetime }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == scopeGroups }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true } // storage decides the ID token's claims
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(authRequestID)
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string     { return keepScopes }
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string { return keepScopes }

// DevMode lets http redirect URIs through; Config.Validate has already
// limited them to loopback hosts.
func (c *client) DevMode() bool { return true }

func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// PostLogoutRedirectURIs are the configured ones, every redirect URI, and
// the origin of every redirect URI (so "http://localhost:5001/" is allowed
// for a client whose callback is "http://localhost:5001/callback").
func (c *client) PostLogoutRedirectURIs() []string {
	uris := slices.Concat(c.cfg.PostLogoutRedirectURIs, c.cfg.RedirectURIs)
	for _, raw := range c.cfg.RedirectURIs {
		if u, err := url.Parse(raw); err == nil {
			uris = append(uris, u.Scheme+"://"+u.Host+"/")
		}
	}
	return uris
}

func keepScopes(scopes []string) []string { return scopes }

// signingKey is the RS256 key generated at start-up.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is the JWKS entry of a signingKey.
type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// newSigningKey generates a 2048-bit RSA key whose id is its RFC 7638 JWK
// thumbprint.
func newSigningKey() (signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate RSA key: %w", err)
	}
	thumb, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return signingKey{}, fmt.Errorf("key thumbprint: %w", err)
	}
	return signingKey{id: base64.RawURLEncoding.EncodeToString(thumb), key: key}, nil
}
