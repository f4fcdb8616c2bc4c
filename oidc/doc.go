// Package oidc is the bridge's upstream login at an OpenID Connect
// provider: discovery, the authorization-code flow with state, nonce and
// PKCE, code exchange, ID-token verification, and the mapping of ID-token
// and userinfo claims to an Identity{Subject, Username, Email, Groups}.
//
// It does not touch cookies, sessions or storage: callers keep the login
// state it hands them and give it back at the callback.
//
// Usage:
//
//	var cfg oidc.Config // from the config file's oidc: section
//	cfg.SetDefaults()
//	if err := cfg.Validate("oidc"); err != nil { ... }
package oidc
