package httpapi

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestParseGet(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		authz      string
		wantGrant  string
		wantUser   string
		wantSecret string
		wantScopes int
		wantOff    bool
	}{
		{"docker login", "account=alice&client_id=docker&offline_token=true&service=reg", basic("alice", "pw"), grantBasic, "alice", "pw", 0, true},
		{"anonymous pull", "service=reg&scope=repository:a/b:pull", "", grantAnonymous, "", "", 1, false},
		{"repeated scopes", "scope=repository:a/b:pull&scope=repository:c/d:push,pull&service=reg", basic("u", "p"), grantBasic, "u", "p", 2, false},
		{"space scopes", "scope=repository:a/b:pull%20repository:c/d:pull", basic("u", "p"), grantBasic, "u", "p", 2, false},
		{"empty scope", "scope=&service=", basic("u", "p"), grantBasic, "u", "p", 0, false},
		{"password with colon", "service=reg", basic("u", "a:b:c"), grantBasic, "u", "a:b:c", 0, false},
		{"empty username", "service=reg", basic("", "tok"), grantBasic, "", "tok", 0, false},
		{"unknown params", "service=reg&foo=bar&client_id=regclient/regctl%20(x)", basic("u", "p"), grantBasic, "u", "p", 0, false},
		{"lowercase scheme", "", "basic " + base64.StdEncoding.EncodeToString([]byte("u:p")), grantBasic, "u", "p", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, herr := parseTokenRequest(http.MethodGet, tt.query, tt.authz, "", nil)
			if herr != nil {
				t.Fatalf("error: %v", herr)
			}
			if req.grant != tt.wantGrant || req.username != tt.wantUser || req.secret != tt.wantSecret ||
				len(req.scopes) != tt.wantScopes || req.offline != tt.wantOff {
				t.Fatalf("got %+v", req)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, method, query, authz, ctype, body string
		status                                  int
		wantSub                                 string
	}{
		{"bad scope", "GET", "scope=repository:A:pull", "", "", "", 400, "invalid scope"},
		{"unknown action", "GET", "scope=repository:a:frob", "", "", "", 400, "unknown action"},
		{"bad escape", "GET", "scope=%zz", "", "", "", 400, "malformed query"},
		{"long query", "GET", "scope=" + strings.Repeat("a", maxQueryBytes), "", "", "", 414, "too long"},
		{"bearer", "GET", "", "Bearer abc", "", "", 401, "Basic credentials"},
		{"bad base64", "GET", "", "Basic !!!", "", "", 401, "base64"},
		{"no colon", "GET", "", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), "", "", 401, "':'"},
		{"non utf8", "GET", "", "Basic " + base64.StdEncoding.EncodeToString([]byte("a\xff:b")), "", "", 401, "UTF-8"},
		{"account mismatch", "GET", "account=bob", basic("alice", "p"), "", "", 400, "does not match"},
		{"service twice", "GET", "service=a&service=b", "", "", "", 400, "given 2 times"},
		{"post json", "POST", "", "", "application/json", "{}", 415, "x-www-form-urlencoded"},
		{"post no grant", "POST", "", "", "application/x-www-form-urlencoded", "service=reg", 400, "missing grant_type"},
		{"post unknown grant", "POST", "", "", "application/x-www-form-urlencoded", "grant_type=client_credentials", 400, "unsupported grant_type"},
		{"post password missing", "POST", "", "", "application/x-www-form-urlencoded", "grant_type=password&username=a", 400, "needs username and password"},
		{"post refresh missing", "POST", "", "", "application/x-www-form-urlencoded", "grant_type=refresh_token", 400, "needs refresh_token"},
		{"post bad scope", "POST", "", "", "application/x-www-form-urlencoded", "grant_type=password&username=a&password=b&scope=repository:a", 400, "invalid scope"},
		{"put", "PUT", "", "", "", "", 405, "GET or POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, herr := parseTokenRequest(tt.method, tt.query, tt.authz, tt.ctype, []byte(tt.body))
			if herr == nil {
				t.Fatal("no error")
			}
			if herr.status != tt.status || !strings.Contains(herr.public, tt.wantSub) {
				t.Fatalf("got %d %q, want %d containing %q", herr.status, herr.public, tt.status, tt.wantSub)
			}
		})
	}
}

func TestParsePost(t *testing.T) {
	ct := "application/x-www-form-urlencoded; charset=utf-8"
	req, herr := parseTokenRequest("POST", "", "", ct,
		[]byte("grant_type=password&username=alice&password=pw&client_id=containerd-client&service=reg&scope=repository:a/b:pull+repository:c:push&access_type=offline"))
	if herr != nil {
		t.Fatal(herr)
	}
	if req.grant != grantPassword || req.username != "alice" || req.secret != "pw" || len(req.scopes) != 2 || !req.offline {
		t.Fatalf("got %+v", req)
	}
	// containers/image repeats the scope field.
	req, herr = parseTokenRequest("POST", "", "", ct,
		[]byte("grant_type=refresh_token&refresh_token=rt&client_id=containers/image&service=reg&scope=repository:a/b:pull&scope=repository:c:push"))
	if herr != nil {
		t.Fatal(herr)
	}
	if req.grant != grantRefresh || req.secret != "rt" || len(req.scopes) != 2 {
		t.Fatalf("got %+v", req)
	}
}

func FuzzParseTokenRequest(f *testing.F) {
	f.Add("GET", "service=reg&scope=repository:a/b:pull", basic("u", "p"), "", "")
	f.Add("POST", "", "", "application/x-www-form-urlencoded", "grant_type=password&username=a&password=b&scope=repository:a:pull")
	f.Add("POST", "", "", "application/x-www-form-urlencoded; charset=utf-8", "grant_type=refresh_token&refresh_token=x")
	f.Add("GET", "scope=%zz", "Basic !!", "", "")
	f.Fuzz(func(t *testing.T, method, query, authz, ctype, body string) {
		req, herr := parseTokenRequest(method, query, authz, ctype, []byte(body))
		if herr != nil {
			if herr.status < 400 || herr.status > 499 || herr.public == "" {
				t.Fatalf("error %v: want a 4xx with a message", herr)
			}
			return
		}
		for _, s := range req.scopes {
			if s.Actions == nil {
				t.Fatalf("nil actions in %+v", s)
			}
		}
		if req.grant == "" {
			t.Fatal("no grant kind")
		}
	})
}

func FuzzParseBasic(f *testing.F) {
	f.Add(basic("alice", "pw"))
	f.Add("Basic Og==")
	f.Add("basic")
	f.Fuzz(func(t *testing.T, h string) {
		user, pass, herr := parseBasic(h)
		if herr != nil {
			if herr.status != 400 && herr.status != 401 {
				t.Fatalf("status %d", herr.status)
			}
			return
		}
		if strings.Contains(user, ":") {
			t.Fatalf("username %q contains ':'", user)
		}
		_ = pass
	})
}
