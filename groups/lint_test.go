package groups

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/scope"
)

// squatKey names a Squat finding in the tables below: "rule/pattern →
// other/pattern user repo".
func squatKey(f Finding) string {
	return fmt.Sprintf("%d %s → %d %s: %s %s", f.Rule, f.Pattern, f.Other, f.OtherPattern, f.Username, f.Repository)
}

func TestLintSquats(t *testing.T) {
	admins := Rule{Groups: []string{"registry-admins"}, Repositories: []string{"**"}, Actions: []string{"pull", "push", "delete"}, Catalog: true}
	teamA := Rule{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull", "push"}}
	teams := Rule{Groups: []string{"team-*"}, Repositories: []string{"${group}/**"}, Actions: []string{"pull", "push"}}
	public := Rule{Anonymous: true, Repositories: []string{"public/**"}, Actions: []string{"pull"}}
	mine := func(pat string) Rule {
		return Rule{Users: []string{"*"}, Repositories: []string{pat}, Actions: []string{"pull", "push", "delete"}}
	}
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{
			name:  "the old shipped rules",
			rules: []Rule{admins, teams, mine("${username}/**"), public},
			want: []string{
				"2 ${username}/** → 1 ${group}/**: team- team-",
				"2 ${username}/** → 3 public/**: public public",
			},
		},
		{
			name:  "the old contract rules",
			rules: []Rule{admins, teamA, mine("${username}/**"), public},
			want: []string{
				"2 ${username}/** → 1 team-a/**: team-a team-a",
				"2 ${username}/** → 3 public/**: public public",
			},
		},
		{
			name:  "a reserved prefix cannot be reached",
			rules: []Rule{admins, teams, teamA, mine("users/${username}/**"), public},
		},
		{
			name: "a group namespace under the prefix can",
			rules: []Rule{
				mine("users/${username}/**"),
				{Groups: []string{"ops"}, Repositories: []string{"users/ops-cache/**"}, Actions: []string{"pull"}},
			},
			want: []string{"0 users/${username}/** → 1 users/ops-cache/**: ops-cache users/ops-cache"},
		},
		{
			name: "part of a segment",
			rules: []Rule{
				mine("${username}-private/**"),
				{Groups: []string{"infra"}, Repositories: []string{"infra-private"}, Actions: []string{"pull"}},
				{Groups: []string{"x"}, Repositories: []string{"*-private/**"}, Actions: []string{"pull"}},
			},
			want: []string{
				"0 ${username}-private/** → 1 infra-private: infra infra-private",
				"0 ${username}-private/** → 2 *-private/**: x x-private",
			},
		},
		{
			name: "a deep pattern in the middle",
			rules: []Rule{
				mine("u/${username}"),
				{Groups: []string{"g"}, Repositories: []string{"**/release"}, Actions: []string{"push"}},
			},
			want: []string{"0 u/${username} → 1 **/release: release u/release"},
		},
		{
			name: "a username glob constrains the value",
			rules: []Rule{
				{Users: []string{"bot-*"}, Repositories: []string{"${username}/**"}, Actions: []string{"push"}},
				{Groups: []string{"g"}, Repositories: []string{"team-a/**", "bot-x/**"}, Actions: []string{"pull"}},
			},
			want: []string{"0 ${username}/** → 1 bot-x/**: bot-x bot-x", "users glob"},
		},
		{
			name: "a group pattern that cannot take the name",
			rules: []Rule{
				mine("${username}/**"),
				{Groups: []string{"team-*"}, Repositories: []string{"${group}/**"}, Actions: []string{"pull"}},
				{Groups: []string{"ops"}, Repositories: []string{"${group}-x/**"}, Actions: []string{"pull"}},
			},
			want: []string{
				"0 ${username}/** → 1 ${group}/**: team- team-",
				"0 ${username}/** → 2 ${group}-x/**: ops-x ops-x",
			},
		},
		{
			name: "a username-keyed rule through groups",
			rules: []Rule{
				{Groups: []string{"dev"}, Repositories: []string{"${username}/**"}, Actions: []string{"push"}},
				teamA,
			},
			want: []string{"0 ${username}/** → 1 team-a/**: team-a team-a"},
		},
		{
			name: "nothing gained: the other rule gives everyone as much",
			rules: []Rule{
				{Users: []string{"*"}, Repositories: []string{"${username}/**"}, Actions: []string{"pull"}},
				public,
			},
		},
		{
			name: "a colon is no username character",
			rules: []Rule{
				mine("${username}"),
				{Groups: []string{"g"}, Repositories: []string{"a:b"}, Actions: []string{"pull"}},
			},
		},
		{
			name: "literal users are their own namespaces",
			rules: []Rule{
				{Users: []string{"alice"}, Repositories: []string{"${username}/**"}, Actions: []string{"push"}},
				teamA,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range Lint(tc.rules) {
				if f.Kind != Squat {
					continue
				}
				if f.Other < 0 {
					got = append(got, "users glob")
					continue
				}
				got = append(got, squatKey(f))
				checkWitness(t, tc.rules, f)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("squats:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// checkWitness checks a Squat's example with the real policy: the username
// reaches the repository through the finding's rule, and the other rule's
// pattern matches it.
func checkWitness(t *testing.T, rules []Rule, f Finding) {
	t.Helper()
	if err := validUsername(f.Username); err != nil {
		t.Errorf("%s: example username: %v", f.Message, err)
	}
	r := rules[f.Rule]
	sub := Subject{Username: f.Username}
	if len(r.Groups) > 0 {
		sub.Groups = []string{globExample(r.Groups[0])}
	}
	pol := mustCompile(t, []Rule{r})
	req := []scope.Scope{{Type: scope.TypeRepository, Name: f.Repository, Actions: []string{"pull", "push", "delete"}}}
	if got := pol.Grant(sub, req)[0].Actions; len(got) == 0 {
		t.Errorf("%s: %+v gets nothing on %s through access[%d]", f.Message, sub, f.Repository, f.Rule)
	}
	q, _ := parsePattern(f.OtherPattern)
	segs, _ := splitName(f.Repository, nil)
	matched := !q.usesGroup && q.match(segs, &bindings{})
	for _, g := range rules[f.Other].Groups {
		if q.usesGroup && !isGlob(g) && q.match(segs, &bindings{group: g}) {
			matched = true
		}
	}
	if q.usesGroup && !matched && isGlob(rules[f.Other].Groups[0]) {
		// ${group} may be any group matching the glob: the example's
		// first segment is one if the pattern starts with it.
		matched = true
	}
	if !matched {
		t.Errorf("%s: %s does not match %s", f.Message, f.OtherPattern, f.Repository)
	}
}

// validUsername mirrors passwords.ValidUsername for the characters an
// example can hold (groups may not import passwords).
func validUsername(u string) error {
	if u == "" || strings.ContainsAny(u, ": /") {
		return fmt.Errorf("username %q is not valid", u)
	}
	return nil
}

// TestLintFindsEveryOverlap checks the analysis against brute force: over
// small alphabets of usernames and repository names, every username that
// reaches a repository through a ${username} pattern which another rule's
// literal pattern also matches must come with a finding for that pair.
func TestLintFindsEveryOverlap(t *testing.T) {
	userPats := []string{"${username}", "${username}/**", "a/${username}", "${username}-b", "*${username}", "**/${username}/a", "${username}*/**"}
	otherPats := []string{"a", "a/**", "a-b", "ab", "b/a", "a/a", "**/a", "x*/a", "*-b/**", "a/b/a"}
	var names []string
	for _, a := range []string{"a", "b", "x", "a-b", "ab", "xa"} {
		names = append(names, a)
		for _, b := range []string{"a", "b"} {
			names = append(names, a+"/"+b)
			for _, c := range []string{"a"} {
				names = append(names, a+"/"+b+"/"+c)
			}
		}
	}
	users := []string{"a", "b", "x", "a-b", "ab", "xa"}
	for _, up := range userPats {
		for _, op := range otherPats {
			rules := []Rule{
				{Users: []string{"*"}, Repositories: []string{up}, Actions: []string{"push"}},
				{Groups: []string{"g"}, Repositories: []string{op}, Actions: []string{"pull"}},
			}
			found := false
			for _, f := range Lint(rules) {
				found = found || f.Kind == Squat && f.Rule == 0 && f.Other == 1
			}
			p, _ := parsePattern(up)
			q, _ := parsePattern(op)
			var example string
			for _, u := range users {
				for _, n := range names {
					segs, _ := splitName(n, nil)
					if p.match(segs, &bindings{user: u}) && q.match(segs, &bindings{}) {
						example = u + " on " + n
					}
				}
			}
			if example != "" && !found {
				t.Errorf("%s vs %s: no finding, but %s overlaps", up, op, example)
			}
		}
	}
}

func TestLintRedundant(t *testing.T) {
	teamA := Rule{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull", "push"}}
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{"duplicate", []Rule{teamA, teamA}, []string{"access[1] duplicates access[0]"}},
		{"covered by an admin rule", []Rule{
			{Groups: []string{"team-a", "ops"}, Repositories: []string{"**"}, Actions: []string{"*"}},
			teamA,
		}, []string{"access[1] adds nothing: access[0] grants at least the same actions on the same repositories to everyone it applies to"}},
		{"fewer actions is not covered", []Rule{
			{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull"}},
			teamA,
		}, []string{"access[0] adds nothing: access[1] grants at least the same actions on the same repositories to everyone it applies to"}},
		{"another group is not covered", []Rule{
			teamA,
			{Groups: []string{"team-b"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull"}},
		}, nil},
		{"the anonymous rule gives no group a value", []Rule{
			{Anonymous: true, Groups: []string{"x"}, Repositories: []string{"${group}/**"}, Actions: []string{"pull"}},
			{Groups: []string{"y"}, Repositories: []string{"${group}/**"}, Actions: []string{"pull"}},
		}, nil},
		{"the anonymous rule covers everyone", []Rule{
			{Anonymous: true, Repositories: []string{"public/**"}, Actions: []string{"pull"}},
			{Users: []string{"*"}, Repositories: []string{"public/**"}, Actions: []string{"pull"}},
		}, []string{"access[1] adds nothing: access[0] grants at least the same actions on the same repositories to everyone it applies to"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range Lint(tc.rules) {
				if f.Kind == Redundant {
					got = append(got, f.Message)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("redundant:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLintAllowOverlap(t *testing.T) {
	rules := []Rule{
		{Users: []string{"*"}, Repositories: []string{"${username}/**"}, Actions: []string{"push"}},
		{Groups: []string{"g"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull"}, AllowOverlap: true},
	}
	fs := Lint(rules)
	if len(fs) != 1 || !fs[0].Accepted {
		t.Fatalf("Lint = %+v, want one accepted finding", fs)
	}
	if got, want := fs[0].Message, `access[0] "${username}/**" (users *) overlaps access[1] "team-a/**" (groups g): a person whose username is "team-a", in no group of access[1], gets [push] on "team-a"`; got != want {
		t.Errorf("message:\n%s\nwant:\n%s", got, want)
	}
}

// TestLintInvalidRules: rules that do not compile have no findings;
// Validate reports them.
func TestLintInvalidRules(t *testing.T) {
	if fs := Lint([]Rule{{Repositories: []string{"x"}, Actions: []string{"pull"}}}); fs != nil {
		t.Errorf("Lint = %v", fs)
	}
}
