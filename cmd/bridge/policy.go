package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/registry-bridge/bridge/groups"
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
