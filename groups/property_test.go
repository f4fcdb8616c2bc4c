package groups

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/registry-bridge/bridge/scope"
)

// naive is a reference policy written straight from the rules' definition:
// it tries every rule, every way it applies and every pattern, with the
// regular-expression oracle of pattern_test.go. The compiled Policy must
// agree with it.
type naive struct {
	rules []Rule
	cache map[string]*regexp.Regexp
}

// application is one way a rule applies to a subject; group is the binding
// of ${group}, "" when the rule applied otherwise.
type application struct{ group string }

func globRegexp(g string) *regexp.Regexp {
	parts := strings.Split(g, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

func (n *naive) applications(r Rule, sub Subject) []application {
	var apps []application
	if r.Anonymous {
		apps = append(apps, application{})
	}
	if sub.Anonymous {
		return apps
	}
	for _, u := range r.Users {
		if sub.Username != "" && globRegexp(u).MatchString(sub.Username) {
			apps = append(apps, application{})
		}
	}
	for _, g := range sub.Groups {
		for _, e := range r.Groups {
			if g != "" && globRegexp(e).MatchString(g) {
				apps = append(apps, application{group: g})
			}
		}
	}
	return apps
}

func (n *naive) matches(pattern, user, group, name string) bool {
	key := pattern + "\x00" + user + "\x00" + group
	re, ok := n.cache[key]
	if !ok {
		re, _ = oracle(pattern, user, group)
		n.cache[key] = re
	}
	_, valid := splitName(name, nil)
	return valid && re != nil && re.MatchString("/"+name)
}

func (n *naive) grant(sub Subject, req scope.Scope) []string {
	user := sub.Username
	if sub.Anonymous {
		user = ""
	}
	held := map[string]bool{}
	catalog := false
	for _, r := range n.rules {
		for _, app := range n.applications(r, sub) {
			catalog = catalog || r.Catalog
			for _, pat := range r.Repositories {
				if n.matches(pat, user, app.group, req.Name) {
					for _, a := range r.Actions {
						held[a] = true
					}
				}
			}
		}
	}
	out := []string{}
	add := func(a string) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	switch {
	case req.Type == scope.TypeRegistry && req.Class == "" && req.Name == scope.CatalogName:
		if catalog && slices.Contains(req.Actions, "*") {
			out = append(out, "*")
		}
		return out
	case req.Type != scope.TypeRepository || (req.Class != "" && req.Class != scope.ClassPlugin):
		return out
	}
	if sub.ReadOnly {
		held = map[string]bool{"pull": held["pull"] || held["*"]}
	}
	for _, a := range req.Actions {
		switch {
		case a == "*" && held["*"]:
			add("*")
		case a == "*":
			for _, x := range []string{"pull", "push", "delete"} {
				if held[x] {
					add(x)
				}
			}
		case (a == "pull" || a == "push" || a == "delete") && (held[a] || held["*"]):
			add(a)
		}
	}
	return out
}

// checkGrant checks Grant's output against the request (never wider, same
// resources), against Explain and against the naive policy.
func checkGrant(t *testing.T, p *Policy, n *naive, sub Subject, req []scope.Scope) {
	t.Helper()
	got := p.Grant(sub, req)
	if len(got) != len(req) {
		t.Fatalf("Grant returned %d scopes for %d", len(got), len(req))
	}
	for i, g := range got {
		r := req[i]
		if g.Type != r.Type || g.Class != r.Class || g.Name != r.Name {
			t.Fatalf("scope %d: granted %v for requested %v", i, g, r)
		}
		if g.Actions == nil {
			t.Fatalf("scope %d: nil actions", i)
		}
		for j, a := range g.Actions {
			explicit := a == "pull" || a == "push" || a == "delete"
			if !slices.Contains(r.Actions, a) && !(explicit && slices.Contains(r.Actions, "*")) {
				t.Fatalf("subject %+v: %v widened to %v", sub, r, g)
			}
			if slices.Contains(g.Actions[:j], a) {
				t.Fatalf("duplicate action in %v", g)
			}
			if sub.ReadOnly && r.Type == scope.TypeRepository && a != "pull" {
				t.Fatalf("read-only subject granted %v", g)
			}
		}
		if want := n.grant(sub, r); !slices.Equal(g.Actions, want) {
			t.Fatalf("subject %+v, request %v: Grant %q, naive %q\nrules %+v", sub, r, g.Actions, want, n.rules)
		}
	}
	for i, d := range p.Explain(sub, req) {
		if !reflect.DeepEqual(d.Granted, got[i]) {
			t.Fatalf("Explain granted %v, Grant %v", d.Granted, got[i])
		}
	}
}

func pick[T any](r *rand.Rand, from []T) T { return from[r.IntN(len(from))] }

func randomPattern(r *rand.Rand) string {
	segs := []string{"a", "b", "team-a", "${username}", "${group}", "*", "**", "x*", "*-a", "${group}-r", "a*b", "*${username}"}
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = pick(r, segs)
	}
	return strings.Join(parts, "/")
}

func randomRules(r *rand.Rand) []Rule {
	groupEntries := []string{"g1", "g2", "team-a", "g*", "*", "team-*"}
	userEntries := []string{"alice", "a*", "*", "bob"}
	actions := []string{"pull", "push", "delete", "*"}
	rules := make([]Rule, 1+r.IntN(8))
	for i := range rules {
		rule := Rule{Anonymous: r.IntN(5) == 0, Catalog: r.IntN(5) == 0}
		for range r.IntN(3) {
			rule.Groups = append(rule.Groups, pick(r, groupEntries))
		}
		for range r.IntN(2) {
			rule.Users = append(rule.Users, pick(r, userEntries))
		}
		if len(rule.Groups) == 0 && len(rule.Users) == 0 && !rule.Anonymous {
			rule.Groups = []string{pick(r, groupEntries)}
		}
		for range 1 + r.IntN(3) {
			pat := randomPattern(r)
			if strings.Contains(pat, "${group}") && len(rule.Groups) == 0 {
				continue
			}
			if strings.Contains(pat, "${username}") && len(rule.Groups) == 0 && len(rule.Users) == 0 {
				continue
			}
			rule.Repositories = append(rule.Repositories, pat)
		}
		for range 1 + r.IntN(2) {
			rule.Actions = append(rule.Actions, pick(r, actions))
		}
		if len(rule.Repositories) == 0 {
			rule.Repositories = []string{"**"}
		}
		rules[i] = rule
	}
	return rules
}

func randomSubject(r *rand.Rand) Subject {
	users := []string{"alice", "bob", "a*", "a", "team-a", "", "x/y"}
	groups := []string{"g1", "g2", "g3", "team-a", "gx", "", "a/b"}
	sub := Subject{Username: pick(r, users), Anonymous: r.IntN(6) == 0, ReadOnly: r.IntN(4) == 0}
	for range r.IntN(4) {
		sub.Groups = append(sub.Groups, pick(r, groups))
	}
	return sub
}

func randomRequest(r *rand.Rand) []scope.Scope {
	segs := []string{"a", "b", "team-a", "alice", "g1", "x", "xa", "ab", "a-a", "g1-r", "bob", "team-a-r", "a*"}
	actions := []string{"pull", "push", "delete", "*"}
	req := make([]scope.Scope, 1+r.IntN(3))
	for i := range req {
		if r.IntN(8) == 0 {
			req[i] = scope.Scope{Type: scope.TypeRegistry, Name: scope.CatalogName, Actions: []string{"*"}}
			continue
		}
		n := 1 + r.IntN(4)
		parts := make([]string, n)
		for j := range parts {
			parts[j] = pick(r, segs)
		}
		s := scope.Scope{Type: scope.TypeRepository, Name: strings.Join(parts, "/")}
		if r.IntN(6) == 0 {
			s.Class = scope.ClassPlugin
		}
		for range 1 + r.IntN(3) {
			if a := pick(r, actions); !slices.Contains(s.Actions, a) {
				s.Actions = append(s.Actions, a)
			}
		}
		req[i] = s
	}
	return req
}

// TestGrantAgreesWithNaive compiles random rule sets and checks every grant
// against the naive reference policy.
func TestGrantAgreesWithNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1500 {
		rules := randomRules(r)
		p, err := Compile(rules)
		if err != nil {
			t.Fatalf("Compile(%+v): %v", rules, err)
		}
		n := &naive{rules: rules, cache: map[string]*regexp.Regexp{}}
		for range 6 {
			checkGrant(t, p, n, randomSubject(r), randomRequest(r))
		}
	}
}

// FuzzGrant checks, for fuzzed subjects and requests against a fixed
// policy, that grants are never wider than the request and agree with
// Explain and with the naive policy.
func FuzzGrant(f *testing.F) {
	f.Add("alice", "team-a,proj-x", false, false, "repository:team-a/app:pull,push registry:catalog:*")
	f.Add("bob", "ci", true, false, "repository:x/cache/y:* repository(plugin):shared/bob-a:push")
	f.Add("", "", false, true, "repository:public/x:pull,push,delete")
	f.Add("a*", "*", false, false, "repository:a*/x:pull")
	rules := testRules()
	p, err := Compile(rules)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user, groupList string, readOnly, anonymous bool, scopes string) {
		if !utf8.ValidString(user) || !utf8.ValidString(groupList) {
			return // the naive policy's regexps cannot express invalid UTF-8
		}
		req, err := scope.ParseAll([]string{scopes})
		if err != nil {
			// Grant must cope with unparsed input too: one raw scope.
			i := strings.LastIndexByte(scopes, ':')
			if i < 0 || !utf8.ValidString(scopes) {
				return
			}
			req = []scope.Scope{{Type: scope.TypeRepository, Name: scopes[:i], Actions: strings.Split(scopes[i+1:], ",")}}
		}
		sub := Subject{Username: user, Anonymous: anonymous, ReadOnly: readOnly}
		if groupList != "" {
			sub.Groups = strings.Split(groupList, ",")
		}
		checkGrant(t, p, &naive{rules: rules, cache: map[string]*regexp.Regexp{}}, sub, req)
	})
}

func ExamplePolicy_Grant() {
	pol, err := Compile([]Rule{
		{Groups: []string{"team-a"}, Repositories: []string{"team-a/**"}, Actions: []string{"pull", "push"}},
		{Users: []string{"*"}, Repositories: []string{"${username}/**"}, Actions: []string{"*"}},
		{Anonymous: true, Repositories: []string{"public/**"}, Actions: []string{"pull"}},
	})
	if err != nil {
		panic(err)
	}
	req, _ := scope.ParseAll([]string{"repository:team-a/app:pull,push,delete repository:alice/tools:* repository:team-b/x:pull"})
	sub := Subject{Username: "alice", Groups: []string{"team-a"}}
	for _, s := range pol.Grant(sub, req) {
		fmt.Println(s)
	}
	for _, d := range pol.Explain(sub, req[2:]) {
		fmt.Println(d.Reason)
	}
	// Output:
	// repository:team-a/app:pull,push
	// repository:alice/tools:*
	// repository:team-b/x:
	// no rule matches repository team-b/x for user alice, groups [team-a]
}
