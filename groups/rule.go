package groups

import (
	"errors"
	"fmt"
	"strings"

	"github.com/registry-bridge/bridge/scope"
)

// Rule is one entry of the configuration file's `access:` list. A rule
// applies to a subject when it has Anonymous set (it then applies to every
// request, with or without credentials), when the subject's username matches
// one of Users, or when one of the subject's groups matches one of Groups.
// An anonymous subject gets only the rules with Anonymous set.
//
// Repositories are patterns over '/'-separated repository names:
//
//   - '*' matches any run of characters within one segment ("team-*/app");
//   - "**", which must be a whole segment, matches any number of segments,
//     none included: "team-a/**" matches "team-a" and "team-a/x/y", and "**"
//     alone matches every repository;
//   - ${username} stands for the subject's username and ${group} for the
//     subject's group that matched an entry of Groups (one binding per
//     matching group). Values are substituted as literal text: a '*' in a
//     username is not a wildcard. A value that is empty or contains '/'
//     makes the pattern match nothing. A rule applying through Users or
//     Anonymous has no ${group}; its patterns using it match nothing then.
//   - every other character matches itself; only the characters of
//     repository names may appear.
//
// Entries of Groups and Users are literal names compared exactly, or globs
// in which '*' matches any run of characters ('/' included); "*" alone
// matches every group, or every authenticated user.
type Rule struct {
	// Groups are IdP group names or globs of them.
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Users are usernames or globs of them; "*" is any authenticated user.
	Users []string `yaml:"users,omitempty" json:"users,omitempty"`
	// Anonymous makes the rule apply to every request, including those
	// without credentials.
	Anonymous bool `yaml:"anonymous,omitempty" json:"anonymous,omitempty"`
	// Repositories are the repository patterns the rule grants Actions on.
	Repositories []string `yaml:"repositories" json:"repositories"`
	// Actions are "pull", "push", "delete" or "*" (every action).
	Actions []string `yaml:"actions" json:"actions"`
	// Catalog also grants registry:catalog:*, the repository listing.
	Catalog bool `yaml:"catalog,omitempty" json:"catalog,omitempty"`
	// AllowOverlap accepts, for this rule, the overlaps Lint reports
	// between a username-keyed pattern and another rule's namespace: set
	// it on either rule when the overlap is deliberate. It changes no
	// grant.
	AllowOverlap bool `yaml:"allow_overlap,omitempty" json:"allow_overlap,omitempty"`
}

// ErrInvalid is matched (errors.Is) by every problem Validate reports.
var ErrInvalid = errors.New("invalid access rule")

// FieldError is one problem of an access list: the key path of the offending
// value, relative to the configuration file (e.g. "access[2].repositories[0]"),
// and what is wrong with it.
type FieldError struct {
	Path    string
	Problem string
}

// Error returns "path: problem".
func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// ListKey is the configuration key of the access list; Validate's key paths
// start with it.
const ListKey = "access"

// Rules is the configuration file's `access:` list.
type Rules []Rule

// Validate reports every problem of every rule at once, joined with
// errors.Join; each is a *FieldError whose path starts with prefix[i]
// (prefix is normally ListKey, giving "access[2].actions[0]"). It returns
// nil when the rules compile.
func (rs Rules) Validate(prefix string) error {
	var errs []error
	for i, r := range rs {
		errs = append(errs, r.validate(fmt.Sprintf("%s[%d]", prefix, i))...)
	}
	return errors.Join(errs...)
}

// Validate is Rules(rules).Validate(ListKey).
func Validate(rules []Rule) error { return Rules(rules).Validate(ListKey) }

func (r Rule) validate(path string) []error {
	var errs []error
	problem := func(p, format string, args ...any) {
		errs = append(errs, &FieldError{Path: p, Problem: fmt.Sprintf(format, args...)})
	}
	if len(r.Groups) == 0 && len(r.Users) == 0 && !r.Anonymous {
		problem(path, "no subject: set groups, users or anonymous: true")
	}
	for i, g := range r.Groups {
		if g == "" {
			problem(fmt.Sprintf("%s.groups[%d]", path, i), "empty group name")
		}
	}
	for i, u := range r.Users {
		if u == "" {
			problem(fmt.Sprintf("%s.users[%d]", path, i), "empty username")
		}
	}
	switch {
	case len(r.Repositories) == 0 && !r.Catalog:
		problem(path+".repositories", "no repository patterns (a rule without any must set catalog: true)")
	case len(r.Repositories) > 0 && len(r.Actions) == 0:
		problem(path+".actions", "no actions (want pull, push, delete or *)")
	}
	for i, a := range r.Actions {
		if parseAction(a) == 0 {
			problem(fmt.Sprintf("%s.actions[%d]", path, i), "unknown action %q (want pull, push, delete or *)", a)
		}
	}
	anonymousOnly := r.Anonymous && len(r.Groups) == 0 && len(r.Users) == 0
	for i, src := range r.Repositories {
		p := fmt.Sprintf("%s.repositories[%d]", path, i)
		pat, err := parsePattern(src)
		if err != nil {
			problem(p, "pattern %q: %v", src, err)
			continue
		}
		if pat.usesGroup && len(r.Groups) == 0 {
			problem(p, "pattern %q uses %s but the rule has no groups", src, VarGroup)
		}
		if pat.usesUser && anonymousOnly {
			problem(p, "pattern %q uses %s but the rule applies only to anonymous requests", src, VarUsername)
		}
	}
	return errs
}

// actionSet is a set of actions as bits.
type actionSet uint8

const (
	actPull actionSet = 1 << iota
	actPush
	actDelete
	actAll // "*"

	actExplicit = actPull | actPush | actDelete
)

func parseAction(a string) actionSet {
	switch a {
	case scope.ActionPull:
		return actPull
	case scope.ActionPush:
		return actPush
	case scope.ActionDelete:
		return actDelete
	case scope.ActionAll:
		return actAll
	}
	return 0
}

func parseActions(actions []string) actionSet {
	var s actionSet
	for _, a := range actions {
		s |= parseAction(a)
	}
	return s
}

// readOnly removes push and delete; a held "*" becomes pull.
func (s actionSet) readOnly() actionSet {
	if s&actAll != 0 {
		return actPull
	}
	return s & actPull
}

// explicitActions are the single actions, in the order grants for a "*"
// request and summaries list them.
func explicitActions() [3]actionSet { return [3]actionSet{actPull, actPush, actDelete} }

// name returns the action name of a single-bit set.
func (s actionSet) name() string {
	switch s {
	case actPull:
		return scope.ActionPull
	case actPush:
		return scope.ActionPush
	case actDelete:
		return scope.ActionDelete
	case actAll:
		return scope.ActionAll
	}
	return ""
}

// list returns the set's names: ["*"] when it holds "*", else the explicit
// actions in pull, push, delete order. It is never nil.
func (s actionSet) list() []string {
	if s&actAll != 0 {
		return []string{scope.ActionAll}
	}
	out := []string{}
	for _, a := range explicitActions() {
		if s&a != 0 {
			out = append(out, a.name())
		}
	}
	return out
}

func (s actionSet) String() string { return "[" + strings.Join(s.list(), " ") + "]" }
