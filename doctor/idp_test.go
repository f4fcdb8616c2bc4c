package doctor_test

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/registry-bridge/bridge/doctor"
	"github.com/registry-bridge/bridge/internal/devidp"
	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/tokens"
)

// TestIdP checks the provider checks against a real OpenID provider
// (devidp, on zitadel/oidc): each mistake fails naming its key.
func TestIdP(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	issuerURL := "http://" + srv.Listener.Addr().String()
	const registered = "http://localhost:5001"
	idp, err := devidp.New(devidp.Config{
		Issuer:  issuerURL,
		Users:   []devidp.User{{Username: "alice", Password: "pw"}},
		Clients: []devidp.Client{{ID: "registry-bridge", Secret: "right", RedirectURIs: []string{registered + "/callback"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	kp := newKeyPair(t, tokens.AlgES256)

	for _, tc := range []struct {
		name               string
		issuer, id, secret string
		publicURL          string
		failing            string // the check that must fail, "" for none
		key                string // side:key its fixes must name
	}{
		{name: "correct", issuer: issuerURL, id: "registry-bridge", secret: "right", publicURL: registered},
		{name: "wrong secret", issuer: issuerURL, id: "registry-bridge", secret: "wrong", publicURL: registered,
			failing: "idp.client", key: "bridge:oidc.client_secret"},
		{name: "unknown client", issuer: issuerURL, id: "nobody", secret: "right", publicURL: registered,
			failing: "idp.client", key: "bridge:oidc.client_id"},
		{name: "redirect URI not registered", issuer: issuerURL, id: "registry-bridge", secret: "right", publicURL: "http://localhost:5999",
			failing: "idp.redirect_uri", key: "idp:redirect URIs of client registry-bridge"},
		{name: "issuer with a trailing slash", issuer: issuerURL + "/", id: "registry-bridge", secret: "right", publicURL: registered,
			failing: "idp.discovery", key: "bridge:oidc.issuer"},
		{name: "issuer unreachable", issuer: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), id: "registry-bridge", secret: "right", publicURL: registered,
			failing: "idp.discovery", key: "bridge:oidc.issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &oidc.Config{Issuer: tc.issuer, ClientID: tc.id, ClientSecret: tc.secret}
			cfg.SetDefaults()
			tok := tokens.Config{Issuer: issuer, Service: service, SigningKeyFile: kp.key}
			tok.SetDefaults()
			rep := doctor.Run(t.Context(), doctor.Options{
				// Nothing listens there: the registry checks fail, which
				// this test does not look at.
				Registry:  fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
				PublicURL: tc.publicURL,
				Token:     tok,
				OIDC:      cfg,
				Client:    client(),
			})
			out := text(t, rep)
			for _, check := range []string{"idp.discovery", "idp.redirect_uri", "idp.client"} {
				r, ok := result(rep, check)
				switch {
				case check == tc.failing:
					if !ok || r.Status != doctor.StatusFail || !contains(fixKeys(r), tc.key) {
						t.Errorf("%s: want a failure naming %s:\n%s", check, tc.key, out)
					}
				case tc.failing == "idp.discovery":
					if ok {
						t.Errorf("%s ran after discovery failed:\n%s", check, out)
					}
				case tc.failing == "idp.client":
					if !ok || r.Status == doctor.StatusFail {
						t.Errorf("%s: want ok or skipped after idp.client failed:\n%s", check, out)
					}
				case !ok || r.Status != doctor.StatusOK:
					t.Errorf("%s: want ok:\n%s", check, out)
				}
			}
		})
	}
}
