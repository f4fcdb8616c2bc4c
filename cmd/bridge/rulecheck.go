package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/registry-bridge/bridge/groups"
)

// allowOverlapFlag is the `config check` flag that accepts every squattable
// rule; a rule's own allow_overlap: true accepts its findings only.
const allowOverlapFlag = "allow-overlapping-rules"

// reportRules prints groups.Lint's findings for `config check` and reports
// whether the check fails: it does when a rule can be squatted and neither
// allow_overlap on one of the two rules nor --allow-overlapping-rules
// accepts it. Redundant rules are warnings. See docs/access-rules.md.
func reportRules(w io.Writer, path string, rules []groups.Rule, allowOverlap bool) (failed bool) {
	for _, f := range groups.Lint(rules) {
		switch {
		case f.Kind == groups.Squat && !f.Accepted && !allowOverlap:
			fmt.Fprintf(w, "%s: error: %s\n", path, f)
			failed = true
		case f.Kind == groups.Squat:
			fmt.Fprintf(w, "%s: warning (accepted): %s\n", path, f)
		default:
			fmt.Fprintf(w, "%s: warning: %s\n", path, f)
		}
	}
	if failed {
		fmt.Fprintf(w, "%s: a username is not a namespace: put personal namespaces under a prefix no other rule uses "+
			"(users/${username}/**), or accept a deliberate overlap with allow_overlap: true on either rule or --%s (docs/access-rules.md)\n",
			path, allowOverlapFlag)
	}
	return failed
}

// logRules logs groups.Lint's findings as warnings, for `serve` at start
// and at every reload: a running bridge keeps serving the rules it was
// given, which `config check` would refuse.
func logRules(log *slog.Logger, rules []groups.Rule) {
	for _, f := range groups.Lint(rules) {
		if f.Kind == groups.Squat && f.Accepted {
			continue
		}
		msg := "access rule adds nothing"
		if f.Kind == groups.Squat {
			msg = "access rule can be squatted by a username; serving it anyway (bridge config check refuses it; see docs/access-rules.md)"
		}
		log.Warn(msg, "rule", f.Rule, "other", f.Other, "example_username", f.Username,
			"example_repository", f.Repository, "finding", f.Message)
	}
}
