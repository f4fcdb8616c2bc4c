package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// httpClient is the client of every request the tests make themselves.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// tokenResponse is the token endpoint's JSON (docs/protocol.md §1.3, §2.2).
type tokenResponse struct {
	Token        string          `json:"token"`
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	IssuedAt     string          `json:"issued_at"`
	Scope        string          `json:"scope"`
}

// grant is one entry of a token's "access" claim.
type grant struct {
	Type    string   `json:"type"`
	Class   string   `json:"class"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims are the JWT claims the tests look at.
type claims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	Access   []*grant        `json:"access"`
}

// actions returns the actions the token grants on repository name, sorted.
func (c claims) actions(name string) []string {
	var got []string
	for _, g := range c.Access {
		if g != nil && g.Type == "repository" && g.Name == name {
			got = append(got, g.Actions...)
		}
	}
	slices.Sort(got)
	return slices.Compact(got)
}

// doToken sends a token request and decodes a 200 answer. It returns the
// status and, for a 200, the parsed body.
func doToken(t testing.TB, req *http.Request) (int, tokenResponse) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Redacted(), err)
	}
	var tr tokenResponse
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q, want application/json", req.Method, req.URL.Path, ct)
		}
		if err := json.Unmarshal(body, &tr); err != nil {
			t.Fatalf("%s %s: 200 with a body that is not a token response: %v\n%s", req.Method, req.URL.Path, err, body)
		}
	}
	return resp.StatusCode, tr
}

// getToken is GET <bridge>/token?query, with Basic user:pass unless both
// are empty.
func getToken(t testing.TB, bridge string, query url.Values, user, pass string) (int, tokenResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, bridge+"/token?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	return doToken(t, req)
}

// postToken is POST <bridge>/token with form as the body, sent with the
// given Content-Type.
func postToken(t testing.TB, bridge string, form url.Values, contentType string) (int, tokenResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, bridge+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return doToken(t, req)
}

var integer = regexp.MustCompile(`^[0-9]+$`)

// checkGET asserts the GET response rules of docs/protocol.md §1.3 and returns
// the token's claims.
func checkGET(t testing.TB, tr tokenResponse) claims {
	t.Helper()
	if tr.Token == "" || tr.Token != tr.AccessToken {
		t.Errorf("token and access_token must be present and equal (token %d bytes, access_token %d bytes, equal %t)",
			len(tr.Token), len(tr.AccessToken), tr.Token == tr.AccessToken)
	}
	checkExpiry(t, tr)
	if _, err := time.Parse(time.RFC3339, tr.IssuedAt); err != nil {
		t.Errorf("issued_at %q is not RFC 3339: %v", tr.IssuedAt, err)
	}
	return decodeClaims(t, tr.AccessToken)
}

// checkPOST asserts the POST response rules of docs/protocol.md §2.2 and
// returns the token's claims.
func checkPOST(t testing.TB, tr tokenResponse) claims {
	t.Helper()
	if tr.AccessToken == "" {
		t.Fatalf("POST response without access_token")
	}
	checkExpiry(t, tr)
	return decodeClaims(t, tr.AccessToken)
}

func checkExpiry(t testing.TB, tr tokenResponse) {
	t.Helper()
	s := string(tr.ExpiresIn)
	n, err := strconv.Atoi(s)
	if !integer.MatchString(s) || err != nil {
		t.Errorf("expires_in is %s, want a JSON integer", s)
	} else if n < 60 {
		t.Errorf("expires_in is %d, want at least 60", n)
	}
}

// decodeClaims decodes a JWT's payload without verifying it: the
// registries verify it; the tests only look at what was granted.
func decodeClaims(t testing.TB, jwt string) claims {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWS compact serialisation (%d parts)", len(parts))
	}
	var h struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
	}
	decodePart(t, "header", parts[0], &h)
	if len(h.X5C) == 0 {
		t.Errorf("token header (alg %s) has no x5c, yet token.certificate_file is set (docs/reference.md)", h.Alg)
	}
	var c claims
	decodePart(t, "payload", parts[1], &c)
	var raw struct {
		Access json.RawMessage `json:"access"`
	}
	decodePart(t, "payload", parts[1], &raw)
	if len(raw.Access) == 0 || raw.Access[0] != '[' {
		t.Errorf("access claim is %q, want a JSON array, empty if nothing is granted (docs/protocol.md §7 T1)", raw.Access)
	}
	if c.Issuer != issuer {
		t.Errorf("iss = %q, want %q", c.Issuer, issuer)
	}
	if want, _ := json.Marshal(service); string(c.Audience) != string(want) {
		t.Errorf("aud = %s, want the string %s (registry 2.8 rejects arrays)", c.Audience, want)
	}
	for i, g := range c.Access {
		if g == nil {
			t.Errorf("access[%d] is null: it crashes the registry (docs/protocol.md §5.2)", i)
		}
	}
	return c
}

// decodePart decodes one base64url JSON part of a compact JWS into v.
func decodePart(t testing.TB, what, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("token %s: %v", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("token %s: %v\n%s", what, err, b)
	}
}

// registryResponse is what the tests keep of a registry answer.
type registryResponse struct {
	status    int
	challenge string // WWW-Authenticate
}

// registryDo sends method host/path to the registry with a bearer token
// ("" for none).
func registryDo(t testing.TB, method, host, path, token string) registryResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return registryResponse{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate")}
}

// jsonUnmarshal decodes s into v.
func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
