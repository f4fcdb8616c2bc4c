package groups

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// matches compiles pattern and reports whether it matches name with the
// given variable values, the way a Policy evaluates it.
func matches(t testing.TB, pattern, user, group, name string) bool {
	t.Helper()
	p, err := parsePattern(pattern)
	if err != nil {
		t.Fatalf("parsePattern(%q): %v", pattern, err)
	}
	if (p.usesUser && !usable(user)) || (p.usesGroup && !usable(group)) {
		return false
	}
	segs, ok := splitName(name, nil)
	if !ok {
		return false
	}
	return p.match(segs, &bindings{user: user, group: group})
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern     string
		user, group string
		yes, no     []string
	}{
		{pattern: "team-a/**", yes: []string{"team-a", "team-a/x", "team-a/x/y"}, no: []string{"team-ab", "team-b/x", "x/team-a"}},
		{pattern: "**", yes: []string{"a", "a/b/c", "localhost:5000/a"}},
		{pattern: "a/**/b", yes: []string{"a/b", "a/x/b", "a/x/y/b"}, no: []string{"a", "b", "a/x", "a/b/c", "x/a/b"}},
		{pattern: "**/cache", yes: []string{"cache", "x/cache", "x/y/cache"}, no: []string{"cache/x", "xcache"}},
		{pattern: "a/**/b/**/c", yes: []string{"a/b/c", "a/x/b/y/z/c", "a/b/b/c", "a/b/c/b/c"}, no: []string{"a/c", "a/b", "a/c/b"}},
		{pattern: "**/**", yes: []string{"a", "a/b"}},
		{pattern: "team-*/app", yes: []string{"team-a/app", "team-/app"}, no: []string{"team-a/x/app", "team/app", "team-a/app/x"}},
		{pattern: "*", yes: []string{"x", "team-a"}, no: []string{"x/y"}},
		{pattern: "*/*", yes: []string{"a/b"}, no: []string{"a", "a/b/c"}},
		{pattern: "a*b*c", yes: []string{"abc", "axbyc", "abbc", "abcbc"}, no: []string{"acb", "ab", "xabc"}},
		{pattern: "*a*a*", yes: []string{"aa", "xaya"}, no: []string{"a"}},
		{pattern: "*-dev/**", yes: []string{"web-dev", "web-dev/x"}, no: []string{"web-devx/x"}},
		{pattern: "localhost:5000/**", yes: []string{"localhost:5000/a/b"}, no: []string{"localhost:5001/a"}},
		{pattern: "${username}/**", user: "alice", yes: []string{"alice", "alice/x/y"}, no: []string{"alicex/y", "bob/x"}},
		{pattern: "${username}/**", user: "a*", yes: []string{"a*/x"}, no: []string{"ab/x", "a/x"}},
		{pattern: "${username}/**", user: "a/b", no: []string{"a/b/x", "a/b", "a"}},
		{pattern: "${username}/**", user: "", no: []string{"x", "/x"}},
		{pattern: "team-${group}/${username}-*", user: "bo", group: "a", yes: []string{"team-a/bo-x", "team-a/bo-"}, no: []string{"team-a/bob-x", "team-b/bo-x"}},
		{pattern: "*${username}*", user: "ali", yes: []string{"ali", "xalix"}, no: []string{"al"}},
		{pattern: "${group}/**", group: "*", yes: []string{"*/x"}, no: []string{"a/x"}},
		{pattern: "**/${group}", group: "team", yes: []string{"team", "x/y/team"}, no: []string{"x/teams"}},
		{pattern: "team-a/**", no: []string{"team-a//x", "team-a/", "/team-a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			for _, name := range tt.yes {
				if !matches(t, tt.pattern, tt.user, tt.group, name) {
					t.Errorf("%q (user %q, group %q) does not match %q", tt.pattern, tt.user, tt.group, name)
				}
			}
			for _, name := range tt.no {
				if matches(t, tt.pattern, tt.user, tt.group, name) {
					t.Errorf("%q (user %q, group %q) matches %q", tt.pattern, tt.user, tt.group, name)
				}
			}
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string // substring of the error
	}{
		{"", "empty pattern"},
		{"/a", "empty path segment"},
		{"a/", "empty path segment"},
		{"a//b", "empty path segment"},
		{"a**", "** must be a whole path segment"},
		{"**b", "** must be a whole path segment"},
		{"a/***", "** must be a whole path segment"},
		{"a$b", "'$' must start"},
		{"${user}/x", "unknown variable ${user}"},
		{"${env:HOME}/x", "unknown variable ${env:HOME}"},
		{"${username", "unterminated ${"},
		{"team a", `character ' '`},
		{"a?b", `character '?'`},
		{"a@b", `character '@'`},
		{"é", "character"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := parsePattern(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parsePattern(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
			}
		})
	}
	for _, ok := range []string{"**", "a/**/b", "${username}-*/**", "localhost:5000/**", "Foo/x", "[::1]:5000/x", "a_b.c-d/*"} {
		if _, err := parsePattern(ok); err != nil {
			t.Errorf("parsePattern(%q): %v", ok, err)
		}
	}
}

func TestPatternString(t *testing.T) {
	tests := []struct{ pattern, user, group, want string }{
		{"team-a/**", "", "", "team-a/**"},
		{"${username}/*-x/**", "alice", "", "alice/*-x/**"},
		{"team-${group}/${username}", "bob", "a", "team-a/bob"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := parsePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(bindings{user: tt.user, group: tt.group}); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		glob    string
		yes, no []string
	}{
		{"*", []string{"", "a", "/org/team"}, nil},
		{"team-*", []string{"team-", "team-a", "team-a/b"}, []string{"team", "xteam-a"}},
		{"*-admins", []string{"-admins", "registry-admins"}, []string{"admins", "registry-admins-x"}},
		{"a*b*c", []string{"abc", "aXbYc", "abcbc"}, []string{"acb", "ab", "abcx"}},
		{"a*a", []string{"aa", "aba"}, []string{"a"}},
		{"exact", []string{"exact"}, []string{"exac", "exactly"}},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			g := newGlob(tt.glob)
			for _, s := range tt.yes {
				if !g.match(s) {
					t.Errorf("%q does not match %q", tt.glob, s)
				}
			}
			for _, s := range tt.no {
				if g.match(s) {
					t.Errorf("%q matches %q", tt.glob, s)
				}
			}
		})
	}
}

// oracle translates a pattern's source text straight into a regular
// expression over "/"+name, independently of the compiled form: each
// ordinary segment is "/" and its text, each "**" any number of "/"
// segments. It reports ok=false when a variable's value is not usable.
func oracle(pattern, user, group string) (re *regexp.Regexp, ok bool) {
	var sb strings.Builder
	sb.WriteString("^")
	for seg := range strings.SplitSeq(pattern, "/") {
		if seg == "**" {
			sb.WriteString("(?:/[^/]+)*")
			continue
		}
		sb.WriteString("/")
		for i := 0; i < len(seg); {
			switch {
			case strings.HasPrefix(seg[i:], VarUsername):
				if !usable(user) {
					return nil, false
				}
				sb.WriteString(regexp.QuoteMeta(user))
				i += len(VarUsername)
			case strings.HasPrefix(seg[i:], VarGroup):
				if !usable(group) {
					return nil, false
				}
				sb.WriteString(regexp.QuoteMeta(group))
				i += len(VarGroup)
			case seg[i] == '*':
				sb.WriteString("[^/]*")
				i++
			default:
				sb.WriteString(regexp.QuoteMeta(seg[i : i+1]))
				i++
			}
		}
	}
	sb.WriteString("$")
	return regexp.MustCompile(sb.String()), true
}

func oracleMatch(pattern, user, group, name string) bool {
	if _, ok := splitName(name, nil); !ok {
		return false
	}
	re, ok := oracle(pattern, user, group)
	return ok && re.MatchString("/"+name)
}

// FuzzPatternMatch compiles fuzzed patterns and checks the compiled matcher
// against the regular-expression oracle.
func FuzzPatternMatch(f *testing.F) {
	seeds := []struct{ pattern, user, group, name string }{
		{"team-a/**", "", "", "team-a/x"},
		{"a/**/b/**/c", "", "", "a/b/b/c"},
		{"*a*a*", "", "", "xaya"},
		{"${username}/**", "a*", "", "a*/x"},
		{"team-${group}/*-${username}*", "bo", "a/b", "team-a/x-bo"},
		{"**/${group}", "", "g", "x/g"},
		{"*/*/**/x*y", "", "", "a/b/c/xzy"},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.user, s.group, s.name)
	}
	f.Fuzz(func(t *testing.T, pattern, user, group, name string) {
		if len(pattern) > 64 || len(name) > 256 {
			return
		}
		if !utf8.ValidString(user) || !utf8.ValidString(group) || !utf8.ValidString(name) {
			return // the oracle's regexp cannot express invalid UTF-8
		}
		p, err := parsePattern(pattern)
		if err != nil {
			return
		}
		want := oracleMatch(pattern, user, group, name)
		got := false
		if !(p.usesUser && !usable(user)) && !(p.usesGroup && !usable(group)) {
			if segs, ok := splitName(name, nil); ok {
				got = p.match(segs, &bindings{user: user, group: group})
			}
		}
		if got != want {
			t.Fatalf("pattern %q user %q group %q name %q: match = %v, oracle = %v", pattern, user, group, name, got, want)
		}
		// Binding a variable at compile time must not change the outcome.
		if bu := p.bind(partUser, user); bu != nil {
			if bg := bu.bind(partGroup, group); bg != nil && !bg.usesUser && !bg.usesGroup {
				segs, ok := splitName(name, nil)
				if b := ok && bg.match(segs, &bindings{}); b != want {
					t.Fatalf("pattern %q bound to user %q group %q, name %q: match = %v, oracle = %v", pattern, user, group, name, b, want)
				}
			}
		}
	})
}
