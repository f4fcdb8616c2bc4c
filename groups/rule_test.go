package groups

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	rules := []Rule{
		{Groups: []string{"ok"}, Repositories: []string{"team/**"}, Actions: []string{"pull"}},                           // 0: fine
		{Repositories: []string{"x"}, Actions: []string{"pull"}},                                                         // 1: no subject
		{Groups: []string{"g"}, Actions: []string{"pull"}},                                                               // 2: no repositories
		{Groups: []string{"g"}, Repositories: []string{"a//b", "ok/**", "a**"}, Actions: []string{"pul", "push", "all"}}, // 3
		{Users: []string{"*"}, Repositories: []string{"${group}/**"}, Actions: []string{"pull"}},                         // 4: ${group} without groups
		{Anonymous: true, Repositories: []string{"${username}/**"}, Actions: []string{"pull"}},                           // 5: ${username} anonymous-only
		{Groups: []string{"g", ""}, Users: []string{""}, Repositories: []string{"${team}/x"}, Actions: []string{"pull"}}, // 6
		{Groups: []string{"g"}, Repositories: []string{"x"}},                                                             // 7: no actions
		{Groups: []string{"auditors"}, Catalog: true},                                                                    // 8: catalog-only is fine
		{Anonymous: true, Users: []string{"*"}, Repositories: []string{"${username}/**"}, Actions: []string{"pull"}},     // 9: fine
	}
	err := Validate(rules)
	if err == nil {
		t.Fatal("Validate = nil, want errors")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "access[1]" {
		t.Errorf("errors.As first FieldError = %+v, want path access[1]", fe)
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`access[1]: no subject: set groups, users or anonymous: true`,
		`access[2].repositories: no repository patterns (a rule without any must set catalog: true)`,
		`access[3].actions[0]: unknown action "pul" (want pull, push, delete or *)`,
		`access[3].actions[2]: unknown action "all" (want pull, push, delete or *)`,
		`access[3].repositories[0]: pattern "a//b": empty path segment (a leading, trailing or doubled '/')`,
		`access[3].repositories[2]: pattern "a**": segment "a**": ** must be a whole path segment`,
		`access[4].repositories[0]: pattern "${group}/**" uses ${group} but the rule has no groups`,
		`access[5].repositories[0]: pattern "${username}/**" uses ${username} but the rule applies only to anonymous requests`,
		`access[6].groups[1]: empty group name`,
		`access[6].users[0]: empty username`,
		`access[6].repositories[0]: pattern "${team}/x": unknown variable ${team} (want ${username} or ${group})`,
		`access[7].actions: no actions (want pull, push, delete or *)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Validate errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := Compile(rules); err == nil || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "access[1]:") {
		t.Errorf("Compile error = %v", err)
	}
}

func TestValidateAcceptsContractExample(t *testing.T) {
	if err := Validate(contractRules()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := Validate(nil); err != nil {
		t.Fatalf("Validate(nil): %v", err)
	}
}

func TestRuleJSON(t *testing.T) {
	in := `{"groups":["team-*"],"users":["alice"],"anonymous":true,"repositories":["${group}/**"],"actions":["pull","*"],"catalog":true}`
	var r Rule
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	want := Rule{Groups: []string{"team-*"}, Users: []string{"alice"}, Anonymous: true,
		Repositories: []string{"${group}/**"}, Actions: []string{"pull", "*"}, Catalog: true}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("decoded %+v, want %+v", r, want)
	}
	out, err := json.Marshal(r)
	if err != nil || string(out) != in {
		t.Errorf("encoded %s, %v; want %s", out, err, in)
	}
}

func TestRuleYAMLKeys(t *testing.T) {
	want := map[string]string{
		"Groups": "groups,omitempty", "Users": "users,omitempty", "Anonymous": "anonymous,omitempty",
		"Repositories": "repositories", "Actions": "actions", "Catalog": "catalog,omitempty",
		"AllowOverlap": "allow_overlap,omitempty",
	}
	typ := reflect.TypeFor[Rule]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if got := f.Tag.Get("yaml"); got != want[f.Name] {
			t.Errorf("%s: yaml tag %q, want %q", f.Name, got, want[f.Name])
		}
	}
}
