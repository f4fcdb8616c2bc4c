package groups

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/registry-bridge/bridge/scope"
)

// Decision is the outcome of one requested scope, with the reasons.
type Decision struct {
	// Requested is the scope as requested.
	Requested scope.Scope
	// Granted is the scope as Grant returns it.
	Granted scope.Scope
	// Matches are the rules that contributed a granted action, by rule
	// order; empty when nothing was granted.
	Matches []Match
	// Reason says why requested actions were not granted, e.g. "no rule
	// matches repository team-b/x for user alice, groups [team-a]"; it is
	// "" when everything requested was granted.
	Reason string
}

// Match is one rule that contributed to a grant.
type Match struct {
	// Rule is the index of the rule in the access list.
	Rule int
	// Anonymous is set when the rule applied because it has anonymous: true.
	Anonymous bool
	// User is the subject's username when the rule applied through its users.
	User string
	// Group is the subject's group when the rule applied through its groups.
	Group string
	// Pattern is the rule's repository pattern that matched, with the
	// variables substituted; "" for a catalog grant.
	Pattern string
	// Actions are the rule's actions; ["*"] for a catalog grant.
	Actions []string
}

// String describes the match, e.g.
// "access[1] via group team-a: team-a/** [pull push]".
func (m Match) String() string {
	var via string
	switch {
	case m.Anonymous:
		via = "anonymous"
	case m.User != "":
		via = "user " + m.User
	default:
		via = "group " + m.Group
	}
	what := m.Pattern
	if what == "" {
		what = "registry:catalog"
	}
	return fmt.Sprintf("%s[%d] via %s: %s [%s]", ListKey, m.Rule, via, what, strings.Join(m.Actions, " "))
}

func newMatch(src source, rule int, pattern string, acts []string, user string) Match {
	m := Match{Rule: rule, Pattern: pattern, Actions: acts}
	switch src.via {
	case viaAnonymous:
		m.Anonymous = true
	case viaUser:
		m.User = user
	case viaGroup:
		m.Group = src.group
	}
	return m
}

// Explain is Grant with the reasons: for each requested scope in order, the
// granted scope (equal to Grant's), every rule that contributed, and for
// denials a short human reason. It evaluates every rule that applies, so it
// costs more than Grant; it is meant for people, not for the token endpoint.
func (p *Policy) Explain(sub Subject, requested []scope.Scope) []Decision {
	v := p.view(sub, nil)
	out := make([]Decision, len(requested))
	for i, r := range requested {
		d := Decision{
			Requested: r,
			Granted:   scope.Scope{Type: r.Type, Class: r.Class, Name: r.Name, Actions: []string{}},
			Matches:   []Match{},
		}
		switch classify(r) {
		case kindRepository:
			v.explainRepository(&d, sub)
		case kindCatalog:
			v.explainCatalog(&d, sub)
		default:
			t := r.Type
			if r.Class != "" {
				t += "(" + r.Class + ")"
			}
			d.Reason = fmt.Sprintf("resource type %s is never granted", t)
		}
		out[i] = d
	}
	return out
}

func (v *view) explainRepository(d *Decision, sub Subject) {
	r := d.Requested
	type hit struct {
		src source
		en  entry
	}
	var hits []hit
	held := v.repositoryActions(r.Name, r.Actions, nil, func(src source, en entry) {
		hits = append(hits, hit{src, en})
	})
	d.Granted.Actions = appendGranted(d.Granted.Actions, r.Actions, held)
	if _, ok := splitName(r.Name, nil); !ok {
		d.Reason = fmt.Sprintf("repository name %q has an empty path segment", r.Name)
		return
	}

	granted := parseActions(d.Granted.Actions)
	if granted&actAll != 0 {
		granted |= actExplicit
	}
	var raw actionSet // held before the read-only restriction
	seen := make(map[string]bool)
	for _, h := range hits {
		raw |= h.en.actions
		eff := h.en.actions
		if v.readOnly {
			eff = eff.readOnly()
		}
		if eff&actAll != 0 {
			eff |= actExplicit
		}
		pattern := h.en.pat.String(bindings{user: v.user, group: h.src.group})
		key := fmt.Sprintf("%d %s", h.en.rule, pattern)
		if eff&granted == 0 || seen[key] {
			continue
		}
		seen[key] = true
		d.Matches = append(d.Matches, newMatch(h.src, int(h.en.rule), pattern, h.en.actions.list(), v.user))
	}
	slices.SortStableFunc(d.Matches, func(a, b Match) int { return cmp.Compare(a.Rule, b.Rule) })

	denied := deniedActions(r.Actions, d.Granted.Actions)
	switch {
	case len(denied) == 0:
	case len(hits) == 0:
		d.Reason = fmt.Sprintf("no rule matches repository %s for %s", r.Name, describe(sub))
	default:
		var readOnly, notHeld []string
		for _, a := range denied {
			bit := parseAction(a)
			if v.readOnly && (bit == actAll || raw&(bit|actAll) != 0) {
				readOnly = append(readOnly, a)
			} else {
				notHeld = append(notHeld, a)
			}
		}
		var reasons []string
		if len(notHeld) > 0 {
			reasons = append(reasons, fmt.Sprintf("%s not granted on repository %s: the matching rules allow only %s",
				strings.Join(notHeld, ", "), r.Name, raw))
		}
		if len(readOnly) > 0 {
			reasons = append(reasons, fmt.Sprintf("%s not granted on repository %s: the password is read-only",
				strings.Join(readOnly, ", "), r.Name))
		}
		d.Reason = strings.Join(reasons, "; ")
	}
}

// deniedActions returns the requested actions missing from granted; a
// requested "*" counts as denied only when nothing was granted.
func deniedActions(requested, granted []string) []string {
	var out []string
	for _, a := range requested {
		switch {
		case slices.Contains(granted, a):
		case a == scope.ActionAll && len(granted) > 0:
		case a != scope.ActionAll && slices.Contains(granted, scope.ActionAll):
		default:
			out = append(out, a)
		}
	}
	return out
}

func (v *view) explainCatalog(d *Decision, sub Subject) {
	held := v.catalog(func(src source, rule int) {
		d.Matches = append(d.Matches, newMatch(src, rule, "", []string{scope.ActionAll}, v.user))
	})
	wantAll := slices.Contains(d.Requested.Actions, scope.ActionAll)
	switch {
	case !held:
		d.Matches = d.Matches[:0]
		d.Reason = fmt.Sprintf("no rule with catalog: true applies to %s", describe(sub))
	case !wantAll:
		d.Matches = d.Matches[:0]
		d.Reason = "registry:catalog is only granted as *"
	default:
		d.Granted.Actions = append(d.Granted.Actions, scope.ActionAll)
		slices.SortStableFunc(d.Matches, func(a, b Match) int { return cmp.Compare(a.Rule, b.Rule) })
		d.Matches = slices.CompactFunc(d.Matches, func(a, b Match) bool { return a.Rule == b.Rule })
	}
}

// describe names the subject in reasons.
func describe(sub Subject) string {
	if sub.Anonymous {
		return "anonymous requests"
	}
	groups := sub.Groups
	if groups == nil {
		groups = []string{}
	}
	return fmt.Sprintf("user %s, groups %v", sub.Username, groups)
}

// Allowance is one thing a subject may do, for display.
type Allowance struct {
	// Type is scope.TypeRepository, or scope.TypeRegistry for the catalog.
	Type string
	// Pattern is the repository pattern with the variables substituted,
	// e.g. "team-a/**", or scope.CatalogName for the catalog.
	Pattern string
	// Actions are ["*"], or the explicit actions in pull, push, delete
	// order; for a read-only subject at most ["pull"].
	Actions []string
}

// Summary lists what the subject may do: one entry per repository pattern
// (variables substituted), with the union of the actions the applying rules
// allow on it, in the order of the rules; then the catalog if a rule grants
// it. Patterns that can match nothing for the subject (a ${username} or
// ${group} value that is empty or contains '/') are left out.
func (p *Policy) Summary(sub Subject) []Allowance {
	v := p.view(sub, nil)
	type item struct {
		rule, pos, src int
		pattern        string
		acts           actionSet
	}
	var items []item
	for k, src := range v.srcs {
		src.ix.entries(func(en *entry) {
			if (en.pat.usesUser && !v.userOK) || (en.pat.usesGroup && !src.groupOK) {
				return
			}
			acts := en.actions
			if v.readOnly {
				acts = acts.readOnly()
			}
			if acts == 0 {
				return
			}
			items = append(items, item{
				rule: int(en.rule), pos: int(en.pos), src: k, acts: acts,
				pattern: en.pat.String(bindings{user: v.user, group: src.group}),
			})
		})
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.rule, b.rule), cmp.Compare(a.pos, b.pos), cmp.Compare(a.src, b.src))
	})
	var sets []actionSet
	out := []Allowance{}
	at := make(map[string]int)
	for _, it := range items {
		i, ok := at[it.pattern]
		if !ok {
			i = len(out)
			at[it.pattern] = i
			out = append(out, Allowance{Type: scope.TypeRepository, Pattern: it.pattern})
			sets = append(sets, 0)
		}
		sets[i] |= it.acts
	}
	for i := range out {
		out[i].Actions = sets[i].list()
	}
	if v.catalog(nil) {
		out = append(out, Allowance{Type: scope.TypeRegistry, Pattern: scope.CatalogName, Actions: []string{scope.ActionAll}})
	}
	return out
}
