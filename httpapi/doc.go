// Package httpapi is the bridge's only server-side net/http code: the
// registry token endpoint (GET and OAuth2 POST /token), the JWKS document,
// health, readiness and metrics — and, with the browser login, the web
// page and the JSON password API.
//
// It decides nothing about access: it asks the groups.Policy it is given,
// signs with the TokenIssuer it is given and reads passwords from the
// store it is given.
//
// Usage:
//
//	srv, err := httpapi.New(httpapi.Options{
//		Log:       logger,
//		Passwords: cachedStore,
//		Ping:      st.Ping,
//		Tokens:    issuer,
//		Policy:    func() *groups.Policy { return current.Load() },
//		JWKS:      func() any { return issuer.JWKS() },
//		Service:   "registry.example.com",
//		PublicURL: "https://bridge.example.com",
//	})
//	hs := &http.Server{Addr: addr, Handler: srv, ReadHeaderTimeout: 5 * time.Second,
//		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
//	err = hs.ListenAndServe()
package httpapi
