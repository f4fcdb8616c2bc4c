package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/internal/yamlconf"
	"github.com/registry-bridge/bridge/scope"
)

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func cmdPolicyExplain(args []string, stdout io.Writer) error {
	f := newFlags("policy explain")
	path := configFlag(f)
	user := f.String("user", "", "username (omit with --anonymous)")
	groupList := f.String("groups", "", "comma-separated groups")
	readOnly := f.Bool("read-only", false, "as a read-only password")
	anonymous := f.Bool("anonymous", false, "as a request without credentials")
	var scopes stringsFlag
	f.Var(&scopes, "scope", "a scope such as repository:team-a/app:pull,push (repeatable)")
	rest, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	// Scopes may also follow --scope as further arguments: --scope A B C.
	scopes = append(scopes, rest...)
	if len(scopes) == 0 {
		return fmt.Errorf("%w: policy explain needs --scope SCOPE", errUsage)
	}
	if (*user == "") != *anonymous {
		return fmt.Errorf("%w: policy explain needs --user U or --anonymous", errUsage)
	}
	requested, err := scope.ParseAll(scopes)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path, useAccess)
	if err != nil {
		return fmt.Errorf("%s: invalid configuration:\n%w", *path, err)
	}
	sub := groups.Subject{Username: *user, Groups: splitList(*groupList), ReadOnly: *readOnly, Anonymous: *anonymous}
	for _, d := range cfg.policy.Explain(sub, requested) {
		writeDecision(stdout, d)
	}
	return nil
}

// writeDecision prints one scope's outcome, e.g.
//
//	repository:team-a/app:pull,push → pull,push
//	  access[1] via group team-a: team-a/** [pull push]
func writeDecision(w io.Writer, d groups.Decision) {
	granted := strings.Join(d.Granted.Actions, ",")
	if granted == "" {
		granted = "(nothing)"
	}
	fmt.Fprintf(w, "%s → %s\n", d.Requested, granted)
	for _, m := range d.Matches {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if d.Reason != "" {
		fmt.Fprintf(w, "  denied: %s\n", d.Reason)
	}
}

// policyTests is a `bridge policy test` file: expectations about who gets
// which actions, checked against a configuration's access rules. See
// docs/access-rules.md.
type policyTests struct {
	Tests []policyCase `yaml:"tests"`
}

// policyCase is one subject asking for one or more scopes. A case gives
// either scope and actions, or expect with one entry per scope.
type policyCase struct {
	Name      string   `yaml:"name"`
	User      string   `yaml:"user"`
	Groups    []string `yaml:"groups"`
	Anonymous bool     `yaml:"anonymous"`
	ReadOnly  bool     `yaml:"read_only"`
	// Scope and Actions: one scope and exactly the actions it is granted
	// (an empty list for nothing).
	Scope   string    `yaml:"scope"`
	Actions *[]string `yaml:"actions"`
	// Expect lists several scopes with their actions.
	Expect []policyExpect `yaml:"expect"`
}

type policyExpect struct {
	Scope   string    `yaml:"scope"`
	Actions *[]string `yaml:"actions"`
}

// compiledCase is a case ready to run.
type compiledCase struct {
	name    string
	sub     groups.Subject
	scopes  []scope.Scope
	actions [][]string
}

// loadPolicyTests reads and checks a policy test file, reporting every
// problem at once with its key path.
func loadPolicyTests(path string) ([]compiledCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f policyTests
	if err := yamlconf.Decode(data, &f, os.LookupEnv); err != nil {
		return nil, err
	}
	var errs []error
	problem := func(p, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...)))
	}
	if len(f.Tests) == 0 {
		problem("tests", "no test cases")
	}
	out := make([]compiledCase, 0, len(f.Tests))
	for i, tc := range f.Tests {
		p := fmt.Sprintf("tests[%d]", i)
		cc := compiledCase{
			name: tc.Name,
			sub:  groups.Subject{Username: tc.User, Groups: tc.Groups, Anonymous: tc.Anonymous, ReadOnly: tc.ReadOnly},
		}
		if cc.name == "" {
			cc.name = p
		}
		switch {
		case tc.Anonymous && (tc.User != "" || len(tc.Groups) > 0):
			problem(p, "anonymous: true takes no user or groups")
		case !tc.Anonymous && tc.User == "":
			problem(p, "set user (or anonymous: true)")
		}
		expect := tc.Expect
		switch {
		case tc.Scope != "" && len(tc.Expect) > 0:
			problem(p, "set scope and actions, or expect, not both")
		case tc.Scope != "":
			expect = []policyExpect{{Scope: tc.Scope, Actions: tc.Actions}}
		case tc.Actions != nil:
			problem(p+".actions", "actions without scope")
		case len(tc.Expect) == 0:
			problem(p, "set scope and actions, or expect")
		}
		for j, e := range expect {
			ep := p
			if len(tc.Expect) > 0 {
				ep = fmt.Sprintf("%s.expect[%d]", p, j)
			}
			s, err := scope.Parse(e.Scope)
			if err != nil {
				problem(ep+".scope", "%v", err)
			}
			if e.Actions == nil {
				problem(ep+".actions", "required: the exact actions granted ([] for none)")
				continue
			}
			for k, a := range *e.Actions {
				if a != scope.ActionPull && a != scope.ActionPush && a != scope.ActionDelete && a != scope.ActionAll {
					problem(fmt.Sprintf("%s.actions[%d]", ep, k), "unknown action %q (want pull, push, delete or *)", a)
				}
			}
			cc.scopes = append(cc.scopes, s)
			cc.actions = append(cc.actions, *e.Actions)
		}
		out = append(out, cc)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func cmdPolicyTest(args []string, stdout io.Writer) error {
	f := newFlags("policy test")
	path := configFlag(f)
	files, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: policy test needs a test file", errUsage)
	}
	cfg, err := loadConfig(*path, useAccess)
	if err != nil {
		return fmt.Errorf("%s: invalid configuration:\n%w", *path, err)
	}
	failed := 0
	total := 0
	for _, file := range files {
		cases, err := loadPolicyTests(file)
		if err != nil {
			return fmt.Errorf("%s: invalid policy tests:\n%w", file, err)
		}
		for _, cc := range cases {
			total++
			if !runPolicyCase(stdout, cfg.policy, cc) {
				failed++
			}
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", total-failed, failed)
	if failed > 0 {
		return errSilent
	}
	return nil
}

// runPolicyCase runs one case and prints "ok NAME", or "FAIL NAME" with,
// for each scope that differs, what was wanted, what was granted and why.
func runPolicyCase(w io.Writer, pol *groups.Policy, cc compiledCase) bool {
	decisions := pol.Explain(cc.sub, cc.scopes)
	var diff strings.Builder
	for i, d := range decisions {
		if sameActions(d.Granted.Actions, cc.actions[i]) {
			continue
		}
		fmt.Fprintf(&diff, "  %s (%s)\n", d.Requested, describeSubject(cc.sub))
		fmt.Fprintf(&diff, "    want: %s\n", actionList(cc.actions[i]))
		fmt.Fprintf(&diff, "    got:  %s\n", actionList(d.Granted.Actions))
		for _, m := range d.Matches {
			fmt.Fprintf(&diff, "      granted by %s\n", m)
		}
		if d.Reason != "" {
			fmt.Fprintf(&diff, "      denied: %s\n", d.Reason)
		}
	}
	if diff.Len() == 0 {
		fmt.Fprintf(w, "ok   %s\n", cc.name)
		return true
	}
	fmt.Fprintf(w, "FAIL %s\n%s", cc.name, diff.String())
	return false
}

func sameActions(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func actionList(a []string) string {
	if len(a) == 0 {
		return "(nothing)"
	}
	return strings.Join(a, ",")
}

func describeSubject(s groups.Subject) string {
	var parts []string
	if s.Anonymous {
		parts = append(parts, "anonymous")
	} else {
		parts = append(parts, "user "+s.Username)
		if len(s.Groups) > 0 {
			parts = append(parts, "groups "+strings.Join(s.Groups, ","))
		} else {
			parts = append(parts, "no groups")
		}
	}
	if s.ReadOnly {
		parts = append(parts, "read-only")
	}
	return strings.Join(parts, ", ")
}
