package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Resource types and actions the registry knows.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"

	// ClassPlugin is the class of repository(plugin) scopes, which Docker
	// sends for plugin install and push.
	ClassPlugin = "plugin"

	// CatalogName is the only registry resource: registry:catalog:*.
	CatalogName = "catalog"

	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	// ActionAll is "every action": in a request it asks for everything the
	// subject may do; in a token it satisfies any action on the resource.
	ActionAll = "*"
)

// Limits on what one request may ask for. They keep a hostile query from
// costing more than a legitimate one; real clients send a handful of scopes.
const (
	// MaxScopes is the most resource scopes accepted in one token request.
	MaxScopes = 64
	// MaxNameLength is the longest repository name distribution accepts
	// (reference.NameTotalLengthMax).
	MaxNameLength = 255
	// maxScopeLength bounds one resourcescope before it is parsed.
	maxScopeLength = 512
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid scope")

// Scope is one resource and the actions requested on it, or granted on it.
// Its JSON form is an entry of the token's "access" claim.
type Scope struct {
	// Type is the resource type without its class: "repository" for both
	// "repository" and "repository(plugin)". The registry matches on Type
	// and Name only, so the class must not be part of Type.
	Type string `json:"type"`
	// Class is the resource class, "plugin" for repository(plugin), else "".
	Class string `json:"class,omitempty"`
	// Name is the resource name, e.g. "team-a/app" or "localhost:5000/a/b".
	Name string `json:"name"`
	// Actions is never nil, so that it encodes as [] and not null.
	Actions []string `json:"actions"`
}

// String returns the scope in the wire grammar, e.g.
// "repository(plugin):a/b:pull,push".
func (s Scope) String() string {
	t := s.Type
	if s.Class != "" {
		t += "(" + s.Class + ")"
	}
	return t + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Parse parses one resourcescope, such as "repository:team-a/app:pull,push".
// The actions are de-duplicated and keep their first-seen order.
func Parse(s string) (Scope, error) {
	if len(s) > maxScopeLength {
		return Scope{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxScopeLength)
	}
	if !utf8.ValidString(s) {
		return Scope{}, fmt.Errorf("%w %q: not UTF-8", ErrInvalid, s)
	}
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Scope{}, fmt.Errorf("%w %q: want type:name:actions", ErrInvalid, s)
	}
	typ, class, err := parseType(s[:first])
	if err != nil {
		return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	name := s[first+1 : last]
	actions, err := parseActions(s[last+1:])
	if err != nil {
		return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	out := Scope{Type: typ, Class: class, Name: name, Actions: actions}
	if err := out.validate(); err != nil {
		return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	return out, nil
}

// ParseAll parses the values of every "scope" parameter of a request. Each
// value may hold several scopes separated by spaces (the POST form, and what
// go-containerregistry and regclient send on GET too); empty values and
// repeated spaces are ignored. Scopes naming the same resource are merged,
// so the result holds each resource once, in first-seen order.
func ParseAll(values []string) ([]Scope, error) {
	var out []Scope
	for _, v := range values {
		for f := range strings.FieldsSeq(v) {
			s, err := Parse(f)
			if err != nil {
				return nil, err
			}
			out = merge(out, s)
			if len(out) > MaxScopes {
				return nil, fmt.Errorf("%w: more than %d scopes in one request", ErrInvalid, MaxScopes)
			}
		}
	}
	return out, nil
}

// Format joins scopes into the space-separated form of the OAuth2 "scope"
// field.
func Format(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

func merge(list []Scope, s Scope) []Scope {
	for i := range list {
		if list[i].Type == s.Type && list[i].Class == s.Class && list[i].Name == s.Name {
			for _, a := range s.Actions {
				if !slices.Contains(list[i].Actions, a) {
					list[i].Actions = append(list[i].Actions, a)
				}
			}
			return list
		}
	}
	return append(list, s)
}

func parseType(t string) (typ, class string, err error) {
	typ = t
	if open := strings.IndexByte(t, '('); open >= 0 {
		if !strings.HasSuffix(t, ")") {
			return "", "", errors.New("resource type: unbalanced '('")
		}
		typ, class = t[:open], t[open+1:len(t)-1]
		if !isLowerAlnum(class) {
			return "", "", fmt.Errorf("resource class %q: want lowercase letters and digits", class)
		}
	}
	if !isLowerAlnum(typ) {
		return "", "", fmt.Errorf("resource type %q: want lowercase letters and digits", typ)
	}
	return typ, class, nil
}

func parseActions(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("no actions")
	}
	var actions []string
	for a := range strings.SplitSeq(s, ",") {
		if a != ActionAll && !isLower(a) {
			return nil, fmt.Errorf("action %q: want lowercase letters or *", a)
		}
		if !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	return actions, nil
}

// validate applies the rules of the known resource types; scopes of other
// types parse (the policy grants them nothing) as long as the name is sane.
func (s Scope) validate() error {
	switch s.Type {
	case TypeRepository:
		if s.Class != "" && s.Class != ClassPlugin {
			return fmt.Errorf("unknown repository class %q", s.Class)
		}
		if err := ValidateRepository(s.Name); err != nil {
			return err
		}
		for _, a := range s.Actions {
			switch a {
			case ActionPull, ActionPush, ActionDelete, ActionAll:
			default:
				return fmt.Errorf("unknown action %q (want pull, push, delete or *)", a)
			}
		}
	case TypeRegistry:
		if s.Class != "" {
			return fmt.Errorf("registry resources have no class, got %q", s.Class)
		}
		if s.Name != CatalogName {
			return fmt.Errorf("unknown registry resource %q (want catalog)", s.Name)
		}
		if len(s.Actions) != 1 || s.Actions[0] != ActionAll {
			return errors.New("registry:catalog takes the action * only")
		}
	default:
		if s.Name == "" || len(s.Name) > MaxNameLength {
			return fmt.Errorf("resource name must be 1 to %d bytes", MaxNameLength)
		}
		for i := 0; i < len(s.Name); i++ {
			if c := s.Name[i]; c <= ' ' || c >= 0x7f {
				return errors.New("resource name: control, space or non-ASCII byte")
			}
		}
	}
	return nil
}

func isLower(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isLowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
