// Package doctor checks a bridge deployment from the outside and says what
// to change, by configuration key on each side: the registry's config.yml
// (auth.token.*), the bridge's file (public_url, token.*, oidc.*,
// store.redis.url) and the client's settings at the identity provider.
//
// Usage (what `bridge doctor` does):
//
//	report := doctor.Run(ctx, doctor.Options{
//		Registry:  "https://registry.example.com",
//		PublicURL: cfg.PublicURL,
//		Token:     cfg.Token,     // defaulted and validated
//		OIDC:      cfg.OIDC,      // nil without an oidc section
//		Store:     redis.Ping,    // nil for the embedded store
//		Client:    client,        // with a Timeout, not following redirects
//	})
//	report.WriteText(os.Stdout) // or WriteJSON
//	if report.Failed() { os.Exit(1) }
//
// The checks, in order:
//
//   - registry.challenge: GET /v2/ answers 401 with a Bearer challenge whose
//     realm is <public_url>/token and whose service is token.service.
//   - registry.config (with Options.RegistryConfig): the registry's file
//     compared key by key, keys included.
//   - registry.token: a token minted with token.signing_key_file opens /v2/
//     and a manifest HEAD on doctor-probe/never (pull only; nothing is
//     written). When it does not, doctor tries variants — without or with
//     x5c, the other kid form, the challenge's service as audience — and
//     names the key whose change the registry accepts. When no variant
//     works, distribution v3 tells an untrusted key from a wrong issuer:
//     it looks the key up before it checks the signature, so a token with a
//     broken signature fails without error="invalid_token" only when its
//     key is trusted. distribution 2.8 answers every rejection alike; doctor
//     then names both candidates, and --registry-config settles it.
//   - idp.discovery, idp.redirect_uri, idp.client: discovery and its
//     issuer; an authorization request with <public_url>/callback, which a
//     provider refuses for an unregistered redirect URI; a token request
//     with a made-up code, answered invalid_client for wrong credentials and
//     invalid_grant for right ones.
//   - store: Redis answers PING.
//   - bridge.healthz, bridge.readyz, bridge.token: the bridge answers at
//     public_url; only warnings, as doctor may run before it starts.
//
// docs/troubleshooting.md lists what each finding means. Package doctor
// makes no change anywhere and never imports httpapi.
package doctor
