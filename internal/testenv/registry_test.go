package testenv

import (
	"strings"
	"testing"
)

func TestRegistryConfig(t *testing.T) {
	tests := []struct {
		name    string
		auth    TokenAuth
		want    []string
		notWant []string
	}{
		{
			name:    "no auth",
			want:    []string{`rootdirectory: "/s"`, `addr: "localhost:5000"`, "delete:\n    enabled: true"},
			notWant: []string{"auth:"},
		},
		{
			name: "token with bundle",
			auth: TokenAuth{Realm: "http://localhost:5001/token", Service: "registry.test", Issuer: "bridge", RootCertBundle: "/k/signing.crt"},
			want: []string{
				"auth:\n  token:\n",
				`    realm: "http://localhost:5001/token"`,
				`    service: "registry.test"`,
				`    issuer: "bridge"`,
				`    rootcertbundle: "/k/signing.crt"`,
			},
			notWant: []string{"jwks:"},
		},
		{
			name: "token with jwks",
			auth: TokenAuth{Realm: "r", Service: "s", Issuer: "i", RootCertBundle: "/k/c", JWKS: "/k/jwks.json"},
			want: []string{`    jwks: "/k/jwks.json"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := registryConfig("/s", "localhost:5000", tt.auth)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("config lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("config has %q:\n%s", w, got)
				}
			}
		})
	}
}
