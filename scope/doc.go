// Package scope implements the Docker registry token scope grammar: parsing
// the scope parameters a client sends to the token endpoint, and the resource
// and action types the issued token carries in its "access" claim.
//
// The grammar is the one of the distribution spec (docs/spec/auth/scope.md):
//
//	scope          := resourcescope [ ' ' resourcescope ]*
//	resourcescope  := resourcetype ":" resourcename ":" action [ ',' action ]*
//	resourcetype   := resourcetypevalue [ '(' resourcetypevalue ')' ]
//
// A resource name may itself contain one ':' (a registry host:port), so the
// type ends at the first ':' and the actions start after the last one.
//
// Usage:
//
//	scopes, err := scope.ParseAll(r.URL.Query()["scope"])
//	if err != nil {
//		// 400: err names the offending scope and what is wrong with it
//	}
//	for _, s := range scopes {
//		fmt.Println(s.Type, s.Name, s.Actions)
//	}
//
// Package scope imports nothing of this module and does no I/O.
package scope
