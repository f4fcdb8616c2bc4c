package workload

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"github.com/registry-bridge/bridge/accounts"
)

// CostLimit bounds the work of evaluating one expression (CEL's runtime
// cost units; a claim lookup and a comparison cost a few). An expression
// that goes past it fails, and so does the token.
const CostLimit = 100_000

// Bounds on what a mapping may produce.
const (
	maxGroups      = 256
	maxGroupLength = 255
)

// issuerRules are an issuer's compiled expressions.
type issuerRules struct {
	claimRules []claimRule
	username   mapping
	groups     *mapping // nil: no groups
	userRules  []userRule
}

type claimRule struct {
	claim, value string      // claim + required_value form
	prog         cel.Program // expression form
	text, msg    string      // for logs and explain
}

type userRule struct {
	prog      cel.Program
	text, msg string
}

type mapping struct {
	claim  string
	prog   cel.Program
	prefix string
	text   string
}

// newCELEnv is the CEL environment of every expression: `claims` (the
// token's payload) and `user` (the mapped username and groups), with the
// string extensions and optional field selection (claims.?x) Kubernetes
// offers.
func newCELEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("user", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		cel.OptionalTypes(),
	)
}

// compileExpr type-checks text and makes a program whose result must be
// one of want (or dyn, checked at run time).
func compileExpr(env *cel.Env, text, key string, want ...*cel.Type) (cel.Program, error) {
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s: %s", key, strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	out := ast.OutputType()
	ok := out.IsExactType(cel.DynType)
	for _, w := range want {
		ok = ok || out.IsExactType(w)
	}
	if !ok {
		names := make([]string, len(want))
		for i, w := range want {
			names[i] = w.String()
		}
		return nil, fmt.Errorf("%s: the expression yields %s; want %s", key, out, strings.Join(names, " or "))
	}
	prog, err := env.Program(ast, cel.CostLimit(CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", key, err)
	}
	return prog, nil
}

func compileRules(env *cel.Env, is *IssuerConfig, p string) (*issuerRules, error) {
	var errs []error
	r := &issuerRules{}
	for j, cr := range is.ClaimValidationRules {
		key := fmt.Sprintf("%s.claim_validation_rules[%d]", p, j)
		switch {
		case cr.Expression != "" && (cr.Claim != "" || cr.RequiredValue != ""):
			errs = append(errs, fmt.Errorf("%s: set either expression or claim and required_value", key))
		case cr.Expression != "":
			prog, err := compileExpr(env, cr.Expression, key+".expression", cel.BoolType)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			r.claimRules = append(r.claimRules, claimRule{prog: prog, text: cr.Expression, msg: cr.Message})
		case cr.Claim != "":
			r.claimRules = append(r.claimRules, claimRule{claim: cr.Claim, value: cr.RequiredValue, msg: cr.Message,
				text: fmt.Sprintf("claims[%q] == %q", cr.Claim, cr.RequiredValue)})
		default:
			errs = append(errs, fmt.Errorf("%s: set expression, or claim and required_value", key))
		}
	}
	um := is.ClaimMappings.Username
	uk := p + ".claim_mappings.username"
	if um.Prefix == "" {
		errs = append(errs, fmt.Errorf("%s.prefix: required: it is this issuer's namespace of usernames (e.g. \"gha-\"), kept apart from people and robots", uk))
	} else if err := accounts.ValidUsername(um.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("%s.prefix: %v", uk, err))
	}
	if m, err := compileMapping(env, um, uk, true); err != nil {
		errs = append(errs, err)
	} else {
		r.username = *m
	}
	if gm := is.ClaimMappings.Groups; gm != (PrefixedClaim{}) {
		m, err := compileMapping(env, gm, p+".claim_mappings.groups", false)
		if err != nil {
			errs = append(errs, err)
		}
		r.groups = m
	}
	for j, ur := range is.UserValidationRules {
		key := fmt.Sprintf("%s.user_validation_rules[%d].expression", p, j)
		if ur.Expression == "" {
			errs = append(errs, fmt.Errorf("%s: required", key))
			continue
		}
		prog, err := compileExpr(env, ur.Expression, key, cel.BoolType)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.userRules = append(r.userRules, userRule{prog: prog, text: ur.Expression, msg: ur.Message})
	}
	return r, errors.Join(errs...)
}

func compileMapping(env *cel.Env, pc PrefixedClaim, key string, username bool) (*mapping, error) {
	m := &mapping{claim: pc.Claim, prefix: pc.Prefix, text: pc.Expression}
	switch {
	case pc.Claim != "" && pc.Expression != "":
		return nil, fmt.Errorf("%s: set either claim or expression", key)
	case pc.Claim != "":
		m.text = fmt.Sprintf("claims[%q]", pc.Claim)
	case pc.Expression == "":
		return nil, fmt.Errorf("%s: set claim or expression", key)
	case username:
		prog, err := compileExpr(env, pc.Expression, key+".expression", cel.StringType)
		if err != nil {
			return nil, err
		}
		m.prog = prog
	default:
		prog, err := compileExpr(env, pc.Expression, key+".expression", cel.StringType, cel.ListType(cel.StringType))
		if err != nil {
			return nil, err
		}
		m.prog = prog
	}
	return m, nil
}

// Refusal reasons; each is also a metrics label.
const (
	ReasonMalformed     = "malformed"
	ReasonUnknownIssuer = "unknown_issuer"
	ReasonUnavailable   = "issuer_unavailable"
	ReasonSignature     = "signature"
	ReasonAudience      = "audience"
	ReasonExpired       = "expired"
	ReasonNotYetValid   = "not_yet_valid"
	ReasonTooOld        = "too_old"
	ReasonClaimRule     = "claim_rule"
	ReasonMapping       = "mapping"
	ReasonUserRule      = "user_rule"
	ReasonUsernameTaken = "username_taken"
	ReasonReplayed      = "replayed"
	ReasonStore         = "store_unavailable"
)

// Step is one line of an evaluation, for `bridge policy explain`.
type Step struct {
	What   string // "claim rule", "username", "groups", "user rule"
	Detail string // the rule or expression
	OK     bool
	Result string // the value, or why it failed
}

// evaluate runs the claim rules, the mappings and the user rules over
// claims. It returns the username and groups, or a refusal, and records
// each step in steps when steps is not nil.
func (r *issuerRules) evaluate(claims map[string]any, steps *[]Step) (string, []string, *Error) {
	note := func(s Step) {
		if steps != nil {
			*steps = append(*steps, s)
		}
	}
	act := map[string]any{"claims": claims}
	for _, cr := range r.claimRules {
		ok, why := cr.holds(claims, act)
		note(Step{What: "claim rule", Detail: cr.text, OK: ok, Result: why})
		if !ok {
			return "", nil, refuse(ReasonClaimRule, "claim rule %s failed: %s", cr.label(), why)
		}
	}
	name, err := r.username.value(claims, act)
	if err == nil && len(name) != 1 {
		err = errors.New("the username is not a string")
	}
	if err != nil {
		note(Step{What: "username", Detail: r.username.text, Result: err.Error()})
		return "", nil, refuse(ReasonMapping, "username mapping %s: %v", r.username.text, err)
	}
	username := r.username.prefix + name[0]
	if err := accounts.ValidUsername(username); err != nil || name[0] == "" {
		if err == nil {
			err = errors.New("empty after the prefix")
		}
		note(Step{What: "username", Detail: r.username.text, Result: fmt.Sprintf("%q: %v", username, err)})
		return "", nil, refuse(ReasonMapping, "username mapping %s yields %q: %v", r.username.text, truncate(username, 80), err)
	}
	note(Step{What: "username", Detail: r.username.text, OK: true, Result: username})
	var gs []string
	if r.groups != nil {
		vs, err := r.groups.value(claims, act)
		if err == nil && len(vs) > maxGroups {
			err = fmt.Errorf("%d groups, more than %d", len(vs), maxGroups)
		}
		if err != nil {
			note(Step{What: "groups", Detail: r.groups.text, Result: err.Error()})
			return "", nil, refuse(ReasonMapping, "groups mapping %s: %v", r.groups.text, err)
		}
		for _, g := range vs {
			if g == "" || len(g) > maxGroupLength {
				continue
			}
			gs = append(gs, r.groups.prefix+g)
		}
		note(Step{What: "groups", Detail: r.groups.text, OK: true, Result: "[" + strings.Join(gs, ", ") + "]"})
	}
	user := map[string]any{"username": username, "groups": gs}
	if gs == nil {
		user["groups"] = []string{}
	}
	uact := map[string]any{"claims": claims, "user": user}
	for _, ur := range r.userRules {
		ok, why := evalBool(ur.prog, uact)
		note(Step{What: "user rule", Detail: ur.text, OK: ok, Result: why})
		if !ok {
			label := ur.msg
			if label == "" {
				label = ur.text
			}
			return "", nil, refuse(ReasonUserRule, "user rule %q failed: %s", label, why)
		}
	}
	return username, gs, nil
}

func (cr claimRule) label() string {
	if cr.msg != "" {
		return fmt.Sprintf("%q", cr.msg)
	}
	return cr.text
}

func (cr claimRule) holds(claims, act map[string]any) (bool, string) {
	if cr.prog != nil {
		return evalBool(cr.prog, act)
	}
	v, ok := claims[cr.claim]
	if !ok {
		return false, "no claim " + cr.claim
	}
	s, ok := v.(string)
	if !ok {
		return false, fmt.Sprintf("claim %s is a %T, not a string", cr.claim, v)
	}
	if s != cr.value {
		return false, fmt.Sprintf("claim %s is %q", cr.claim, truncate(s, 80))
	}
	return true, "true"
}

func evalBool(prog cel.Program, act map[string]any) (bool, string) {
	out, _, err := prog.Eval(act)
	if err != nil {
		return false, "error: " + err.Error()
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Sprintf("yields %s, not a bool", out.Type())
	}
	return bool(b), fmt.Sprint(bool(b))
}

// value is the mapping's result as a list of strings (a string gives one).
func (m mapping) value(claims, act map[string]any) ([]string, error) {
	if m.prog == nil {
		v, ok := claims[m.claim]
		if !ok {
			return nil, fmt.Errorf("no claim %s", m.claim)
		}
		return stringsOf(v)
	}
	out, _, err := m.prog.Eval(act)
	if err != nil {
		return nil, err
	}
	return celStrings(out)
}

func stringsOf(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("a list holding a %T, not strings", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T, not a string or a list of strings", v)
}

func celStrings(v ref.Val) ([]string, error) {
	if s, ok := v.(types.String); ok {
		return []string{string(s)}, nil
	}
	native, err := v.ConvertToNative(stringSliceType)
	if err != nil {
		return nil, fmt.Errorf("yields %s, not a string or a list of strings", v.Type())
	}
	return native.([]string), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
