// Package groups is the bridge's access policy: the configuration file's
// `access:` rules, compiled once into a Policy that grants, for a token
// request, the subset of the requested scopes the subject may have.
//
// A Policy takes the union of every rule that applies to the subject and
// intersects it with the request: it never grants an action that was not
// requested, and a scope it grants nothing on comes back with an empty
// action list, as the token protocol wants (a partial grant is not an
// error). See Rule for when a rule applies and for the pattern language.
//
// Usage:
//
//	pol, err := groups.Compile(cfg.Access) // or groups.Validate(cfg.Access) for `config check`
//	if err != nil {
//		return err // every problem, each with its key path: "access[2].repositories[0]: ..."
//	}
//	sub := groups.Subject{Username: "alice", Groups: []string{"team-a"}}
//	req, _ := scope.ParseAll([]string{"repository:team-a/app:pull,push registry:catalog:*"})
//	access := pol.Grant(sub, req) // [repository:team-a/app:pull,push registry:catalog:]
//
//	for _, d := range pol.Explain(sub, req) { // for `bridge policy explain`
//		fmt.Println(d.Granted, d.Matches, d.Reason)
//	}
//	allowed := pol.Summary(sub) // for the web page: [{repository team-a/** [pull push]} ...]
//
//	for _, f := range groups.Lint(cfg.Access) { // for `config check` and reloads
//		fmt.Println(f) // e.g. a ${username} pattern a person can turn into a team's namespace
//	}
//
// Package groups does no I/O and imports nothing of this module but scope.
package groups
