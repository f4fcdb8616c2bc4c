// Package oidc is the bridge's upstream login at an OpenID Connect
// provider: discovery, the authorization-code flow with state, nonce and
// PKCE, code exchange, ID-token verification, and the mapping of ID-token
// and userinfo claims to an Identity{Subject, Username, Email, Groups}.
//
// It does not touch cookies, sessions or storage: callers keep the login
// state it hands them and give it back at the callback. Sealer.SealLogin
// seals that state for the browser to carry, so the caller need store
// nothing; Sealer.OpenLogin checks and opens it.
//
// Usage:
//
//	var cfg oidc.Config // from the config file's oidc: section
//	cfg.SetDefaults()
//	if err := cfg.Validate("oidc"); err != nil { ... }
package oidc
