package groups

import (
	"reflect"
	"testing"

	"github.com/registry-bridge/bridge/scope"
)

func TestExplain(t *testing.T) {
	p := mustCompile(t, testRules())
	tests := []struct {
		name        string
		sub         Subject
		req         string
		wantGranted []string
		wantMatches []Match
		wantReason  string
	}{
		{
			name: "partial grant names the rule and the missing action",
			sub:  Subject{Username: "alice", Groups: []string{"team-a"}}, req: "repository:team-a/app:pull,push,delete",
			wantGranted: []string{"pull", "push"},
			wantMatches: []Match{{Rule: 1, Group: "team-a", Pattern: "team-a/**", Actions: []string{"pull", "push"}}},
			wantReason:  "delete not granted on repository team-a/app: the matching rules allow only [pull push]",
		},
		{
			name: "every contributing rule, in rule order",
			sub:  Subject{Username: "alice", Groups: []string{"team-a", "registry-admins"}}, req: "repository:team-a/app:pull",
			wantGranted: []string{"pull"},
			wantMatches: []Match{
				{Rule: 0, Group: "registry-admins", Pattern: "**", Actions: []string{"pull", "push", "delete"}},
				{Rule: 1, Group: "team-a", Pattern: "team-a/**", Actions: []string{"pull", "push"}},
			},
		},
		{
			name: "rules holding only unrequested actions did not contribute",
			sub:  Subject{Username: "bob", Groups: []string{"proj-shared"}}, req: "repository:shared/bob-x:pull",
			wantGranted: []string{},
			wantMatches: []Match{},
			wantReason:  "pull not granted on repository shared/bob-x: the matching rules allow only [push]",
		},
		{
			name: "denial",
			sub:  Subject{Username: "alice", Groups: []string{"team-a"}}, req: "repository:team-b/x:pull",
			wantGranted: []string{},
			wantMatches: []Match{},
			wantReason:  "no rule matches repository team-b/x for user alice, groups [team-a]",
		},
		{
			name: "anonymous denial", sub: Subject{Anonymous: true}, req: "repository:team-b/x:pull",
			wantGranted: []string{}, wantMatches: []Match{},
			wantReason: "no rule matches repository team-b/x for anonymous requests",
		},
		{
			name: "user rule with substitution", sub: Subject{Username: "alice"}, req: "repository:alice/x:*",
			wantGranted: []string{"pull", "push", "delete"},
			wantMatches: []Match{{Rule: 2, User: "alice", Pattern: "alice/**", Actions: []string{"pull", "push", "delete"}}},
		},
		{
			name: "anonymous rule for a user", sub: Subject{Username: "alice"}, req: "repository:public/x:pull",
			wantGranted: []string{"pull"},
			wantMatches: []Match{{Rule: 3, Anonymous: true, Pattern: "public/**", Actions: []string{"pull"}}},
		},
		{
			name: "glob group names the matching group", sub: Subject{Username: "u", Groups: []string{"proj-x", "proj-y"}}, req: "repository:proj-y/app:pull",
			wantGranted: []string{"pull"},
			wantMatches: []Match{{Rule: 4, Group: "proj-y", Pattern: "proj-y/**", Actions: []string{"pull"}}},
		},
		{
			name: "read-only", sub: Subject{Username: "alice", Groups: []string{"team-a"}, ReadOnly: true}, req: "repository:team-a/app:pull,push",
			wantGranted: []string{"pull"},
			wantMatches: []Match{{Rule: 1, Group: "team-a", Pattern: "team-a/**", Actions: []string{"pull", "push"}}},
			wantReason:  "push not granted on repository team-a/app: the password is read-only",
		},
		{
			name: "read-only and not held", sub: Subject{Username: "alice", Groups: []string{"team-a"}, ReadOnly: true}, req: "repository:team-a/app:delete,push",
			wantGranted: []string{}, wantMatches: []Match{},
			wantReason: "delete not granted on repository team-a/app: the matching rules allow only [pull push]; push not granted on repository team-a/app: the password is read-only",
		},
		{
			name: "catalog", sub: Subject{Username: "u", Groups: []string{"auditors", "registry-admins"}}, req: "registry:catalog:*",
			wantGranted: []string{"*"},
			wantMatches: []Match{
				{Rule: 0, Group: "registry-admins", Actions: []string{"*"}},
				{Rule: 7, Group: "auditors", Actions: []string{"*"}},
			},
		},
		{
			name: "catalog denial", sub: Subject{Username: "bob", Groups: []string{"team-a"}}, req: "registry:catalog:*",
			wantGranted: []string{}, wantMatches: []Match{},
			wantReason: "no rule with catalog: true applies to user bob, groups [team-a]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := scopes(t, tt.req)
			ds := p.Explain(tt.sub, req)
			if len(ds) != 1 {
				t.Fatalf("got %d decisions, want 1", len(ds))
			}
			d := ds[0]
			if !reflect.DeepEqual(d.Requested, req[0]) {
				t.Errorf("Requested = %v, want %v", d.Requested, req[0])
			}
			if !reflect.DeepEqual(d.Granted.Actions, tt.wantGranted) {
				t.Errorf("Granted = %q, want %q", d.Granted.Actions, tt.wantGranted)
			}
			if !reflect.DeepEqual(d.Matches, tt.wantMatches) {
				t.Errorf("Matches = %+v\nwant      %+v", d.Matches, tt.wantMatches)
			}
			if d.Reason != tt.wantReason {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.wantReason)
			}
		})
	}
}

func TestExplainOtherType(t *testing.T) {
	p := mustCompile(t, testRules())
	d := p.Explain(Subject{Username: "root", Groups: []string{"registry-admins"}},
		[]scope.Scope{{Type: "repository", Class: "foo", Name: "x", Actions: []string{"pull"}}})[0]
	if len(d.Granted.Actions) != 0 || d.Reason != "resource type repository(foo) is never granted" {
		t.Errorf("Explain = %+v", d)
	}
}

func TestMatchString(t *testing.T) {
	tests := []struct {
		m    Match
		want string
	}{
		{Match{Rule: 1, Group: "team-a", Pattern: "team-a/**", Actions: []string{"pull", "push"}}, "access[1] via group team-a: team-a/** [pull push]"},
		{Match{Rule: 2, User: "alice", Pattern: "alice/**", Actions: []string{"*"}}, "access[2] via user alice: alice/** [*]"},
		{Match{Rule: 3, Anonymous: true, Pattern: "public/**", Actions: []string{"pull"}}, "access[3] via anonymous: public/** [pull]"},
		{Match{Rule: 0, Group: "admins", Actions: []string{"*"}}, "access[0] via group admins: registry:catalog [*]"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	p := mustCompile(t, append(testRules(),
		Rule{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"delete"}}, // 10: merges with rule 1
	))
	repo := func(pattern string, actions ...string) Allowance {
		return Allowance{Type: scope.TypeRepository, Pattern: pattern, Actions: actions}
	}
	catalog := Allowance{Type: scope.TypeRegistry, Pattern: scope.CatalogName, Actions: []string{"*"}}
	tests := []struct {
		name string
		sub  Subject
		want []Allowance
	}{
		{
			name: "user in groups",
			sub:  Subject{Username: "alice", Groups: []string{"team-a", "proj-x"}},
			want: []Allowance{
				repo("team-a/**", "pull", "push", "delete"),
				repo("alice/**", "pull", "push", "delete"),
				repo("public/**", "pull"),
				repo("proj-x/**", "pull"),
				repo("shared/docs", "pull"),
				repo("team-a-releases/**", "pull"),
				repo("mirror/**", "pull"),
			},
		},
		{
			name: "read-only",
			sub:  Subject{Username: "u", Groups: []string{"ci", "auditors"}, ReadOnly: true},
			want: []Allowance{repo("u/**", "pull"), repo("public/**", "pull"), repo("*/cache/**", "pull"), repo("mirror/**", "pull"), catalog},
		},
		{
			name: "held star",
			sub:  Subject{Username: "u", Groups: []string{"ci"}},
			want: []Allowance{repo("u/**", "pull", "push", "delete"), repo("public/**", "pull"), repo("*/cache/**", "*"), repo("mirror/**", "pull")},
		},
		{
			name: "admin",
			sub:  Subject{Username: "root", Groups: []string{"registry-admins"}},
			want: []Allowance{repo("**", "pull", "push", "delete"), repo("root/**", "pull", "push", "delete"), repo("public/**", "pull"), repo("mirror/**", "pull"), catalog},
		},
		{
			name: "unusable username left out",
			sub:  Subject{Username: "org/bob"},
			want: []Allowance{repo("public/**", "pull")},
		},
		{name: "anonymous", sub: Subject{Anonymous: true, Username: "alice"}, want: []Allowance{repo("public/**", "pull")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Summary(tt.sub); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Summary =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	if got := mustCompile(t, nil).Summary(Subject{Anonymous: true}); got == nil || len(got) != 0 {
		t.Errorf("empty policy Summary = %#v, want empty", got)
	}
}
