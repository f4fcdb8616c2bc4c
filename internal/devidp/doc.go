// Package devidp is a DEVELOPMENT-ONLY OpenID Connect provider for tests and
// `make demo`. It keeps plain-text passwords and all state in memory, and
// signs with a key generated at start-up. NEVER use it for real accounts,
// and never import it from product packages (TestNotImportedByProduct in
// imports_test.go fails if one does): it exists so tests talk to a real
// provider instead of a hand-written fake of one.
//
// The protocol is github.com/zitadel/oidc/v3's op package; devidp adds the
// storage, a plain HTML login form and runtime switches for tests. It
// serves, below the issuer URL:
//
//	/.well-known/openid-configuration   discovery (incl. end_session_endpoint)
//	/keys                               JWKS (one RS256 key)
//	/authorize                          response_type=code; PKCE S256 required
//	/login                              the form: #username, #password, #submit
//	/oauth/token                        authorization_code, refresh_token;
//	                                    client_secret_basic or client_secret_post
//	/userinfo                           sub, preferred_username, name, email, groups
//	/end_session                        RP-initiated logout
//
// Claims follow the scopes: profile gives preferred_username and name,
// email gives email, groups gives groups. The ID token carries sub and
// preferred_username, plus name, email and groups only when
// Config.GroupsInIDToken is set; /userinfo always carries everything the
// access token's scopes allow, read from the user's current record.
//
// Refresh tokens are issued when the scope includes offline_access and are
// rotated: each one works once. A browser that signed in keeps a session
// cookie, so a second /authorize skips the form unless prompt=login or
// max_age demands it; /end_session ends that session.
//
// Usage in a test:
//
//	srv := httptest.NewUnstartedServer(nil)
//	idp, err := devidp.New(devidp.Config{
//		Issuer:  "http://" + srv.Listener.Addr().String(),
//		Users:   []devidp.User{{Username: "alice", Password: "pw", Groups: []string{"team-a"}}},
//		Clients: []devidp.Client{{ID: "registry-bridge", Secret: "s", RedirectURIs: []string{"http://localhost:5001/callback"}}},
//	})
//	srv.Config.Handler = idp.Handler()
//	srv.Start()
//	…
//	idp.SetGroups("alice", []string{"team-b"}) // the next refresh sees team-b
//	idp.SetDisabled("alice", true)             // the next refresh fails with invalid_grant
//
// cmd/devidp serves a provider from a YAML file (see LoadConfig and
// testdata/users.yaml), and applies each user's groups and disabled flag
// with SetGroups and SetDisabled when the file changes or on SIGHUP;
// `make demo` (scripts/demo.sh) runs it that way.
package devidp
