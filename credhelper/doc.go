// Package credhelper is the client side of the terminal login: a Docker
// credential helper (the protocol of github.com/docker/docker-credential-helpers)
// that, when it holds no valid credential for a registry, logs in with
// the bridge's device authorization (RFC 8628) and keeps what it gets in a
// file of its own, never in the clients' config.json.
//
// It needs no configuration: the registry's WWW-Authenticate realm names
// the bridge's token endpoint, and the bridge's RFC 8414 metadata
// (/.well-known/oauth-authorization-server) names the device
// authorization and revocation endpoints. See docs/device-login.md.
//
// Usage (cmd/docker-credential-bridge):
//
//	h, err := credhelper.New(credhelper.Options{Dir: dir, Stderr: os.Stderr})
//	err = credentials.HandleCommand(h, "get", os.Stdin, os.Stdout)
//	err = h.Login(ctx, "registry.example.com")
//	err = h.Logout(ctx, "registry.example.com")
package credhelper
