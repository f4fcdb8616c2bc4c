package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxChallenge bounds the WWW-Authenticate header parsed.
const maxChallenge = 4096

// clockLeeway is the skew distribution allows on exp and nbf (Leeway in
// registry/auth/token/token.go); doctor warns well before it.
const clockLeeway = 60 * time.Second

// challenge is a registry's Bearer challenge (docs/registries.md).
type challenge struct {
	Realm, Service, Scope, Error string
}

// parseChallenge parses `Bearer realm="…",service="…"[,scope="…"][,error="…"]`
// as distribution writes it (Go %q quoting). ok is false for another
// scheme or a malformed header.
func parseChallenge(h string) (c challenge, ok bool) {
	if len(h) > maxChallenge {
		return c, false
	}
	scheme, rest, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return c, false
	}
	params := map[string]string{}
	s := strings.TrimSpace(rest)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return c, false
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " ")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return c, false
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		params[key] = val
		s = strings.TrimLeft(s, " ")
		if s != "" {
			if s[0] != ',' {
				return c, false
			}
			s = strings.TrimLeft(s[1:], " ")
		}
	}
	c = challenge{Realm: params["realm"], Service: params["service"], Scope: params["scope"], Error: params["error"]}
	return c, c.Realm != ""
}

// bearerChallenge returns the first Bearer challenge of resp.
func bearerChallenge(resp *http.Response) (challenge, bool) {
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if c, ok := parseChallenge(h); ok {
			return c, true
		}
	}
	return challenge{}, false
}

// checkChallenge is check 1: GET /v2/ without credentials must answer 401
// with a Bearer challenge naming the bridge's token endpoint and
// token.service. It returns the challenge, or nil when there is none to
// work with.
func (d *doctor) checkChallenge(ctx context.Context, r *Report) *challenge {
	const name = "registry.challenge"
	resp, body, err := d.get(ctx, d.o.Registry+"/v2/", nil)
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("registry unreachable: %v (check --registry, the network, and TLS: --insecure-skip-tls-verify for a self-signed certificate)", err)})
		return nil
	}
	realm := d.o.PublicURL + "/token"
	switch {
	case resp.StatusCode == http.StatusOK:
		r.add(Result{Check: name, Status: StatusFail,
			Message: "GET /v2/ answered 200 without credentials: the registry has no token authentication, anyone can pull and push",
			Fixes: []Fix{{SideRegistry, "auth.token", fmt.Sprintf(`add the section: realm %q, service %q, issuer %q, rootcertbundle (the certificate of token.signing_key_file)`,
				realm, d.o.Token.Service, d.o.Token.Issuer)}}})
		return nil
	case resp.StatusCode != http.StatusUnauthorized:
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("GET /v2/ answered %s, want 401 with a Bearer challenge (is %s a registry? body: %s)", resp.Status, d.o.Registry, excerpt(body))})
		return nil
	}
	c, ok := bearerChallenge(resp)
	if !ok {
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("GET /v2/ answered 401 without a Bearer challenge (WWW-Authenticate: %q): the registry uses another authentication (htpasswd?), not token", resp.Header.Get("WWW-Authenticate")),
			Fixes:   []Fix{{SideRegistry, "auth.token", fmt.Sprintf("replace the registry's auth section with token: realm %q, service %q, issuer %q", realm, d.o.Token.Service, d.o.Token.Issuer)}}})
		return nil
	}
	status, msgs, fixes := StatusOK, []string(nil), []Fix(nil)
	if c.Realm != realm {
		status = StatusFail
		msg := fmt.Sprintf("the registry sends clients to realm %q, but the bridge's token endpoint is %q (public_url + /token): clients would ask the wrong server for tokens", c.Realm, realm)
		fixes = append(fixes, Fix{SideRegistry, "auth.token.realm", fmt.Sprintf("set to %q", realm)})
		if base, found := strings.CutSuffix(c.Realm, "/token"); found {
			if u, err := url.Parse(base); err == nil && u.Host != "" && (u.Path == "" || u.Path == "/") {
				fixes = append(fixes, Fix{SideBridge, "public_url", fmt.Sprintf("set to %q if that is where the bridge is reached", base)})
			}
		}
		msgs = append(msgs, msg)
	}
	if c.Service != d.o.Token.Service {
		status = StatusFail
		msgs = append(msgs, fmt.Sprintf("the registry's service is %q but the bridge's token.service is %q: clients ask for tokens for %q and the bridge refuses them (skopeo: \"invalid status code from registry 400\")", c.Service, d.o.Token.Service, c.Service))
		fixes = append(fixes,
			Fix{SideRegistry, "auth.token.service", fmt.Sprintf("set to %q", d.o.Token.Service)},
			Fix{SideBridge, "token.service", fmt.Sprintf("set to %q", c.Service)})
	}
	if status == StatusOK {
		msgs = append(msgs, fmt.Sprintf("401 Bearer realm=%q service=%q", c.Realm, c.Service))
		if u, err := url.Parse(c.Realm); err == nil && u.Scheme == "http" && strings.HasPrefix(d.o.Registry, "https:") {
			status = StatusWarn
			msgs = append(msgs, "the realm is plain http for an https registry: crane and regctl refuse it")
		}
	}
	if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		if skew := d.o.Now().Sub(date).Abs(); skew > clockLeeway/2 {
			if status == StatusOK {
				status = StatusWarn
			}
			msgs = append(msgs, fmt.Sprintf("the registry's clock is %s off from this host's: registries allow %s on token times", skew.Round(time.Second), clockLeeway))
		}
	}
	r.add(Result{Check: name, Status: status, Message: strings.Join(msgs, "; "), Fixes: fixes})
	return &c
}
