package groups

import (
	"fmt"
	"slices"
	"strings"
)

// FindingKind classifies a Finding.
type FindingKind uint8

const (
	// Squat: a rule keyed on the username (a pattern using ${username},
	// or a users glob other than "*") lets a person who picks the right
	// username reach repositories another rule gives to someone else.
	Squat FindingKind = iota + 1
	// Redundant: a rule can never add anything, because another rule
	// grants at least as much, on at least as much, to at least as many.
	Redundant
)

func (k FindingKind) String() string {
	switch k {
	case Squat:
		return "squat"
	case Redundant:
		return "redundant"
	}
	return "unknown"
}

// Finding is one problem Lint found in an access list. The rules compile:
// these are rules that do what they say, which is probably not what was
// meant.
type Finding struct {
	Kind FindingKind
	// Rule is the index of the rule at fault: the username-keyed rule of
	// a Squat, the rule that adds nothing of a Redundant.
	Rule int
	// Pattern is Rule's repository pattern concerned, as written; "" when
	// the finding is about the whole rule.
	Pattern string
	// Other is the index of the other rule: the one whose namespace can be
	// taken, or the one that makes Rule redundant; -1 when there is none
	// (a Squat through a users glob).
	Other int
	// OtherPattern is Other's repository pattern concerned, as written.
	OtherPattern string
	// Username is, for a Squat, an example username that collides.
	Username string
	// Repository is, for a Squat, an example repository both patterns
	// match for that username.
	Repository string
	// Accepted is set when either rule has allow_overlap: true: the
	// overlap is deliberate.
	Accepted bool
	// Message says all of the above in one sentence.
	Message string
}

// String returns the message, prefixed with the rule's key path.
func (f Finding) String() string { return f.Message }

// Lint analyses an access list that compiles (see Validate) and returns,
// in rule order:
//
//   - every Squat: for each repository pattern using ${username} of a rule
//     that applies through a users glob or through groups, each pattern of
//     another rule that names a namespace (a literal segment or ${group}),
//     when some username (one passwords.ValidUsername accepts; never one
//     with '/') makes both match a repository. The example username and
//     repository are the shortest found. Each ${username} or ${group} is
//     taken as any value its rule's users or groups entries allow, each
//     occurrence independently: the analysis may report an overlap that
//     needs the same variable to take two values, never miss one. Pairs
//     are left out when the other rule applies to everyone the first does
//     and already grants its actions (nothing is gained), when the other
//     pattern has no literal text at all ("**", "*/**": a superset, not a
//     namespace), and when the other pattern uses ${username} too.
//     A rule applying through a users glob other than "*" (e.g. "*-bot")
//     is a Squat by itself: anyone may pick a username that matches.
//   - every Redundant rule: one whose subjects, actions, repository
//     patterns and catalog grant are all covered by a single other rule
//     (patterns written identically or covered by "**"; a users or groups
//     entry covered by an identical one or by "*"). Of two identical
//     rules the later one is reported.
//
// Lint does no I/O; its cost grows with the product of the rules' pattern
// counts, which is meant for `bridge config check` and reloads, not for
// requests.
func Lint(rules []Rule) []Finding {
	if Validate(rules) != nil {
		return nil
	}
	var out []Finding
	for i, r := range rules {
		out = append(out, squats(rules, i)...)
		for _, u := range r.Users {
			if isGlob(u) && u != "*" {
				name := globExample(u)
				out = append(out, Finding{
					Kind: Squat, Rule: i, Other: -1, Username: name, Accepted: r.AllowOverlap,
					Message: fmt.Sprintf("%s[%d] applies to every username matching %q: a person whose IdP username is %q gets %s on %s",
						ListKey, i, u, name, parseActions(r.Actions), describeRepos(r)),
				})
			}
		}
	}
	for j := range rules {
		for i := range rules {
			if i == j || !covers(rules[i], rules[j]) {
				continue
			}
			if i > j && covers(rules[j], rules[i]) {
				continue // identical: report the later one
			}
			msg := fmt.Sprintf("%s[%d] adds nothing: %s[%d] grants at least the same actions on the same repositories to everyone it applies to", ListKey, j, ListKey, i)
			if covers(rules[j], rules[i]) {
				msg = fmt.Sprintf("%s[%d] duplicates %s[%d]", ListKey, j, ListKey, i)
			}
			out = append(out, Finding{Kind: Redundant, Rule: j, Other: i, Message: msg})
			break
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.Rule - b.Rule })
	return out
}

func describeRepos(r Rule) string {
	if len(r.Repositories) == 0 {
		return "registry:catalog"
	}
	return strings.Join(r.Repositories, ", ")
}

// describeSubjects names who a rule applies to, e.g. "groups team-*".
func describeSubjects(r Rule) string {
	var parts []string
	if len(r.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(r.Groups, ", "))
	}
	if len(r.Users) > 0 {
		parts = append(parts, "users "+strings.Join(r.Users, ", "))
	}
	if r.Anonymous {
		parts = append(parts, "anonymous requests")
	}
	return strings.Join(parts, " and ")
}

// squats returns the Squat findings for the ${username} patterns of rule i.
func squats(rules []Rule, i int) []Finding {
	r := rules[i]
	// The username globs the pattern's ${username} can take: the users
	// globs, and any username when the rule applies through groups.
	var userGlobs []string
	for _, u := range r.Users {
		if isGlob(u) {
			userGlobs = append(userGlobs, u)
		}
	}
	if len(r.Groups) > 0 && !slices.Contains(userGlobs, "*") {
		userGlobs = append(userGlobs, "*")
	}
	if len(userGlobs) == 0 {
		return nil // literal users only: the pattern names their namespaces
	}
	var out []Finding
	for _, src := range r.Repositories {
		p, _ := parsePattern(src)
		if !p.usesUser {
			continue
		}
		// A pattern with ${group} applies only through groups, with any
		// username.
		users := userGlobs
		if p.usesGroup {
			users = []string{"*"}
		}
		for j, o := range rules {
			if j == i || harmless(r, o) {
				continue
			}
			for _, osrc := range o.Repositories {
				q, _ := parsePattern(osrc)
				if q.usesUser || !q.namespaced() || (q.usesGroup && len(o.Groups) == 0) {
					continue
				}
				w, ok := overlap(p, users, r.Groups, q, o.Groups)
				if !ok {
					continue
				}
				out = append(out, Finding{
					Kind: Squat, Rule: i, Pattern: src, Other: j, OtherPattern: osrc,
					Username: w.user, Repository: w.repo, Accepted: r.AllowOverlap || o.AllowOverlap,
					Message: fmt.Sprintf("%s[%d] %q (%s) overlaps %s[%d] %q (%s): a person whose username is %q, in no group of %s[%d], gets %s on %q",
						ListKey, i, src, describeSubjects(r), ListKey, j, osrc, describeSubjects(o),
						w.user, ListKey, j, parseActions(r.Actions), w.repo),
				})
			}
		}
	}
	return out
}

// harmless reports whether rule o applies to everyone rule r applies to and
// grants at least r's actions, so that an overlap gives r's subjects
// nothing o does not.
func harmless(r, o Rule) bool {
	everyone := o.Anonymous || slices.Contains(o.Users, "*")
	return everyone && actionsCover(parseActions(o.Actions), parseActions(r.Actions))
}

// actionsCover reports whether holding a grants everything holding b does.
func actionsCover(a, b actionSet) bool {
	return a&actAll != 0 || b&actAll == 0 && b&^a == 0
}

// namespaced reports whether the pattern has literal text or ${group}
// somewhere: one made of "**" and bare "*" segments only is a superset of
// namespaces, not one.
func (p *pattern) namespaced() bool {
	for _, s := range p.segs {
		if s.deep {
			continue
		}
		for _, c := range s.chunks {
			if len(c) > 0 {
				return true
			}
		}
	}
	return false
}

// covers reports whether rule a grants everything rule b does, to
// everyone b applies to, by the syntactic tests Lint documents.
func covers(a, b Rule) bool {
	if b.Catalog && !a.Catalog {
		return false
	}
	if len(b.Repositories) > 0 && !actionsCover(parseActions(a.Actions), parseActions(b.Actions)) {
		return false
	}
	if b.Anonymous && !a.Anonymous {
		return false
	}
	usesVars := false
	for _, src := range b.Repositories {
		p, _ := parsePattern(src)
		usesVars = usesVars || p.usesUser || p.usesGroup
	}
	// An anonymous rule applies to everyone, but gives no variable a value.
	if !a.Anonymous || usesVars {
		for _, u := range b.Users {
			if !slices.Contains(a.Users, u) && !slices.Contains(a.Users, "*") {
				return false
			}
		}
		for _, g := range b.Groups {
			if !slices.Contains(a.Groups, g) && !slices.Contains(a.Groups, "*") {
				return false
			}
		}
	}
	for _, src := range b.Repositories {
		if !slices.Contains(a.Repositories, src) && !slices.Contains(a.Repositories, "**") {
			return false
		}
	}
	return true
}

// witness is an example of an overlap.
type witness struct {
	user string
	repo string
}

// overlap decides whether p (using ${username}, which takes any value
// matching one of userGlobs; ${group} one matching pGroups) and q (${group}
// one matching qGroups) match a common repository name, and returns the
// shortest example.
func overlap(p *pattern, userGlobs, pGroups []string, q *pattern, qGroups []string) (witness, bool) {
	var best witness
	found := false
	for _, u := range userGlobs {
		for _, pg := range orAny(pGroups, p.usesGroup) {
			for _, qg := range orAny(qGroups, q.usesGroup) {
				a := expand(p, u, pg)
				b := expand(q, "", qg)
				if w, ok := intersect(a, b); ok && (!found || len(w.repo) < len(best.repo)) {
					best, found = w, true
				}
			}
		}
	}
	return best, found
}

// orAny returns the globs a ${group} takes, or one placeholder when the
// pattern does not use it.
func orAny(globs []string, uses bool) []string {
	if !uses {
		return []string{""}
	}
	return globs
}

// The analysis works on segments as sequences of character tokens.
type tokKind uint8

const (
	tokChar tokKind = iota // one given character
	tokOne                 // any one character of the class
	tokStar                // any run of characters of the class
)

type token struct {
	kind tokKind
	c    byte
	// user marks the characters that make up ${username}; noColon is
	// its class (a username has no ':'; nothing matches '/').
	user bool
}

// aSeg is a segment for the analysis: deep ("**") or a token sequence.
type aSeg struct {
	deep bool
	toks []token
}

// expand turns a pattern into analysis segments, with ${username} taking
// the values of userGlob and ${group} those of groupGlob.
func expand(p *pattern, userGlob, groupGlob string) []aSeg {
	out := make([]aSeg, len(p.segs))
	for i, s := range p.segs {
		if s.deep {
			out[i] = aSeg{deep: true}
			continue
		}
		var toks []token
		for j, c := range s.chunks {
			if j > 0 {
				toks = append(toks, token{kind: tokStar})
			}
			for _, pt := range c {
				switch pt.kind {
				case partLiteral:
					for k := range len(pt.text) {
						toks = append(toks, token{kind: tokChar, c: pt.text[k]})
					}
				case partUser:
					toks = append(toks, globTokens(userGlob, true)...)
				case partGroup:
					toks = append(toks, globTokens(groupGlob, false)...)
				}
			}
		}
		out[i] = aSeg{toks: toks}
	}
	return out
}

// globTokens returns the tokens of a variable whose value matches glob: a
// non-empty run of characters without '/' ('*' in a users or groups glob
// may match '/', but such a value makes the pattern match nothing).
func globTokens(glob string, user bool) []token {
	var toks []token
	lits := 0
	for i, chunk := range strings.Split(glob, "*") {
		if i > 0 {
			toks = append(toks, token{kind: tokStar, user: user})
		}
		for k := range len(chunk) {
			toks = append(toks, token{kind: tokChar, c: chunk[k], user: user})
			lits++
		}
	}
	if lits == 0 { // the value is not empty
		toks = append([]token{{kind: tokOne, user: user}}, toks...)
	}
	return toks
}

// accepts reports whether token t (not tokChar) takes character c.
func (t token) accepts(c byte) bool {
	return c != '/' && !(t.user && c == ':')
}

// anySeg is the segment language a "**" contributes: one non-empty segment.
var anySeg = aSeg{toks: []token{{kind: tokOne}, {kind: tokStar}}}

// intersect finds the shortest repository name matched by both segment
// lists, with the ${username} value (the characters of a's user tokens).
func intersect(a, b []aSeg) (witness, bool) {
	type state struct{ i, j int }
	type step struct {
		prev     state
		seg      string
		user     string
		consumed bool
	}
	start := state{0, 0}
	parent := map[state]step{start: {}}
	queue := []state{start}
	end := state{len(a), len(b)}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s == end {
			var segs []string
			user := ""
			for cur := s; cur != start; {
				st := parent[cur]
				if st.consumed {
					segs = append(segs, st.seg)
				}
				if st.user != "" {
					user = st.user
				}
				cur = st.prev
			}
			slices.Reverse(segs)
			return witness{user: user, repo: strings.Join(segs, "/")}, len(segs) > 0
		}
		visit := func(n state, st step) {
			if _, seen := parent[n]; !seen {
				st.prev = s
				parent[n] = st
				queue = append(queue, n)
			}
		}
		var sa, sb *aSeg
		if s.i < len(a) {
			sa = &a[s.i]
		}
		if s.j < len(b) {
			sb = &b[s.j]
		}
		if sa != nil && sa.deep {
			visit(state{s.i + 1, s.j}, step{})
		}
		if sb != nil && sb.deep {
			visit(state{s.i, s.j + 1}, step{})
		}
		if sa == nil || sb == nil {
			continue
		}
		// Consume one segment on both sides ("**" staying put).
		x, y := *sa, *sb
		next := state{s.i + 1, s.j + 1}
		switch {
		case x.deep && y.deep:
			continue
		case x.deep:
			x, next = anySeg, state{s.i, s.j + 1}
		case y.deep:
			y, next = anySeg, state{s.i + 1, s.j}
		}
		if seg, user, ok := segIntersect(x.toks, y.toks); ok {
			visit(next, step{seg: seg, user: user, consumed: true})
		}
	}
	return witness{}, false
}

// segIntersect finds the shortest string both token sequences match, and
// the part of it a's user tokens took.
func segIntersect(a, b []token) (string, string, bool) {
	// The alphabet: every literal character, plus one no literal uses
	// (all others behave like it).
	// The fresh one comes first, so that examples read "x-private"
	// rather than "--private".
	var lits []byte
	for _, t := range slices.Concat(a, b) {
		if t.kind == tokChar && !slices.Contains(lits, t.c) {
			lits = append(lits, t.c)
		}
	}
	var alpha []byte
	for _, c := range []byte("xyzabcdefghijklmnopqrstuvw0123456789") {
		if !slices.Contains(lits, c) {
			alpha = append(alpha, c)
			break
		}
	}
	alpha = append(alpha, lits...)
	// ne records that a character has been consumed: a segment is never
	// empty.
	type state struct {
		i, j int
		ne   bool
	}
	type step struct {
		prev   state
		c      byte
		isUser bool
	}
	// closure adds the states reachable by skipping tokStar tokens.
	closure := func(toks []token, i int) []int {
		out := []int{i}
		for i < len(toks) && toks[i].kind == tokStar {
			i++
			out = append(out, i)
		}
		return out
	}
	// moves returns the positions after consuming c at position i.
	moves := func(toks []token, i int, c byte) []int {
		if i >= len(toks) {
			return nil
		}
		t := toks[i]
		switch {
		case t.kind == tokChar && t.c == c:
			return []int{i + 1}
		case t.kind == tokOne && t.accepts(c):
			return []int{i + 1}
		case t.kind == tokStar && t.accepts(c):
			return []int{i}
		}
		return nil
	}
	parent := map[state]step{}
	var queue []state
	push := func(s state, st step, first bool) {
		for _, i := range closure(a, s.i) {
			for _, j := range closure(b, s.j) {
				n := state{i, j, s.ne}
				if _, seen := parent[n]; seen {
					continue
				}
				if first {
					parent[n] = step{prev: state{i: -1}}
				} else {
					parent[n] = st
				}
				queue = append(queue, n)
			}
		}
	}
	push(state{}, step{}, true)
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s.i == len(a) && s.j == len(b) && s.ne {
			var str, user []byte
			for cur := s; parent[cur].prev.i >= 0; cur = parent[cur].prev {
				st := parent[cur]
				str = append(str, st.c)
				if st.isUser {
					user = append(user, st.c)
				}
			}
			slices.Reverse(str)
			slices.Reverse(user)
			return string(str), string(user), true
		}
		for _, c := range alpha {
			for _, i := range moves(a, s.i, c) {
				for _, j := range moves(b, s.j, c) {
					isUser := s.i < len(a) && a[s.i].user
					push(state{i, j, true}, step{prev: s, c: c, isUser: isUser}, false)
				}
			}
		}
	}
	return "", "", false
}

// globExample returns a name a users glob matches: its stars replaced by
// "x".
func globExample(glob string) string {
	return strings.ReplaceAll(glob, "*", "x")
}
