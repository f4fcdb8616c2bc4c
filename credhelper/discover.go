package credhelper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseBytes bounds every answer the helper reads.
const maxResponseBytes = 64 << 10

// Metadata is the part of the bridge's RFC 8414 metadata the helper uses.
type Metadata struct {
	Issuer                      string `json:"issuer"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

// registryKey normalizes what clients pass as the server URL
// ("host:port", "https://host:port", "http://host/v2/") to host[:port].
func registryKey(serverURL string) (string, error) {
	s := strings.TrimSpace(serverURL)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server URL %q: want host[:port]", serverURL)
	}
	return strings.ToLower(u.Host), nil
}

// isLoopback reports whether host (without port) is a loopback name or
// address.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// schemes are the schemes to try for registry: https, and plain http
// only for loopback hosts or those Options.Insecure names.
func (h *Helper) schemes(registry string) []string {
	host := registry
	if hh, _, err := net.SplitHostPort(registry); err == nil {
		host = hh
	}
	if isLoopback(host) || h.o.Insecure[registry] {
		return []string{"https", "http"}
	}
	return []string{"https"}
}

// discover finds the bridge behind registry: GET /v2/ answers 401 with a
// Bearer challenge whose realm is the bridge's token endpoint; the
// bridge's metadata names the rest.
func (h *Helper) discover(ctx context.Context, registry string) (string, Metadata, error) {
	var errs []error
	for _, scheme := range h.schemes(registry) {
		realm, err := h.realm(ctx, scheme+"://"+registry+"/v2/")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(realm, "/"), "/token")
		md, err := h.metadata(ctx, base)
		if err != nil {
			return "", Metadata{}, err
		}
		return base, md, nil
	}
	return "", Metadata{}, fmt.Errorf("find the login server of %s: %w", registry, errors.Join(errs...))
}

// realm returns the Bearer realm of the registry's challenge at u.
func (h *Helper) realm(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := h.o.HTTPClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	for _, c := range resp.Header.Values("WWW-Authenticate") {
		if realm := bearerRealm(c); realm != "" {
			if _, err := h.secureURL("realm", realm); err != nil {
				return "", fmt.Errorf("GET %s: %w", u, err)
			}
			return realm, nil
		}
	}
	return "", fmt.Errorf("GET %s: %s without a Bearer challenge: the registry does not use token authentication", u, resp.Status)
}

// bearerRealm returns the realm parameter of a Bearer challenge, or "".
func bearerRealm(challenge string) string {
	scheme, params, ok := strings.Cut(strings.TrimSpace(challenge), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	for params != "" {
		var kv string
		params = strings.TrimLeft(params, " ,")
		// A quoted value may contain commas.
		eq := strings.IndexByte(params, '=')
		if eq < 0 {
			return ""
		}
		key := strings.TrimSpace(params[:eq])
		rest := params[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return ""
			}
			val, params = rest[1:1+end], rest[2+end:]
		} else {
			kv, params, _ = strings.Cut(rest, ",")
			val = strings.TrimSpace(kv)
		}
		if strings.EqualFold(key, "realm") {
			return val
		}
	}
	return ""
}

// metadata reads the bridge's RFC 8414 metadata.
func (h *Helper) metadata(ctx context.Context, base string) (Metadata, error) {
	u := base + "/.well-known/oauth-authorization-server"
	var md Metadata
	if err := h.getJSON(ctx, u, &md); err != nil {
		return md, err
	}
	if md.DeviceAuthorizationEndpoint == "" || md.TokenEndpoint == "" {
		return md, fmt.Errorf("GET %s: the server offers no device login (is it a registry-bridge with the browser login on?)", u)
	}
	for _, ep := range []struct{ what, u string }{
		{"token_endpoint", md.TokenEndpoint}, {"device_authorization_endpoint", md.DeviceAuthorizationEndpoint},
		{"revocation_endpoint", md.RevocationEndpoint},
	} {
		if ep.u == "" {
			continue
		}
		if err := h.sameOrigin(ep.what, base, ep.u); err != nil {
			return Metadata{}, fmt.Errorf("GET %s: %w", u, err)
		}
	}
	return md, nil
}

func (h *Helper) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := h.o.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, clean(resp.Status))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
