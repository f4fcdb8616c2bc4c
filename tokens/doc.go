// Package tokens mints the registry's bearer tokens: JWTs in the form the
// distribution token spec (docs/spec/auth/jwt.md) describes, which
// distribution v3 and 2.8 both verify. It also loads and generates signing
// keys, computes the two key ID (kid) forms registries look keys up by, and
// exports the verification keys as a JWKS and a certificate bundle.
//
// Usage:
//
//	cfg.SetDefaults()
//	if err := cfg.Validate(); err != nil { ... }  // every problem, with key paths
//	opts, err := cfg.Load()                        // reads the PEM files
//	opts.Now = time.Now
//	iss, err := tokens.NewIssuer(opts)
//
//	tok, err := iss.Issue("alice", []scope.Scope{
//		{Type: scope.TypeRepository, Name: "alice/app", Actions: []string{scope.ActionPull, scope.ActionPush}},
//	})
//	// respond {"token": tok.Raw, "access_token": tok.Raw,
//	//          "expires_in": tok.ExpiresIn, "issued_at": tok.IssuedAt.Format(time.RFC3339)}
//
//	json.NewEncoder(w).Encode(iss.JWKS()) // the registry's auth.token.jwks file
//
// A token's header carries alg (ES256, ES384, ES512 or RS256, by the key),
// typ "JWT", kid, and x5c when a certificate is configured. Its claims are
// iss, sub, aud as a single string (distribution 2.8 rejects an array),
// integer exp, nbf and iat, a random jti, and access, never null and never
// holding null entries.
//
// How each registry finds the verification key, and so which setup works:
//
//   - x5c (certificate_file set): v3 and 2.8 verify the chain against their
//     rootcertbundle, whatever the kid. But v3 configured with only a jwks
//     file rejects every token carrying x5c.
//   - kid "thumbprint" (the default): v3 trusts each rootcertbundle key
//     under its JWK thumbprint, as Thumbprint computes it.
//   - kid "libtrust": 2.8 trusts each rootcertbundle key under its
//     LibtrustKeyID; v3 does not.
//   - v3 with a jwks file trusts each entry under its literal kid, so the
//     JWKS of this package works with either kid form.
//
// So: a certificate covers v3 with a rootcertbundle and 2.8; without one,
// use "thumbprint" for v3 (bundle or jwks) and "libtrust" for 2.8, or for
// v3 with the jwks file.
//
// Package tokens knows neither users, groups nor HTTP: callers decide the
// subject and the access, and serve the results.
package tokens
