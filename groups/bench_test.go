package groups

import (
	"fmt"
	"testing"

	"github.com/registry-bridge/bridge/scope"
)

// bigRules returns n rules, almost all of the "one team, its namespace"
// kind, plus the broad rules of a real configuration. When wildcardFirst is
// set the team patterns start with a wildcard segment, which defeats the
// first-segment index.
func bigRules(n int, wildcardFirst bool) []Rule {
	rules := append(testRules(), Rule{Groups: []string{"*-admins"}, Repositories: []string{"${group}/**"}, Actions: []string{"*"}})
	for i := len(rules); i < n; i++ {
		team := fmt.Sprintf("team-%d", i)
		pats := []string{team + "/**", "shared/" + team + "-*"}
		if wildcardFirst {
			pats = []string{"*/" + team + "/**", "*/shared/" + team + "-*"}
		}
		rules = append(rules, Rule{Groups: []string{team}, Repositories: pats, Actions: []string{"pull", "push"}})
	}
	return rules
}

// benchSubject is a user in 50 groups spread over the big rule set.
func benchSubject() Subject {
	sub := Subject{Username: "alice"}
	for i := range 49 {
		sub.Groups = append(sub.Groups, fmt.Sprintf("team-%d", 20+i*200))
	}
	sub.Groups = append(sub.Groups, "proj-x")
	return sub
}

func benchGrant(b *testing.B, rules []Rule, req string) {
	p := mustCompile(b, rules)
	sub := benchSubject()
	scopes := scopes(b, req)
	b.ReportAllocs()
	for b.Loop() {
		p.Grant(sub, scopes)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(scopes)), "ns/scope")
}

// BenchmarkGrant10kRules is the common case: 10,000 rules, a user in 50
// groups, one scope that a team rule grants.
func BenchmarkGrant10kRules(b *testing.B) {
	benchGrant(b, bigRules(10000, false), "repository:team-4020/app:pull,push")
}

// BenchmarkGrant10kRulesDenied requests a repository no rule grants, so
// every applying index is searched.
func BenchmarkGrant10kRulesDenied(b *testing.B) {
	benchGrant(b, bigRules(10000, false), "repository:elsewhere/app:pull,push")
}

// BenchmarkGrant10kRulesStar requests "*", which no rule of the subject
// holds, so every applying index is searched.
func BenchmarkGrant10kRulesStar(b *testing.B) {
	benchGrant(b, bigRules(10000, false), "repository:team-4020/app:*")
}

// BenchmarkGrant10kRules8Scopes is a blob-mount sized request.
func BenchmarkGrant10kRules8Scopes(b *testing.B) {
	benchGrant(b, bigRules(10000, false), "repository:team-4020/app:pull,push repository:team-20/base:pull "+
		"repository:shared/team-220-x:pull repository:alice/tools:* repository:proj-x/lib:pull "+
		"repository:public/busybox:pull repository:elsewhere/x:pull registry:catalog:*")
}

// BenchmarkGrant10kWildcardRules has every team pattern start with '*', so
// the first-segment index cannot help.
func BenchmarkGrant10kWildcardRules(b *testing.B) {
	benchGrant(b, bigRules(10000, true), "repository:x/team-4020/app:pull,push")
}

func BenchmarkExplain10kRules(b *testing.B) {
	p := mustCompile(b, bigRules(10000, false))
	sub := benchSubject()
	req := []scope.Scope{{Type: scope.TypeRepository, Name: "team-4020/app", Actions: []string{"pull", "push"}}}
	b.ReportAllocs()
	for b.Loop() {
		p.Explain(sub, req)
	}
}

func BenchmarkSummary10kRules(b *testing.B) {
	p := mustCompile(b, bigRules(10000, false))
	sub := benchSubject()
	b.ReportAllocs()
	for b.Loop() {
		p.Summary(sub)
	}
}

func BenchmarkCompile10kRules(b *testing.B) {
	rules := bigRules(10000, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(rules); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGrantAllocations(t *testing.T) {
	p := mustCompile(t, bigRules(1000, false))
	sub := benchSubject()
	req := scopes(t, "repository:team-420/app:pull,push repository:elsewhere/x:* registry:catalog:*")
	// One slice of scopes and one backing array for their actions.
	if n := testing.AllocsPerRun(100, func() { p.Grant(sub, req) }); n > 2 {
		t.Errorf("Grant allocates %v times per call, want at most 2", n)
	}
}
