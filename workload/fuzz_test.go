package workload

import (
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary passwords to a Verifier whose one issuer is
// unreachable: whatever arrives, it answers an *Error, never a panic.
func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3guZXhhbXBsZS5jb20ifQ.c2ln")
	f.Add("eyJ.eyJ.")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOjF9.")
	f.Add("rbp_abc_def")
	v, err := New(Config{Issuers: []IssuerConfig{{Name: "x", URL: "https://127.0.0.1:1", Audiences: []string{"a"},
		ClaimMappings: ClaimMappings{Username: PrefixedClaim{Prefix: "x-", Claim: "sub"}}}}},
		Options{Timeout: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = LooksLikeJWT(s)
		if _, err := v.Verify(t.Context(), s); err == nil {
			t.Fatalf("Verify(%q) accepted", s)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("Verify(%q): %T, want *Error", s, err)
		}
	})
}
