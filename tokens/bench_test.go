package tokens

import (
	"testing"

	"github.com/registry-bridge/bridge/scope"
)

// benchAccess is a typical push grant: the repository and a mount source.
var benchAccess = []scope.Scope{
	{Type: scope.TypeRepository, Name: "team-a/app", Actions: []string{scope.ActionPull, scope.ActionPush}},
	{Type: scope.TypeRepository, Name: "team-a/base", Actions: []string{scope.ActionPull}},
}

func benchmarkIssue(b *testing.B, alg string, withCert bool) {
	iss := newTestIssuer(b, alg, withCert, "", Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Issue("alice", benchAccess); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueES256(b *testing.B)    { benchmarkIssue(b, "ES256", false) }
func BenchmarkIssueES256x5c(b *testing.B) { benchmarkIssue(b, "ES256", true) }
func BenchmarkIssueRS256(b *testing.B)    { benchmarkIssue(b, "RS256", false) }
