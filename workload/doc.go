// Package workload verifies the OIDC tokens CI jobs and Kubernetes pods
// carry (GitHub Actions, GitLab CI, projected service-account tokens) and
// maps them to a username and groups, so that they log in to the registry
// with no stored secret. See docs/workloads.md.
//
// The configuration (`workloads:` in the bridge's file) follows
// Kubernetes' structured authentication configuration: per issuer its
// URL, audiences, claim validation rules, claim mappings and user
// validation rules, the last three as CEL expressions compiled and
// type-checked when the file is loaded, each evaluation bounded by
// CostLimit.
//
// Verify checks, in order: the issuer (iss, exactly one of the configured
// URLs; its discovery document is read lazily, once, with a timeout, so an
// issuer that is down fails only its own tokens), the signature (an
// algorithm of the issuer's allow-list — never none or HMAC — and a key of
// that issuer's JWKS; an unknown kid refetches the keys at most once per
// minKeyRefetch), exp, nbf and iat with Leeway, max_token_age, the
// audience, the claim rules, the mappings (the username always starts
// with the issuer's prefix, a namespace no person or robot can enter; see
// accounts.Workload), the user rules, the ownership rule
// (accounts.AdmitWorkload) and, for reuse one_shot, the jti marker in the
// store. A verified token is kept in memory, by its SHA-256, until its exp:
// the next request with it costs a digest and a map read.
//
// Refresh mints the bridge's own refresh token for a verified workload (a
// digest-only password record with a short lifetime), so a build that
// outlives its CI token keeps pushing.
//
// Usage:
//
//	v, err := workload.New(cfg.Workloads, workload.Options{Accounts: acc, Locks: st, Log: log})
//	if workload.LooksLikeJWT(password) {
//		id, err := v.Verify(ctx, password) // *workload.Error says why not
//		// id.Username, id.Groups feed groups.Policy.Grant
//		rt, err := v.Refresh(ctx, id)     // with offline_token=true
//	}
package workload
