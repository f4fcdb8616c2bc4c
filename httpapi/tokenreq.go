package httpapi

import (
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/registry-bridge/bridge/scope"
)

// Limits on token requests. Real clients send a few hundred bytes.
const (
	maxQueryBytes         = 8 << 10
	maxFormBytes          = 16 << 10
	maxAuthorizationBytes = 4 << 10
)

// Grant kinds of a token request.
const (
	grantBasic     = "basic"         // GET with Basic credentials
	grantAnonymous = "anonymous"     // GET without credentials
	grantPassword  = "password"      // POST grant_type=password
	grantRefresh   = "refresh_token" // POST grant_type=refresh_token
	grantDevice    = "device_code"   // POST grant_type=urn:ietf:params:oauth:grant-type:device_code
)

// tokenRequest is a parsed GET or POST to the token endpoint.
type tokenRequest struct {
	grant    string
	username string
	// secret is an app password or a refresh token. Never log it.
	secret   string
	service  string
	scopes   []scope.Scope
	offline  bool
	clientID string
}

// parseTokenRequest reads a token request from its parts, without I/O, so
// that it can be fuzzed. body is the POST body, already size-limited.
func parseTokenRequest(method, rawQuery, authorization, contentType string, body []byte) (tokenRequest, *httpError) {
	switch method {
	case http.MethodGet:
		return parseGet(rawQuery, authorization)
	case http.MethodPost:
		return parsePost(contentType, body)
	}
	return tokenRequest{}, &httpError{status: http.StatusMethodNotAllowed, code: "invalid_request", public: "use GET or POST"}
}

func parseGet(rawQuery, authorization string) (tokenRequest, *httpError) {
	if len(rawQuery) > maxQueryBytes {
		return tokenRequest{}, &httpError{status: http.StatusRequestURITooLong, code: "invalid_request", public: "query string too long"}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return tokenRequest{}, badRequest("malformed query string: %v", err)
	}
	req, herr := parseCommon(q)
	if herr != nil {
		return tokenRequest{}, herr
	}
	req.offline = q.Get("offline_token") == "true"
	req.grant = grantAnonymous
	if authorization != "" {
		user, pass, herr := parseBasic(authorization)
		if herr != nil {
			return tokenRequest{}, herr
		}
		req.grant, req.username, req.secret = grantBasic, user, pass
		// account is not in the current spec but clients still send it;
		// when present with a username it must name the same user.
		if acct := q.Get("account"); acct != "" && user != "" && acct != user {
			return tokenRequest{}, badRequest("account %q does not match the username", acct)
		}
	}
	return req, nil
}

func parsePost(contentType string, body []byte) (tokenRequest, *httpError) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return tokenRequest{}, &httpError{status: http.StatusUnsupportedMediaType, code: "invalid_request",
			public: "POST needs Content-Type: application/x-www-form-urlencoded"}
	}
	if len(body) > maxFormBytes {
		return tokenRequest{}, &httpError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", public: "form too large"}
	}
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return tokenRequest{}, badRequest("malformed form: %v", err)
	}
	req, herr := parseCommon(f)
	if herr != nil {
		return tokenRequest{}, herr
	}
	req.offline = f.Get("access_type") == "offline"
	switch gt := f.Get("grant_type"); gt {
	case grantPassword:
		req.grant, req.username, req.secret = grantPassword, f.Get("username"), f.Get("password")
		if req.username == "" || req.secret == "" {
			return tokenRequest{}, badRequest("grant_type=password needs username and password")
		}
	case grantRefresh:
		req.grant, req.username, req.secret = grantRefresh, f.Get("username"), f.Get("refresh_token")
		if req.secret == "" {
			return tokenRequest{}, badRequest("grant_type=refresh_token needs refresh_token")
		}
	case grantDeviceCode:
		req.grant, req.secret = grantDevice, f.Get("device_code")
		if req.secret == "" || req.clientID == "" {
			return tokenRequest{}, badRequest("the device_code grant needs device_code and client_id")
		}
	case "":
		return tokenRequest{}, badRequest("missing grant_type")
	default:
		return tokenRequest{}, &httpError{status: http.StatusBadRequest, code: "unsupported_grant_type",
			public: "unsupported grant_type " + quoteTrunc(gt) + "; use password or refresh_token"}
	}
	for _, field := range []string{req.username, req.secret} {
		if !utf8.ValidString(field) {
			return tokenRequest{}, badRequest("credentials are not UTF-8")
		}
	}
	return req, nil
}

// parseCommon reads the parameters GET and POST share.
func parseCommon(v url.Values) (tokenRequest, *httpError) {
	for _, key := range []string{"service", "client_id", "account"} {
		if len(v[key]) > 1 {
			return tokenRequest{}, badRequest("parameter %s given %d times", key, len(v[key]))
		}
		if !utf8.ValidString(v.Get(key)) {
			return tokenRequest{}, badRequest("parameter %s is not UTF-8", key)
		}
	}
	scopes, err := scope.ParseAll(v["scope"])
	if err != nil {
		return tokenRequest{}, &httpError{status: http.StatusBadRequest, code: "invalid_scope", public: err.Error()}
	}
	return tokenRequest{service: v.Get("service"), scopes: scopes, clientID: v.Get("client_id")}, nil
}

var errNotBasic = errors.New("not basic")

// parseBasic parses an Authorization: Basic header (RFC 7617). The
// username may be empty (containerd's identity-token fallback sends
// "Basic :<token>"); the password may contain ':'.
func parseBasic(h string) (user, pass string, herr *httpError) {
	if len(h) > maxAuthorizationBytes {
		return "", "", badRequest("Authorization header too long")
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", &httpError{status: http.StatusUnauthorized, code: "invalid_client",
			public: "the token endpoint takes Basic credentials (username and app password)", cause: errNotBasic}
	}
	// Credentials were sent but cannot be read: that is a failed
	// authentication (401, as the distribution token spec says), which clients report as
	// "invalid username/password", not a malformed request.
	bad := func(why string) *httpError {
		return &httpError{status: http.StatusUnauthorized, code: "invalid_client", public: "Authorization: Basic credentials " + why}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", bad("are not valid base64")
	}
	s := string(raw)
	if !utf8.ValidString(s) {
		return "", "", bad("are not UTF-8")
	}
	user, pass, ok = strings.Cut(s, ":")
	if !ok {
		return "", "", bad("lack the ':' between username and password")
	}
	return user, pass, nil
}

func quoteTrunc(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(`"`+s+`"`, "?")
}
