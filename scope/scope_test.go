package scope

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Scope
	}{
		{"pull", "repository:team-a/app:pull", Scope{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}},
		{"pull push", "repository:a/b:push,pull", Scope{Type: "repository", Name: "a/b", Actions: []string{"push", "pull"}}},
		{"dedupe actions", "repository:a:pull,pull,push", Scope{Type: "repository", Name: "a", Actions: []string{"pull", "push"}}},
		{"host with port", "repository:localhost:5000/a/b:pull", Scope{Type: "repository", Name: "localhost:5000/a/b", Actions: []string{"pull"}}},
		{"dotted host", "repository:reg.example.com/x:pull", Scope{Type: "repository", Name: "reg.example.com/x", Actions: []string{"pull"}}},
		{"plugin", "repository(plugin):a/b:pull", Scope{Type: "repository", Class: "plugin", Name: "a/b", Actions: []string{"pull"}}},
		{"wildcard", "repository:a/b:*", Scope{Type: "repository", Name: "a/b", Actions: []string{"*"}}},
		{"catalog", "registry:catalog:*", Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{"separators", "repository:a.b_c__d---e/f:delete", Scope{Type: "repository", Name: "a.b_c__d---e/f", Actions: []string{"delete"}}},
		{"unknown type kept", "widget:thing:frob", Scope{Type: "widget", Name: "thing", Actions: []string{"frob"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, wantSub string
	}{
		{"empty", "", "want type:name:actions"},
		{"one colon", "repository:a", "want type:name:actions"},
		{"no actions", "repository:a:", "no actions"},
		{"unknown action", "repository:a:frob", `unknown action "frob"`},
		{"upper action", "repository:a:PULL", "want lowercase"},
		{"empty action", "repository:a:pull,", "want lowercase"},
		{"upper name", "repository:Team:pull", "path component"},
		{"leading sep", "repository:-a:pull", "path component"},
		{"double slash", "repository:a//b:pull", "path component"},
		{"trailing slash", "repository:a/:pull", "path component"},
		{"empty name", "repository::pull", "empty repository name"},
		{"bad class", "repository(widget):a:pull", "unknown repository class"},
		{"unbalanced", "repository(plugin:a:pull", "unbalanced"},
		{"catalog pull", "registry:catalog:pull", "action * only"},
		{"registry other", "registry:foo:*", "unknown registry resource"},
		{"bad port", "repository:localhost:x/a:pull", "bad port"},
		{"bad domain", "repository:a_b.c:1/x:pull", "bad character"},
		{"too long name", "repository:" + strings.Repeat("a", 256) + ":pull", "longer than 255"},
		{"not utf8", "repository:a\xff:pull", "not UTF-8"},
		{"control in other", "widget:a\x01b:x", "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("Parse(%q) error %q, want it to contain %q", tt.in, err, tt.wantSub)
			}
		})
	}
}

func TestParseAll(t *testing.T) {
	want := []Scope{
		{Type: "repository", Name: "a/b", Actions: []string{"pull"}},
		{Type: "repository", Name: "c/d", Actions: []string{"push", "pull"}},
	}
	forms := map[string][]string{
		"repeated":     {"repository:a/b:pull", "repository:c/d:push,pull"},
		"space joined": {"repository:a/b:pull repository:c/d:push,pull"},
		"mixed":        {"", "repository:a/b:pull  repository:c/d:push", "repository:c/d:pull", " "},
	}
	for name, in := range forms {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAll(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
	if got, err := ParseAll([]string{""}); err != nil || len(got) != 0 {
		t.Fatalf("empty scope: got %v, %v", got, err)
	}
	many := make([]string, MaxScopes+1)
	for i := range many {
		many[i] = "repository:r" + strings.Repeat("x", i) + ":pull"
	}
	if _, err := ParseAll(many); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many scopes: err = %v", err)
	}
}

func TestJSONNeverNull(t *testing.T) {
	b, err := json.Marshal([]Scope{{Type: "repository", Name: "a", Actions: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `[{"type":"repository","name":"a","actions":[]}]`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	b, _ = json.Marshal(Scope{Type: "repository", Class: "plugin", Name: "a", Actions: []string{"pull"}})
	if got, want := string(b), `{"type":"repository","class":"plugin","name":"a","actions":["pull"]}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, in := range []string{"repository(plugin):a/b:pull,push", "registry:catalog:*", "repository:localhost:5000/x:delete"} {
		s, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != in {
			t.Errorf("String() = %q, want %q", s.String(), in)
		}
	}
}

func FuzzParseAll(f *testing.F) {
	for _, s := range []string{
		"repository:a/b:pull", "repository(plugin):a:pull,push", "registry:catalog:*",
		"repository:localhost:5000/a:pull repository:c:push", "a:b", ":::", "repository:a:*,pull",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		scopes, err := ParseAll([]string{in})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, s := range scopes {
			if s.Actions == nil || len(s.Actions) == 0 {
				t.Fatalf("scope %+v has no actions", s)
			}
			// Re-parsing the printed form must give the same scope.
			again, err := Parse(s.String())
			if err != nil {
				t.Fatalf("re-parse %q: %v", s.String(), err)
			}
			if !reflect.DeepEqual(again, s) {
				t.Fatalf("round trip %q: %+v != %+v", s.String(), again, s)
			}
		}
	})
}
