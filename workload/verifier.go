package workload

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/registry-bridge/bridge/accounts"
)

// Leeway is the clock skew allowed on exp, nbf and iat (RFC 7519 §4.1.4
// "some small leeway").
const Leeway = 30 * time.Second

// MaxTokenBytes bounds a token; real ones are 1–3 KB.
const MaxTokenBytes = 8 << 10

var stringSliceType = reflect.TypeFor[[]string]()

// Error is a refused token: Reason is a fixed label (metrics, audit),
// Issuer the issuer's name when known; the message says why in detail,
// for the log only.
type Error struct {
	Issuer string
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func refuse(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Identity is a verified workload.
type Identity struct {
	// Issuer is the issuer's configured name.
	Issuer string
	// Subject is the token's sub.
	Subject  string
	Username string
	Groups   []string
	// Expiry is the token's exp.
	Expiry time.Time
	// BasicUsername is the issuer's basic_username ("" accepts any).
	BasicUsername string

	entry *entry
}

// Principal is the account the workload acts as.
func (id Identity) Principal() accounts.Principal {
	return accounts.WorkloadPrincipal(id.Issuer, id.Username)
}

// Accounts is what the verifier needs of accounts: *accounts.Accounts.
type Accounts interface {
	// AdmitWorkload checks that the username is the workload's to use.
	AdmitWorkload(ctx context.Context, p accounts.Principal) error
	// MintWorkloadRefresh stores a refresh token for p and returns it.
	// maxLive caps p's live refresh tokens (accounts.ErrLimit past it).
	MintWorkloadRefresh(ctx context.Context, p accounts.Principal, groups []string, lifetime time.Duration, name string, maxLive int) (string, error)
}

// Locker marks one-shot tokens used; store.Store is one.
type Locker interface {
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// Options are a Verifier's live values.
type Options struct {
	Accounts Accounts
	// Locks records used one-shot tokens on every replica.
	Locks Locker
	// Client is the base HTTP client; each issuer gets its own copy with
	// its CA and Timeout.
	Client *http.Client
	// Timeout bounds each request to an issuer. Default 5s.
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Verifier checks workload tokens against the trusted issuers. Safe for
// concurrent use.
type Verifier struct {
	o      Options
	byURL  map[string]*issuer
	byName map[string]*issuer
	names  []string
	cache  *cache
	// maxRefresh is workloads.max_refresh_tokens_per_workload.
	maxRefresh int
}

type issuer struct {
	cfg    IssuerConfig
	rules  *issuerRules
	client *http.Client
	keys   *keySet
	// oidcConfig configures go-oidc's verifier, built per first use over
	// a recordingKeys so that a key outage is told from a bad signature.
	oidcConfig *oidc.Config
	timeout    time.Duration

	mu       sync.Mutex
	ready    bool
	inflight chan struct{}
	nextTry  time.Time
	lastErr  error
}

// New compiles c (see Config.Validate) and returns a Verifier. No issuer
// is contacted until a token of it arrives.
func New(c Config, o Options) (*Verifier, error) {
	c.SetDefaults()
	rules, err := compile(&c, "workloads")
	if err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{o: o, byURL: map[string]*issuer{}, byName: map[string]*issuer{}, cache: newCache(c.CacheSize, o.Now),
		maxRefresh: c.MaxRefreshTokensPerWorkload}
	for i, cfg := range c.Issuers {
		client, err := newClient(o.Client, cfg.CertificateAuthorityFile, o.Timeout)
		if err != nil {
			return nil, fmt.Errorf("workloads.issuers[%d].certificate_authority_file: %w", i, err)
		}
		algs := make([]jose.SignatureAlgorithm, len(cfg.Algorithms))
		for j, a := range cfg.Algorithms {
			algs[j] = jose.SignatureAlgorithm(a)
		}
		is := &issuer{cfg: cfg, rules: rules[i], client: client, timeout: o.Timeout,
			keys: &keySet{client: client, algs: algs, now: o.Now, timeout: o.Timeout}}
		is.oidcConfig = &oidc.Config{
			SupportedSigningAlgs: cfg.Algorithms,
			SkipClientIDCheck:    true, // several audiences: checked below
			SkipExpiryCheck:      true, // with Leeway and clear reasons: below
			Now:                  o.Now,
		}
		v.byURL[cfg.URL] = is
		v.byName[cfg.Name] = is
		v.names = append(v.names, cfg.Name)
	}
	return v, nil
}

// LooksLikeJWT reports, cheaply, whether s has the shape of a compact
// JWS: "eyJ" (a base64url JSON object) and exactly two dots. App
// passwords ("rbp_…") never do.
func LooksLikeJWT(s string) bool {
	return len(s) > 3 && s[0] == 'e' && s[1] == 'y' && s[2] == 'J' && strings.Count(s, ".") == 2
}

// digest is SHA-256 of s without copying s to the heap for tokens of the
// usual size: this is on the token path of every cached workload token.
func digest(s string) [sha256.Size]byte {
	var buf [4096]byte
	return sha256.Sum256(append(buf[:0], s...))
}

// Verify checks raw and returns the workload it proves, or an *Error.
// A token verified before is answered from memory until its exp, or
// until it is older than the issuer's max_token_age (see cacheUntil).
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if len(raw) > MaxTokenBytes {
		return Identity{}, refuse(ReasonMalformed, "token longer than %d bytes", MaxTokenBytes)
	}
	key := digest(raw)
	now := v.o.Now()
	if e := v.cache.get(key, now); e != nil {
		if e.oneShot {
			return Identity{}, &Error{Issuer: e.id.Issuer, Reason: ReasonReplayed, Err: errors.New("one-shot token presented again")}
		}
		id := e.id
		id.entry = e
		return id, nil
	}
	id, claims, err := v.verify(ctx, raw, now, nil)
	if err != nil {
		return Identity{}, err
	}
	is := v.byName[id.Issuer]
	e := &entry{id: id, key: key, oneShot: is.cfg.Reuse == ReuseOneShot}
	if e.oneShot {
		release, err := v.markUsed(ctx, is, claims, now, id.Expiry)
		if err != nil {
			return Identity{}, err
		}
		e.release = release
	}
	v.cache.put(key, e, cacheUntil(claims, id.Expiry, is.cfg.MaxTokenAge))
	id.entry = e
	return id, nil
}

// cacheUntil is when a verified token stops being answered from memory:
// the first instant checkTimes would refuse it, that is exp + Leeway or,
// with max_token_age, just past iat + max_token_age + Leeway, whichever
// comes first. A cached token is refused exactly when a fresh
// verification (another replica) would be.
func cacheUntil(claims map[string]any, exp time.Time, maxAge time.Duration) time.Time {
	until := exp.Add(Leeway)
	if maxAge > 0 {
		if iat, ok, _ := numericDate(claims, "iat"); ok {
			until = minTime(until, iat.Add(maxAge+Leeway+time.Nanosecond))
		}
	}
	return until
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ExplainClaims runs issuer name's rules over claims, with no signature
// or time checks: for `bridge policy explain --claims`.
func ExplainClaims(c Config, name string, claims map[string]any) (Identity, []Step, error) {
	c.SetDefaults()
	rules, err := compile(&c, "workloads")
	if err != nil {
		return Identity{}, nil, err
	}
	for i, is := range c.Issuers {
		if is.Name != name {
			continue
		}
		var steps []Step
		if !audienceOK(claims["aud"], is.Audiences) {
			steps = append(steps, Step{What: "audience", Detail: strings.Join(is.Audiences, ", "), Result: fmt.Sprintf("aud %v is none of them", claims["aud"])})
		} else {
			steps = append(steps, Step{What: "audience", Detail: strings.Join(is.Audiences, ", "), OK: true, Result: fmt.Sprint(claims["aud"])})
		}
		username, gs, rerr := rules[i].evaluate(claims, &steps)
		sub, _ := claims["sub"].(string)
		id := Identity{Issuer: name, Subject: sub, Username: username, Groups: gs}
		if rerr != nil {
			rerr.Issuer = name
			return id, steps, rerr
		}
		return id, steps, nil
	}
	return Identity{}, nil, fmt.Errorf("no issuer named %q in workloads.issuers", name)
}

func audienceOK(aud any, want []string) bool {
	got, err := stringsOf(aud)
	if err != nil {
		return false
	}
	for _, a := range got {
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}

// verify does the full check, uncached.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time, steps *[]Step) (Identity, map[string]any, *Error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return Identity{}, nil, refuse(ReasonMalformed, "%v", err)
	}
	is, ok := v.byURL[iss]
	if !ok {
		return Identity{}, nil, refuse(ReasonUnknownIssuer, "no trusted issuer %q", truncate(iss, 100))
	}
	fail := func(e *Error) (Identity, map[string]any, *Error) {
		e.Issuer = is.cfg.Name
		return Identity{}, nil, e
	}
	if err := is.discover(ctx); err != nil {
		return fail(refuse(ReasonUnavailable, "%v", err))
	}
	// go-oidc wraps the key set's error with %v, so whether the keys could
	// not be read is learnt from the key set itself.
	keys := &recordingKeys{k: is.keys}
	tok, err := oidc.NewVerifier(is.cfg.URL, keys, is.oidcConfig).Verify(ctx, raw)
	switch {
	case err != nil && (errors.Is(err, ErrUnavailable) || errors.Is(keys.err, ErrUnavailable)):
		return fail(refuse(ReasonUnavailable, "%v", err))
	case err != nil:
		return fail(refuse(ReasonSignature, "%v", err))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return fail(refuse(ReasonMalformed, "claims: %v", err))
	}
	if err := checkTimes(claims, now, is.cfg.MaxTokenAge); err != nil {
		return fail(err)
	}
	if !audienceOK(claims["aud"], is.cfg.Audiences) {
		return fail(refuse(ReasonAudience, "aud %v is none of %v", truncate(fmt.Sprint(claims["aud"]), 200), is.cfg.Audiences))
	}
	username, gs, rerr := is.rules.evaluate(claims, steps)
	if rerr != nil {
		return fail(rerr)
	}
	id := Identity{Issuer: is.cfg.Name, Subject: tok.Subject, Username: username, Groups: gs,
		Expiry: tok.Expiry, BasicUsername: is.cfg.BasicUsername}
	if v.o.Accounts != nil {
		err := v.o.Accounts.AdmitWorkload(ctx, id.Principal())
		switch {
		case errors.Is(err, accounts.ErrUsernameTaken), errors.Is(err, accounts.ErrBadUsername):
			return fail(refuse(ReasonUsernameTaken, "%v", err))
		case err != nil:
			return fail(refuse(ReasonStore, "%v", err))
		}
	}
	return id, claims, nil
}

// unverifiedIssuer reads iss from the payload, only to pick the issuer
// whose keys then verify the token.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("payload: %v", err)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("payload: %v", err)
	}
	if c.Iss == "" {
		return "", errors.New("no iss claim")
	}
	return c.Iss, nil
}

func numericDate(claims map[string]any, name string) (time.Time, bool, *Error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false, refuse(ReasonMalformed, "%s is not a number", name)
	}
	return time.Unix(int64(f), 0), true, nil
}

// checkTimes applies exp (required), nbf, iat and the maximum age, each
// with Leeway.
func checkTimes(claims map[string]any, now time.Time, maxAge time.Duration) *Error {
	exp, ok, err := numericDate(claims, "exp")
	switch {
	case err != nil:
		return err
	case !ok:
		return refuse(ReasonMalformed, "no exp claim")
	case !now.Before(exp.Add(Leeway)):
		return refuse(ReasonExpired, "expired at %s", exp.UTC().Format(time.RFC3339))
	}
	nbf, ok, err := numericDate(claims, "nbf")
	switch {
	case err != nil:
		return err
	case ok && now.Add(Leeway).Before(nbf):
		return refuse(ReasonNotYetValid, "not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	iat, ok, err := numericDate(claims, "iat")
	switch {
	case err != nil:
		return err
	case ok && now.Add(Leeway).Before(iat):
		return refuse(ReasonNotYetValid, "issued in the future, at %s", iat.UTC().Format(time.RFC3339))
	case maxAge > 0 && !ok:
		return refuse(ReasonMalformed, "no iat claim, and max_token_age is set")
	case maxAge > 0 && now.Sub(iat) > maxAge+Leeway:
		return refuse(ReasonTooOld, "issued at %s, longer ago than max_token_age %v", iat.UTC().Format(time.RFC3339), maxAge)
	}
	return nil
}

// markUsed records a one-shot token's jti on every replica until the
// token's exp; a second use fails. It returns what removes the marker
// again, for Release.
func (v *Verifier) markUsed(ctx context.Context, is *issuer, claims map[string]any, now, exp time.Time) (func(), *Error) {
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return nil, &Error{Issuer: is.cfg.Name, Reason: ReasonMalformed, Err: errors.New("reuse one_shot needs a jti claim")}
	}
	if v.o.Locks == nil {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(jti))
	ttl := max(exp.Add(Leeway).Sub(now), time.Millisecond)
	unlock, ok, err := v.o.Locks.TryLock(ctx, "workload-jti:"+is.cfg.Name+":"+hex.EncodeToString(sum[:16]), ttl)
	switch {
	case err != nil:
		return nil, &Error{Issuer: is.cfg.Name, Reason: ReasonStore, Err: fmt.Errorf("mark jti used: %w", err)}
	case !ok:
		return nil, &Error{Issuer: is.cfg.Name, Reason: ReasonReplayed, Err: fmt.Errorf("jti %s was used already", truncate(jti, 64))}
	}
	// The lock is the used-marker and expires with the token; only
	// Release removes it earlier.
	return unlock, nil
}

// Release undoes the use of id's one-shot token when the request it came
// with then failed on the bridge's side (a 5xx) and nothing was handed
// out: its used-marker is removed and it leaves the cache, so the
// client's retry, on any replica, verifies it afresh. It does nothing for
// other tokens, or after a refresh token was minted for it. If the store
// cannot be reached the marker stays until the token's exp.
func (v *Verifier) Release(id Identity) {
	e := id.entry
	if e == nil || !e.oneShot {
		return
	}
	e.mu.Lock()
	release := e.release
	if e.refresh != "" {
		release = nil
	}
	e.release = nil
	e.mu.Unlock()
	if release == nil {
		return
	}
	v.cache.remove(e.key, e)
	release()
}

// discover reads the issuer's discovery document once; concurrent
// callers share the read, and after a failure tokens of this issuer fail
// at once until discoveryRetry has passed. Other issuers are not held up.
func (is *issuer) discover(ctx context.Context) error {
	for {
		is.mu.Lock()
		if is.ready {
			is.mu.Unlock()
			return nil
		}
		if ch := is.inflight; ch != nil {
			is.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
			}
		}
		if is.keys.now().Before(is.nextTry) {
			err := is.lastErr
			is.mu.Unlock()
			return err
		}
		ch := make(chan struct{})
		is.inflight = ch
		is.mu.Unlock()

		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), is.timeout)
		var d discovery
		err := getJSON(fctx, is.client, discoveryURL(&is.cfg), &d)
		cancel()
		switch {
		case err != nil:
		case d.Issuer != is.cfg.URL:
			err = fmt.Errorf("the discovery document names issuer %q, not %q", truncate(d.Issuer, 100), is.cfg.URL)
		case checkURL(d.JWKSURI) != nil:
			err = fmt.Errorf("jwks_uri: %v", checkURL(d.JWKSURI))
		}
		is.mu.Lock()
		is.inflight = nil
		close(ch)
		if err != nil {
			is.lastErr = fmt.Errorf("%w: discovery: %v", ErrUnavailable, err)
			is.nextTry = is.keys.now().Add(discoveryRetry)
			is.mu.Unlock()
			return is.lastErr
		}
		is.keys.mu.Lock()
		is.keys.url = d.JWKSURI
		is.keys.mu.Unlock()
		is.ready = true
		is.mu.Unlock()
		return nil
	}
}

// Refresh returns the bridge's own refresh token for id, minting it on
// the first call for the token id came from (later calls with the same
// token get the same refresh token, so retries do not pile up records).
// A workload at max_refresh_tokens_per_workload gets accounts.ErrLimit.
func (v *Verifier) Refresh(ctx context.Context, id Identity) (string, error) {
	if v.o.Accounts == nil {
		return "", errors.New("workload: no accounts to mint refresh tokens")
	}
	is := v.byName[id.Issuer]
	if is == nil {
		return "", fmt.Errorf("workload: unknown issuer %q", id.Issuer)
	}
	e := id.entry
	if e != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.refresh != "" {
			return e.refresh, nil
		}
	}
	name := truncate("workload "+id.Issuer+" "+id.Subject, 100)
	rt, err := v.o.Accounts.MintWorkloadRefresh(ctx, id.Principal(), id.Groups, is.cfg.RefreshTokenLifetime, name, v.maxRefresh)
	if err != nil {
		return "", err
	}
	if e != nil {
		e.refresh = rt
	}
	return rt, nil
}

// Trusts reports whether name is a configured issuer.
func (v *Verifier) Trusts(name string) bool {
	_, ok := v.byName[name]
	return ok
}

// Issuers returns the configured issuers' names, in order.
func (v *Verifier) Issuers() []string {
	return append([]string(nil), v.names...)
}

// recordingKeys is an oidc.KeySet that remembers its last error.
type recordingKeys struct {
	k   *keySet
	err error
}

func (r *recordingKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	p, err := r.k.VerifySignature(ctx, raw)
	r.err = err
	return p, err
}
