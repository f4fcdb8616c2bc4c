package groups

import (
	"reflect"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/scope"
)

// contractRules is the access list of the example configuration in docs/reference.md.
func contractRules() []Rule {
	return []Rule{
		{Groups: []string{"registry-admins"}, Repositories: []string{"**"}, Actions: []string{"pull", "push", "delete"}, Catalog: true},
		{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull", "push"}},
		{Users: []string{"*"}, Repositories: []string{"${username}/**"}, Actions: []string{"pull", "push", "delete"}},
		{Anonymous: true, Repositories: []string{"public/**"}, Actions: []string{"pull"}},
	}
}

// testRules extends contractRules with globs, variables, "*" actions and a
// catalog-only rule.
func testRules() []Rule {
	return append(contractRules(),
		Rule{Groups: []string{"proj-*"}, Repositories: []string{"${group}/**", "shared/docs"}, Actions: []string{"pull"}},     // 4
		Rule{Groups: []string{"ci"}, Repositories: []string{"*/cache/**"}, Actions: []string{"*"}},                            // 5
		Rule{Users: []string{"bob"}, Repositories: []string{"shared/${username}-*"}, Actions: []string{"push"}},               // 6
		Rule{Groups: []string{"auditors"}, Catalog: true},                                                                     // 7
		Rule{Groups: []string{"team-a", "team-b"}, Repositories: []string{"${group}-releases/**"}, Actions: []string{"pull"}}, // 8
		Rule{Groups: []string{"*"}, Users: []string{"svc-*"}, Repositories: []string{"mirror/**"}, Actions: []string{"pull"}}, // 9
	)
}

func mustCompile(t testing.TB, rules []Rule) *Policy {
	t.Helper()
	p, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// scopes parses space-separated scopes, failing the test on error.
func scopes(t testing.TB, s string) []scope.Scope {
	t.Helper()
	out, err := scope.ParseAll([]string{s})
	if err != nil {
		t.Fatalf("ParseAll(%q): %v", s, err)
	}
	return out
}

func formatAll(ss []scope.Scope) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

func TestGrant(t *testing.T) {
	p := mustCompile(t, testRules())
	admin := Subject{Username: "root", Groups: []string{"registry-admins"}}
	alice := Subject{Username: "alice", Groups: []string{"team-a"}}
	anon := Subject{Anonymous: true}
	tests := []struct {
		name string
		sub  Subject
		req  string        // parsed with scope.ParseAll
		raw  []scope.Scope // used instead of req when set
		want string
	}{
		{name: "admin any repository", sub: admin, req: "repository:any/thing:pull,push,delete", want: "repository:any/thing:pull,push,delete"},
		{name: "admin star request gets explicit set", sub: admin, req: "repository:x/y:*", want: "repository:x/y:pull,push,delete"},
		{name: "admin catalog", sub: admin, req: "registry:catalog:*", want: "registry:catalog:*"},
		{name: "request order kept", sub: alice, req: "repository:team-a/app:push,pull", want: "repository:team-a/app:push,pull"},
		{name: "partial grant", sub: alice, req: "repository:team-a/app:pull,delete", want: "repository:team-a/app:pull"},
		{name: "double star matches no segment", sub: alice, req: "repository:team-a:pull", want: "repository:team-a:pull"},
		{name: "other team", sub: alice, req: "repository:team-b/x:pull", want: "repository:team-b/x:"},
		{name: "own namespace", sub: alice, req: "repository:alice/x:*", want: "repository:alice/x:pull,push,delete"},
		{name: "other user's namespace", sub: alice, req: "repository:bob/x:pull", want: "repository:bob/x:"},
		{name: "anonymous public pull", sub: anon, req: "repository:public/x:pull", want: "repository:public/x:pull"},
		{name: "anonymous never pushes", sub: anon, req: "repository:public/x:pull,push", want: "repository:public/x:pull"},
		{name: "anonymous ignores username and groups", sub: Subject{Anonymous: true, Username: "alice", Groups: []string{"registry-admins"}},
			req: "repository:alice/x:pull repository:team-a/x:pull repository:public/x:pull", want: "repository:alice/x: repository:team-a/x: repository:public/x:pull"},
		{name: "anonymous catalog", sub: anon, req: "registry:catalog:*", want: "registry:catalog:"},
		{name: "anonymous rule applies to users", sub: alice, req: "repository:public/lib:pull", want: "repository:public/lib:pull"},
		{name: "glob group binds each group", sub: Subject{Username: "u", Groups: []string{"proj-x", "proj-y"}},
			req:  "repository:proj-x/app:pull repository:proj-y/app:pull repository:proj-z/app:pull repository:shared/docs:pull",
			want: "repository:proj-x/app:pull repository:proj-y/app:pull repository:proj-z/app: repository:shared/docs:pull"},
		{name: "held star", sub: Subject{Username: "u", Groups: []string{"ci"}}, req: "repository:x/cache/y:*", want: "repository:x/cache/y:*"},
		{name: "held star, explicit request", sub: Subject{Username: "u", Groups: []string{"ci"}},
			req: "repository:x/cache/y:pull repository:x/cache:delete,pull", want: "repository:x/cache/y:pull repository:x/cache:delete,pull"},
		{name: "read-only", sub: Subject{Username: "alice", Groups: []string{"team-a"}, ReadOnly: true},
			req: "repository:team-a/app:pull,push", want: "repository:team-a/app:pull"},
		{name: "read-only held star", sub: Subject{Username: "u", Groups: []string{"ci"}, ReadOnly: true},
			req: "repository:x/cache/y:* repository:x/cache/z:delete", want: "repository:x/cache/y:pull repository:x/cache/z:"},
		{name: "read-only admin", sub: Subject{Username: "root", Groups: []string{"registry-admins"}, ReadOnly: true},
			req: "repository:x:* repository:y:push,delete registry:catalog:*", want: "repository:x:pull repository:y: registry:catalog:*"},
		{name: "plugin class", sub: alice, req: "repository(plugin):team-a/plugin:pull", want: "repository(plugin):team-a/plugin:pull"},
		{name: "unknown class and type", sub: admin,
			raw:  []scope.Scope{{Type: "repository", Class: "foo", Name: "x", Actions: []string{"pull"}}, {Type: "widget", Name: "x", Actions: []string{"*"}}},
			want: "repository(foo):x: widget:x:"},
		{name: "catalog takes star only", sub: admin, raw: []scope.Scope{{Type: "registry", Name: "catalog", Actions: []string{"pull"}}}, want: "registry:catalog:"},
		{name: "username is literal", sub: Subject{Username: "a*"}, req: "repository:ab/x:pull", want: "repository:ab/x:"},
		{name: "username with slash", sub: Subject{Username: "org/alice"}, req: "repository:org/alice/x:pull", want: "repository:org/alice/x:"},
		{name: "literal user rule", sub: Subject{Username: "bob"}, req: "repository:shared/bob-tools:push,pull repository:shared/bobby:push",
			want: "repository:shared/bob-tools:push repository:shared/bobby:"},
		{name: "literal groups bind group", sub: Subject{Username: "u", Groups: []string{"team-b"}},
			req: "repository:team-b-releases/x:pull repository:team-a-releases/x:pull", want: "repository:team-b-releases/x:pull repository:team-a-releases/x:"},
		{name: "any group", sub: Subject{Username: "u", Groups: []string{"whatever"}}, req: "repository:mirror/x:pull", want: "repository:mirror/x:pull"},
		{name: "no groups", sub: Subject{Username: "u"}, req: "repository:mirror/x:pull", want: "repository:mirror/x:"},
		{name: "user glob", sub: Subject{Username: "svc-build"}, req: "repository:mirror/x:pull", want: "repository:mirror/x:pull"},
		{name: "catalog-only rule", sub: Subject{Username: "u", Groups: []string{"auditors"}}, req: "registry:catalog:* repository:x:pull", want: "registry:catalog:* repository:x:"},
		{name: "several scopes", sub: alice, req: "repository:team-a/app:pull repository:team-b/x:pull registry:catalog:*",
			want: "repository:team-a/app:pull repository:team-b/x: registry:catalog:"},
		{name: "empty username", sub: Subject{}, req: "repository:public/x:pull repository:x:pull", want: "repository:public/x:pull repository:x:"},
		{name: "empty path segment", sub: admin, raw: []scope.Scope{{Type: "repository", Name: "a//b", Actions: []string{"pull"}}}, want: "repository:a//b:"},
		{name: "unknown action", sub: admin, raw: []scope.Scope{{Type: "repository", Name: "a", Actions: []string{"frob", "pull"}}}, want: "repository:a:pull"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.raw
			if req == nil {
				req = scopes(t, tt.req)
			}
			got := p.Grant(tt.sub, req)
			if s := formatAll(got); s != tt.want {
				t.Errorf("Grant = %s\nwant    %s", s, tt.want)
			}
			for i, g := range got {
				if g.Actions == nil {
					t.Errorf("scope %d: Actions is nil", i)
				}
			}
			// Explain evaluates every rule; it must agree with Grant's shortcuts.
			for i, d := range p.Explain(tt.sub, req) {
				if !reflect.DeepEqual(d.Granted, got[i]) {
					t.Errorf("Explain granted %v, Grant %v", d.Granted, got[i])
				}
			}
		})
	}
}

func TestGrantResultsDoNotAlias(t *testing.T) {
	p := mustCompile(t, testRules())
	req := scopes(t, "repository:team-a/a:pull,push repository:team-a/b:pull")
	got := p.Grant(Subject{Username: "alice", Groups: []string{"team-a"}}, req)
	got[0].Actions = append(got[0].Actions, "extra")
	got[0].Actions[0] = "changed"
	if s := got[1].String(); s != "repository:team-a/b:pull" {
		t.Errorf("second scope changed to %s", s)
	}
	if s := req[0].String(); s != "repository:team-a/a:pull,push" {
		t.Errorf("request changed to %s", s)
	}
}

func TestGrantEmptyRequest(t *testing.T) {
	p := mustCompile(t, testRules())
	if got := p.Grant(Subject{Username: "alice"}, nil); got == nil || len(got) != 0 {
		t.Errorf("Grant(nil) = %#v, want an empty slice", got)
	}
	empty := mustCompile(t, nil)
	got := empty.Grant(Subject{Username: "alice", Groups: []string{"g"}}, scopes(t, "repository:a:pull registry:catalog:*"))
	if s := formatAll(got); s != "repository:a: registry:catalog:" {
		t.Errorf("empty policy granted %s", s)
	}
}
