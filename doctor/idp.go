package doctor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// discovery is the part of the provider's metadata doctor reads.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
}

// checkIdP is check 3: discovery, the redirect URI and the client
// credentials, without a browser.
func (d *doctor) checkIdP(ctx context.Context, r *Report) {
	c := d.o.OIDC
	wellKnown := strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	resp, body, err := d.get(ctx, wellKnown, nil)
	if err != nil {
		r.add(Result{Check: "idp.discovery", Status: StatusFail, Message: fmt.Sprintf("identity provider unreachable: %v", err),
			Fixes: []Fix{{SideBridge, "oidc.issuer", "set to the provider's issuer URL (discovery is read from <issuer>/.well-known/openid-configuration)"}}})
		return
	}
	var disc discovery
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &disc) != nil {
		r.add(Result{Check: "idp.discovery", Status: StatusFail,
			Message: fmt.Sprintf("GET %s answered %s, not OpenID discovery JSON: %s", wellKnown, resp.Status, excerpt(body)),
			Fixes:   []Fix{{SideBridge, "oidc.issuer", "set to the provider's issuer URL"}}})
		return
	}
	if disc.Issuer != c.Issuer {
		r.add(Result{Check: "idp.discovery", Status: StatusFail,
			Message: fmt.Sprintf("the provider's issuer is %q, not oidc.issuer %q: every ID token would be rejected (the comparison is exact, trailing slash included)", disc.Issuer, c.Issuer),
			Fixes:   []Fix{{SideBridge, "oidc.issuer", fmt.Sprintf("set to %q", disc.Issuer)}}})
		return
	}
	if disc.TokenEndpoint == "" || disc.AuthorizationEndpoint == "" {
		r.add(Result{Check: "idp.discovery", Status: StatusFail, Message: "discovery lacks authorization_endpoint or token_endpoint"})
		return
	}
	r.add(Result{Check: "idp.discovery", Status: StatusOK, Message: fmt.Sprintf("issuer %q, token endpoint %s", disc.Issuer, disc.TokenEndpoint)})
	if !d.checkClient(ctx, r, disc) {
		r.add(Result{Check: "idp.redirect_uri", Status: StatusWarn, Message: "skipped: the provider does not accept the client (see idp.client)"})
		return
	}
	d.checkRedirect(ctx, r, disc)
}

// checkRedirect sends an authorization request with the bridge's redirect
// URI and reads the answer without following it: a provider sends the
// browser on to its login page only for a registered redirect URI.
func (d *doctor) checkRedirect(ctx context.Context, r *Report, disc discovery) {
	const name = "idp.redirect_uri"
	redirect := d.o.PublicURL + "/callback"
	verifier := rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {d.o.OIDC.ClientID},
		"redirect_uri":          {redirect},
		"scope":                 {"openid"},
		"state":                 {rand.Text()},
		"nonce":                 {rand.Text()},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	u := disc.AuthorizationEndpoint
	if strings.Contains(u, "?") {
		u += "&" + q.Encode()
	} else {
		u += "?" + q.Encode()
	}
	resp, body, err := d.get(ctx, u, nil)
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("authorization endpoint unreachable: %v", err)})
		return
	}
	loc := resp.Header.Get("Location")
	fixes := []Fix{
		{SideIdP, "redirect URIs of client " + d.o.OIDC.ClientID, fmt.Sprintf("add %q", redirect)},
		{SideBridge, "public_url", "set to the URL registered at the provider, without /callback"},
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400 && strings.HasPrefix(loc, redirect):
		// The provider trusts the redirect URI enough to send an error
		// back to it.
		lu, _ := url.Parse(loc)
		if e := lu.Query().Get("error"); e != "" {
			r.add(Result{Check: name, Status: StatusWarn,
				Message: fmt.Sprintf("%s is registered, but the provider answers the authorization request with error=%q: %s", redirect, e, lu.Query().Get("error_description"))})
			return
		}
		r.add(Result{Check: name, Status: StatusOK, Message: fmt.Sprintf("%s is accepted", redirect)})
	case resp.StatusCode >= 300 && resp.StatusCode < 400, resp.StatusCode == http.StatusOK:
		r.add(Result{Check: name, Status: StatusOK, Message: fmt.Sprintf("%s is accepted (the provider went on to its login page)", redirect)})
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("the provider refuses an authorization request with redirect_uri %s (%s: %s)", redirect, resp.Status, excerpt(body)),
			Fixes:   fixes})
	default:
		r.add(Result{Check: name, Status: StatusWarn, Message: fmt.Sprintf("authorization endpoint answered %s", resp.Status)})
	}
}

// checkClient authenticates as the client without a browser and reports
// whether the provider accepted the credentials. It revokes a made-up
// token at the revocation endpoint when there is one: RFC 7009 §2.1 has the
// provider authenticate the client first and answer 200 for an unknown
// token. Without one it sends a token request with a made-up code, which
// most providers answer invalid_client for wrong credentials and
// invalid_grant for right ones (some look the code up first and say
// invalid_grant either way).
func (d *doctor) checkClient(ctx context.Context, r *Report, disc discovery) bool {
	const name = "idp.client"
	secret, err := d.o.OIDC.Secret()
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: err.Error(),
			Fixes: []Fix{{SideBridge, "oidc.client_secret_file", "point at a readable file holding the client secret"}}})
		return false
	}
	endpoint, form := disc.TokenEndpoint, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {"doctor-" + rand.Text()},
		"redirect_uri":  {d.o.PublicURL + "/callback"},
		"code_verifier": {rand.Text() + rand.Text()},
	}
	if disc.RevocationEndpoint != "" {
		endpoint, form = disc.RevocationEndpoint, url.Values{"token": {"doctor-" + rand.Text()}, "token_type_hint": {"refresh_token"}}
	}
	post := len(disc.TokenAuthMethods) > 0 && !slices.Contains(disc.TokenAuthMethods, "client_secret_basic") && slices.Contains(disc.TokenAuthMethods, "client_secret_post")
	if post || secret == "" {
		form.Set("client_id", d.o.OIDC.ClientID)
		if secret != "" {
			form.Set("client_secret", secret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: err.Error()})
		return false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !post && secret != "" {
		// RFC 6749 §2.3.1: form-encode both before Basic.
		req.SetBasicAuth(url.QueryEscape(d.o.OIDC.ClientID), url.QueryEscape(secret))
	}
	resp, body, err := d.do(req)
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("%s unreachable: %v", endpoint, err)})
		return false
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	switch {
	case disc.RevocationEndpoint != "" && resp.StatusCode == http.StatusOK:
		r.add(Result{Check: name, Status: StatusOK, Message: fmt.Sprintf("client %q and its secret are accepted (revoking a made-up token at %s)", d.o.OIDC.ClientID, endpoint)})
	case e.Error == "invalid_grant":
		r.add(Result{Check: name, Status: StatusOK, Message: fmt.Sprintf("client %q: the provider refused only doctor's made-up code (invalid_grant), so the id and secret are most likely right", d.o.OIDC.ClientID)})
	case e.Error == "invalid_client", e.Error == "unauthorized_client", resp.StatusCode == http.StatusUnauthorized:
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("the provider refuses the client credentials at %s: %s %s %s", endpoint, resp.Status, e.Error, e.Description),
			Fixes: []Fix{
				{SideBridge, "oidc.client_id", "set to the client's id at the provider"},
				{SideBridge, "oidc.client_secret", "set (or oidc.client_secret_file) to the client's current secret"},
			}})
		return false
	default:
		r.add(Result{Check: name, Status: StatusWarn,
			Message: fmt.Sprintf("cannot tell whether the client credentials are right: %s answered %s %s", endpoint, resp.Status, excerpt(body))})
	}
	return true
}
