package groups

import (
	"slices"

	"github.com/registry-bridge/bridge/scope"
)

// Subject is who a token request is for.
type Subject struct {
	// Username is the docker login username; it is ignored when Anonymous.
	Username string
	// Groups are the subject's IdP groups; they are ignored when Anonymous.
	Groups []string
	// Anonymous is set for requests without credentials.
	Anonymous bool
	// ReadOnly is set for read-only app passwords: push and delete are never
	// granted, and a held "*" grants pull only. The catalog, which changes
	// nothing, is still granted.
	ReadOnly bool
}

// Policy is a compiled access list. It is immutable and safe for concurrent
// use.
//
// Rules are indexed by subject: rules naming a group literally are found by
// one map lookup per group of the subject, and rules naming a user literally
// by one lookup; only glob entries are matched one by one, once per call.
// Within the rules that apply, patterns are indexed by their first path
// segment, so a scope costs a map lookup per applying group plus the
// patterns whose first segment is a wildcard.
type Policy struct {
	anon      *index
	userLit   map[string]*index
	userGlob  []*globIndex
	groupLit  map[string]*index
	groupGlob []*globIndex
}

// globIndex holds the rules reached through one groups or users glob.
type globIndex struct {
	glob glob
	// plain holds the patterns that do not use ${group}: evaluated once,
	// however many of the subject's groups match the glob.
	plain *index
	// bound holds the patterns that use ${group}: evaluated once per
	// matching group, with ${group} bound to it.
	bound *index
}

// entry is one repository pattern of one rule, as reached through one
// subject clause (with ${group} or ${username} substituted when the clause
// names them literally).
type entry struct {
	pat     *pattern
	rule    int32 // index of the rule in the access list
	pos     int32 // index of the pattern in the rule's repositories
	actions actionSet
}

// index holds the entries reached through one subject clause, by the first
// path segment of their pattern.
type index struct {
	byFirst map[string][]entry // first segment is literal text
	byUser  []entry            // first segment is exactly ${username}
	byGroup []entry            // first segment is exactly ${group}
	other   []entry            // first segment has a wildcard, or is "**"
	catalog []int              // rules granting registry:catalog:*
}

func (ix *index) add(e entry) {
	if lit, ok := e.pat.firstLiteral(); ok {
		if ix.byFirst == nil {
			ix.byFirst = make(map[string][]entry)
		}
		ix.byFirst[lit] = append(ix.byFirst[lit], e)
		return
	}
	switch kind, ok := e.pat.firstVar(); {
	case ok && kind == partUser:
		ix.byUser = append(ix.byUser, e)
	case ok && kind == partGroup:
		ix.byGroup = append(ix.byGroup, e)
	default:
		ix.other = append(ix.other, e)
	}
}

func (ix *index) empty() bool {
	return ix == nil || len(ix.byFirst) == 0 && len(ix.byUser) == 0 && len(ix.byGroup) == 0 &&
		len(ix.other) == 0 && len(ix.catalog) == 0
}

// entries calls f for every entry of the index.
func (ix *index) entries(f func(*entry)) {
	for _, list := range [][]entry{ix.byUser, ix.byGroup, ix.other} {
		for i := range list {
			f(&list[i])
		}
	}
	for _, list := range ix.byFirst {
		for i := range list {
			f(&list[i])
		}
	}
}

// Compile validates the rules (see Validate) and compiles them into a
// Policy. The rules are not retained. Its error is Validate's: every
// problem, each naming its key path, so callers can show it as it is.
func Compile(rules []Rule) (*Policy, error) {
	if err := Validate(rules); err != nil {
		return nil, err
	}
	pol := &Policy{
		anon:     &index{},
		userLit:  make(map[string]*index),
		groupLit: make(map[string]*index),
	}
	userGlobs := make(map[string]*globIndex)
	groupGlobs := make(map[string]*globIndex)
	globFor := func(m map[string]*globIndex, list *[]*globIndex, src string) *globIndex {
		gi := m[src]
		if gi == nil {
			gi = &globIndex{glob: newGlob(src), plain: &index{}, bound: &index{}}
			m[src] = gi
			*list = append(*list, gi)
		}
		return gi
	}
	litFor := func(m map[string]*index, name string) *index {
		ix := m[name]
		if ix == nil {
			ix = &index{}
			m[name] = ix
		}
		return ix
	}
	withoutGroup := func(p *pattern) *pattern {
		if p.usesGroup {
			return nil // the clause gives ${group} no value
		}
		return p
	}
	withGroup := func(p *pattern) *pattern {
		if !p.usesGroup {
			return nil
		}
		return p
	}

	for i, r := range rules {
		pats := make([]*pattern, len(r.Repositories))
		for j, src := range r.Repositories {
			pats[j], _ = parsePattern(src) // validated above
		}
		acts := parseActions(r.Actions)
		// add puts the rule into ix: each pattern passed through f, which
		// returns nil for one that matches nothing there, and the catalog
		// grant when withCatalog.
		add := func(ix *index, withCatalog bool, f func(*pattern) *pattern) {
			for j, pat := range pats {
				if pat = f(pat); pat != nil {
					ix.add(entry{pat: pat, rule: int32(i), pos: int32(j), actions: acts})
				}
			}
			if withCatalog && r.Catalog {
				ix.catalog = append(ix.catalog, i)
			}
		}

		if r.Anonymous {
			add(pol.anon, true, withoutGroup)
		}
		seen := make(map[string]bool)
		for _, u := range r.Users {
			if seen[u] {
				continue
			}
			seen[u] = true
			if isGlob(u) {
				add(globFor(userGlobs, &pol.userGlob, u).plain, true, withoutGroup)
				continue
			}
			add(litFor(pol.userLit, u), true, func(p *pattern) *pattern {
				if p = withoutGroup(p); p != nil {
					p = p.bind(partUser, u)
				}
				return p
			})
		}
		clear(seen)
		for _, g := range r.Groups {
			if seen[g] {
				continue
			}
			seen[g] = true
			if isGlob(g) {
				gi := globFor(groupGlobs, &pol.groupGlob, g)
				add(gi.plain, true, withoutGroup)
				add(gi.bound, false, withGroup)
				continue
			}
			add(litFor(pol.groupLit, g), true, func(p *pattern) *pattern { return p.bind(partGroup, g) })
		}
	}
	return pol, nil
}

// via says how a rule came to apply to the subject.
type via uint8

const (
	viaAnonymous via = iota // the rule has anonymous: true
	viaUser                 // the username matched the rule's users
	viaGroup                // a group matched the rule's groups
)

// source is one index that applies to a subject, with how it applies.
type source struct {
	ix    *index
	via   via
	group string // the subject's group, for viaGroup
	// groupOK reports whether group may be substituted for ${group}.
	groupOK bool
}

// view is a policy seen by one subject: the indexes that apply to it.
type view struct {
	user     string // ${username}; "" for anonymous subjects
	userOK   bool
	readOnly bool
	srcs     []source
}

// maxInlineSources is how many applying indexes a view holds without a heap
// allocation.
const maxInlineSources = 64

// view returns the indexes that apply to sub, appended to buf.
func (p *Policy) view(sub Subject, buf []source) view {
	v := view{readOnly: sub.ReadOnly, srcs: buf[:0]}
	if !p.anon.empty() {
		v.srcs = append(v.srcs, source{ix: p.anon, via: viaAnonymous})
	}
	if sub.Anonymous {
		return v
	}
	v.user = sub.Username
	v.userOK = usable(sub.Username)
	if sub.Username != "" {
		if ix := p.userLit[sub.Username]; !ix.empty() {
			v.srcs = append(v.srcs, source{ix: ix, via: viaUser})
		}
		for _, gi := range p.userGlob {
			if !gi.plain.empty() && gi.glob.match(sub.Username) {
				v.srcs = append(v.srcs, source{ix: gi.plain, via: viaUser})
			}
		}
	}
	for _, g := range sub.Groups {
		if ix := p.groupLit[g]; g != "" && !ix.empty() {
			v.srcs = append(v.srcs, source{ix: ix, via: viaGroup, group: g})
		}
	}
	for _, gi := range p.groupGlob {
		plainDone := gi.plain.empty()
		bound := !gi.bound.empty()
		for _, g := range sub.Groups {
			if g == "" || !gi.glob.match(g) {
				continue
			}
			if !plainDone {
				v.srcs = append(v.srcs, source{ix: gi.plain, via: viaGroup, group: g})
				plainDone = true
			}
			if bound && usable(g) {
				v.srcs = append(v.srcs, source{ix: gi.bound, via: viaGroup, group: g, groupOK: true})
			}
		}
	}
	return v
}

// evaluation is the state of evaluating one repository scope.
type evaluation struct {
	segs   []string
	user   string // ${username}
	userOK bool
	// need are the actions that, held, grant all that can be granted;
	// useful are those that can add to the grant.
	need, useful actionSet
	held         actionSet
	// visit, when set, is called for every matching entry and turns off
	// the shortcuts that skip entries once the request is satisfied.
	visit func(source, entry)
}

// wanted returns the need and useful sets of a request (see evaluation).
func wanted(actions []string, readOnly bool) (need, useful actionSet) {
	need = parseActions(actions)
	if readOnly {
		if need&(actPull|actAll) != 0 {
			need = actPull
		} else {
			need = 0
		}
	}
	useful = need | actAll
	if need&actAll != 0 {
		useful |= actExplicit
	}
	return need, useful
}

func (e *evaluation) satisfied() bool {
	return e.held&actAll != 0 || e.need&^e.held == 0
}

// repository returns the actions v's rules hold on the repository named by
// segs, before the read-only restriction.
func (v *view) repository(e *evaluation) actionSet {
	for _, src := range v.srcs {
		src.ix.eval(e, src)
		if e.visit == nil && e.satisfied() {
			break
		}
	}
	return e.held
}

func (ix *index) eval(e *evaluation, src source) {
	first := e.segs[0]
	if list := ix.byFirst[first]; len(list) > 0 {
		e.evalList(list, src)
	}
	if len(ix.byUser) > 0 && e.userOK && first == e.user {
		e.evalList(ix.byUser, src)
	}
	if len(ix.byGroup) > 0 && src.groupOK && first == src.group {
		e.evalList(ix.byGroup, src)
	}
	if len(ix.other) > 0 {
		e.evalList(ix.other, src)
	}
}

func (e *evaluation) evalList(list []entry, src source) {
	b := bindings{user: e.user, group: src.group}
	for i := range list {
		en := &list[i]
		if e.visit == nil && en.actions&e.useful&^e.held == 0 {
			continue // adds nothing that was asked for
		}
		if (en.pat.usesUser && !e.userOK) || (en.pat.usesGroup && !src.groupOK) {
			continue
		}
		if !en.pat.match(e.segs, &b) {
			continue
		}
		e.held |= en.actions
		if e.visit != nil {
			e.visit(src, *en)
		} else if e.satisfied() {
			return
		}
	}
}

// catalog reports whether a rule granting the catalog applies, calling visit
// (when set) for each.
func (v *view) catalog(visit func(source, int)) bool {
	found := false
	for _, src := range v.srcs {
		for _, rule := range src.ix.catalog {
			found = true
			if visit == nil {
				return true
			}
			visit(src, rule)
		}
	}
	return found
}

// kind classifies a requested scope for the policy.
type kind uint8

const (
	kindOther      kind = iota // never granted
	kindRepository             // repository, class "" or plugin
	kindCatalog                // registry:catalog
)

func classify(s scope.Scope) kind {
	switch {
	case s.Type == scope.TypeRepository && (s.Class == "" || s.Class == scope.ClassPlugin):
		return kindRepository
	case s.Type == scope.TypeRegistry && s.Class == "" && s.Name == scope.CatalogName:
		return kindCatalog
	}
	return kindOther
}

// Grant returns, for each requested scope in order, the granted scope: the
// same Type, Class and Name, with Actions the subset of the requested
// actions the subject's rules allow — an empty, non-nil slice when none.
// It never grants an action that was not requested; a requested "*" is
// granted as "*" when a rule holds "*", else as the explicit actions held,
// in pull, push, delete order. registry:catalog:* is granted ["*"] when a
// rule with catalog: true applies; other resource types get nothing.
func (p *Policy) Grant(sub Subject, requested []scope.Scope) []scope.Scope {
	out := make([]scope.Scope, len(requested))
	n := 0
	for _, r := range requested {
		n += len(r.Actions) + len(explicitActions())
	}
	buf := make([]string, 0, n)
	var srcBuf [maxInlineSources]source
	v := p.view(sub, srcBuf[:0])
	var segBuf [maxSegments]string
	for i, r := range requested {
		start := len(buf)
		switch classify(r) {
		case kindRepository:
			buf = appendGranted(buf, r.Actions, v.repositoryActions(r.Name, r.Actions, segBuf[:0], nil))
		case kindCatalog:
			if v.catalog(nil) && slices.Contains(r.Actions, scope.ActionAll) {
				buf = append(buf, scope.ActionAll)
			}
		}
		out[i] = scope.Scope{Type: r.Type, Class: r.Class, Name: r.Name, Actions: buf[start:len(buf):len(buf)]}
	}
	return out
}

// repositoryActions returns the actions the subject may take on the named
// repository, of those requested, after the read-only restriction.
func (v *view) repositoryActions(name string, requested, segBuf []string, visit func(source, entry)) actionSet {
	segs, ok := splitName(name, segBuf)
	if !ok {
		return 0
	}
	e := evaluation{segs: segs, user: v.user, userOK: v.userOK, visit: visit}
	e.need, e.useful = wanted(requested, v.readOnly)
	if e.need == 0 && visit == nil {
		return 0
	}
	held := v.repository(&e)
	if v.readOnly {
		held = held.readOnly()
	}
	return held
}

// appendGranted appends the requested actions that held allows, in the
// request's order.
func appendGranted(buf, requested []string, held actionSet) []string {
	var done actionSet
	for _, a := range requested {
		switch bit := parseAction(a); {
		case bit == actAll && held&actAll != 0:
			if done&actAll == 0 {
				buf = append(buf, scope.ActionAll)
				done |= actAll
			}
		case bit == actAll:
			for _, b := range explicitActions() {
				if held&b != 0 && done&b == 0 {
					buf = append(buf, b.name())
					done |= b
				}
			}
		case bit != 0 && held&(bit|actAll) != 0 && done&bit == 0:
			buf = append(buf, a)
			done |= bit
		}
	}
	return buf
}
