package workload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := func() IssuerConfig {
		return IssuerConfig{Name: "gh", URL: "https://token.actions.githubusercontent.com", Audiences: []string{aud},
			ClaimMappings: ClaimMappings{Username: PrefixedClaim{Prefix: "gha-", Claim: "repository_id"}}}
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(c *Config)
		wants []string // each must appear in the error; none: valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"every problem at once with key paths", func(c *Config) {
			is := &c.Issuers[0]
			is.Audiences = nil
			is.Algorithms = []string{"none", "HS256", "ES256"}
			is.URL = "http://idp.example.com"
			is.Reuse = "sometimes"
			is.RefreshTokenLifetime = 2 * time.Hour
			is.ClaimValidationRules = []ClaimValidationRule{{Expression: "claims.ref ="}, {Expression: "claims.ref"}, {Expression: "'x'"}, {}}
			is.ClaimMappings.Username = PrefixedClaim{Expression: "1 + 1"}
			is.ClaimMappings.Groups = PrefixedClaim{Expression: "[1, 2]"}
			is.UserValidationRules = []UserValidationRule{{Expression: "user.username"}, {Expression: "user.nope +"}}
			is.CertificateAuthorityFile = ca
		}, []string{
			"w.issuers[0].audiences: at least one",
			`w.issuers[0].algorithms[0]: "none" is not allowed`,
			`w.issuers[0].algorithms[1]: "HS256" is not allowed`,
			"w.issuers[0].url: \"http://idp.example.com\": want https",
			"w.issuers[0].reuse:",
			"w.issuers[0].refresh_token_lifetime:",
			"w.issuers[0].claim_validation_rules[0].expression: ERROR",
			"w.issuers[0].claim_validation_rules[2].expression: the expression yields string; want bool",
			"w.issuers[0].claim_validation_rules[3]: set expression",
			"w.issuers[0].claim_mappings.username.prefix: required",
			"w.issuers[0].claim_mappings.username.expression: the expression yields int; want string",
			"w.issuers[0].claim_mappings.groups.expression: the expression yields list(int)",
			"w.issuers[0].user_validation_rules[1].expression: ERROR",
			"w.issuers[0].certificate_authority_file:",
		}},
		{"duplicate names, urls and overlapping prefixes", func(c *Config) {
			b := good()
			b.ClaimMappings.Username.Prefix = "gha-x"
			c.Issuers = append(c.Issuers, b)
		}, []string{`w.issuers[1].name: "gh" is also`, "w.issuers[1].url:", `w.issuers[1].claim_mappings.username.prefix: "gha-x" overlaps`}},
		{"prefix with a slash", func(c *Config) { c.Issuers[0].ClaimMappings.Username.Prefix = "a/" }, []string{"claim_mappings.username.prefix: unusable username"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Issuers: []IssuerConfig{good()}}
			tc.edit(&c)
			c.SetDefaults()
			err := c.Validate("w")
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCostLimit(t *testing.T) {
	c := Config{Issuers: []IssuerConfig{{Name: "gh", URL: "https://x.example.com", Audiences: []string{aud},
		ClaimValidationRules: []ClaimValidationRule{{Expression: `claims.items.all(a, claims.items.all(b, claims.items.all(c, a + b + c != "")))`}},
		ClaimMappings:        ClaimMappings{Username: PrefixedClaim{Prefix: "gha-", Claim: "sub"}}}}}
	items := make([]any, 200)
	for i := range items {
		items[i] = "x"
	}
	_, steps, err := ExplainClaims(c, "gh", map[string]any{"sub": "x", "aud": aud, "items": items})
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("an expensive rule: %v %+v", err, steps)
	}
}
