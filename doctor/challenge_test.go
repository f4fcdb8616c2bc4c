package doctor

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         challenge
		ok           bool
	}{
		{"v2 root", `Bearer realm="http://localhost:5001/token",service="registry.test"`,
			challenge{Realm: "http://localhost:5001/token", Service: "registry.test"}, true},
		{"invalid token", `Bearer realm="https://b/token",service="r",scope="repository:a/b:pull,push",error="invalid_token"`,
			challenge{Realm: "https://b/token", Service: "r", Scope: "repository:a/b:pull,push", Error: "invalid_token"}, true},
		{"escaped quote, spaces", `bearer realm="a\"b" , service=svc`, challenge{Realm: `a"b`, Service: "svc"}, true},
		{"basic", `Basic realm="x"`, challenge{}, false},
		{"unterminated", `Bearer realm="x`, challenge{}, false},
		{"no realm", `Bearer service="x"`, challenge{Service: "x"}, false},
		{"garbage", `Bearer ,,,`, challenge{}, false},
		{"too long", `Bearer realm="` + strings.Repeat("a", maxChallenge) + `"`, challenge{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseChallenge(tc.header)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("parseChallenge(%q) = %+v, %v; want %+v, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="http://localhost:5001/token",service="registry.test",error="invalid_token"`)
	f.Add(`Bearer realm="a\`)
	f.Fuzz(func(t *testing.T, h string) { parseChallenge(h) })
}

func TestTamper(t *testing.T) {
	sig := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))
	raw := "aGVhZA.Ym9keQ." + sig
	got := tamper(raw)
	if got == raw || !strings.HasPrefix(got, "aGVhZA.Ym9keQ.") || len(got) != len(raw) {
		t.Fatalf("tamper(%q) = %q", raw, got)
	}
}
