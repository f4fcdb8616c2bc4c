package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/scope"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/tokens"
	"github.com/registry-bridge/bridge/workload"
)

// TokenIssuer signs registry tokens; *tokens.Issuer is one.
type TokenIssuer interface {
	Issue(subject string, access []scope.Scope) (tokens.Token, error)
}

// PasswordLookup is what the token endpoint needs of the store. The
// server passes a caching store here; TouchPassword must not block.
type PasswordLookup interface {
	GetPassword(ctx context.Context, id string) (store.Password, error)
	TouchPassword(ctx context.Context, id string, t time.Time) error
}

// tokenResponse is the body of a successful token request. Both token and
// access_token are sent, identical: clients disagree on which they read
// (the distribution token spec allows both; containers/image reads
// token first, Docker, containerd, go-containerregistry, regclient and oras
// read access_token first).
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// errUnauthorized is the one answer for every credential failure.
var errUnauthorized = &httpError{status: http.StatusUnauthorized, code: "invalid_grant",
	public: "invalid username or app password"}

// tokenEvent is what one token request did: the audit event and the
// metrics are written from it, once, by handleToken.
type tokenEvent struct {
	start time.Time
	req   tokenRequest
	// rec is the password that authenticated the request, when one did
	// (hasRec): a value, so the hot path allocates no record.
	rec     store.Password
	hasRec  bool
	granted []scope.Scope
	// denied explains requested actions that were not granted (policy or
	// read-only), or why the request was refused as a whole.
	denied []string
	// reason is the metrics label of a refusal; "" when all was granted.
	reason string
	// workload is the verified workload, when a workload token was the
	// password; workloadIssuer and workloadReason say why one was refused.
	workload                       *workload.Identity
	workloadIssuer, workloadReason string
	// refreshWithheld says why a workload asking for a refresh token got
	// none (the workload's cap on live refresh tokens).
	refreshWithheld string
}

// handleToken is the token endpoint; see docs/protocol.md.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ev := tokenEvent{start: s.now()}
	herr := s.token(w, r, &ev)
	s.releaseWorkload(&ev, herr)
	if herr != nil {
		if herr.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		writeError(w, herr, s.realm)
	}
	s.audit(r, &ev, herr)
}

// token answers one token request, recording what it did in ev.
func (s *Server) token(w http.ResponseWriter, r *http.Request, ev *tokenEvent) *httpError {
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes+1))
		if err != nil {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", public: "form too large", cause: err}
		}
	}
	req, herr := parseTokenRequest(r.Method, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body)
	ev.req = req
	if herr != nil {
		return herr
	}
	if req.grant == grantDevice {
		return s.deviceToken(w, r, req, ev) // device.go
	}
	if req.service != "" && req.service != s.service {
		ev.reason = "wrong_service"
		return badRequest("unknown service %s; this token server serves %q: set the registry's auth.token.service to %q (or the bridge's token.service to the registry's)",
			quoteTrunc(req.service), s.service, s.service)
	}

	subject := groups.Subject{Anonymous: true}
	var cred passwords.Credential
	switch {
	case req.grant == grantAnonymous:
	case s.isWorkloadToken(req):
		id, herr := s.authenticateWorkload(r.Context(), req, ev)
		if herr != nil {
			return herr
		}
		subject = groups.Subject{Username: id.Username, Groups: id.Groups}
	default:
		p, c, herr := s.authenticate(r.Context(), req)
		if herr != nil {
			if herr.status >= 500 {
				ev.reason = "store_unavailable"
			}
			return herr
		}
		ev.rec, ev.hasRec, cred = p, true, c
		if herr := s.checkWorkloadRecord(p, ev); herr != nil {
			return herr
		}
		gs, herr := s.currentGroups(r.Context(), p, ev)
		if herr != nil {
			return herr
		}
		subject = groups.Subject{Username: p.Username, Groups: gs, ReadOnly: p.ReadOnly}
	}

	policy := s.policy()
	granted := policy.Grant(subject, req.scopes)
	access := make([]scope.Scope, 0, len(granted))
	var short []scope.Scope
	for i, g := range granted {
		if len(g.Actions) > 0 {
			access = append(access, g)
		}
		if len(g.Actions) < len(req.scopes[i].Actions) && len(short) < maxExplained {
			short = append(short, req.scopes[i])
		}
	}
	if len(short) > 0 {
		// Rare next to full grants, so the reasons are worked out only
		// then, for a bounded number of scopes: the same words as
		// `bridge policy explain`.
		s.explainDenial(policy, subject, short, ev)
	}
	ev.granted = access
	tok, err := s.tokens.Issue(subject.Username, access)
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, code: "server_error", public: "could not sign the token", cause: err}
	}
	resp := tokenResponse{
		Token:       tok.Raw,
		AccessToken: tok.Raw,
		ExpiresIn:   tok.ExpiresIn,
		IssuedAt:    tok.IssuedAt.UTC().Format(time.RFC3339),
	}
	if r.Method == http.MethodPost {
		resp.Scope = scope.Format(access)
	}
	if req.offline && ev.hasRec {
		// The refresh token is derived from the password, so it is the
		// same on every login and dies with the password.
		resp.RefreshToken = cred.RefreshToken()
	}
	if req.offline && ev.workload != nil {
		rt, herr := s.workloadRefresh(r.Context(), ev)
		if herr != nil {
			return herr
		}
		resp.RefreshToken = rt
	}
	if ev.hasRec {
		// Asynchronous and coalesced by the cache: never on the hot path.
		_ = s.passwords.TouchPassword(context.WithoutCancel(r.Context()), ev.rec.ID, ev.start)
	}

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
	return nil
}

// maxExplained bounds the scopes a refusal explains: Explain costs more
// than Grant, and anyone, signed in or not, can ask for refused scopes.
const maxExplained = 8

// explainDenial records, for each requested scope not wholly granted, the
// refused actions and the reason.
func (s *Server) explainDenial(policy *groups.Policy, subject groups.Subject, requested []scope.Scope, ev *tokenEvent) {
	for _, d := range policy.Explain(subject, requested) {
		if d.Reason == "" {
			continue // e.g. an action requested twice, granted once
		}
		if ev.reason == "" {
			ev.reason = "policy"
		}
		if subject.ReadOnly && strings.Contains(d.Reason, "read-only") {
			ev.reason = "read_only"
		}
		ev.denied = append(ev.denied, truncate(d.Reason, 300))
	}
}

// authenticate checks the request's credentials against the store. Every
// failure gets the same 401 after the same one digest comparison — with
// the stored record's digests, or with DummyDigest when there is no
// record — so the secret cannot be probed by timing. (Whether an id is
// live can be: a cached record answers without a store round trip. Ids
// are not secrets.) A store outage is a 503, never a 401 that would make
// clients drop credentials.
func (s *Server) authenticate(ctx context.Context, req tokenRequest) (store.Password, passwords.Credential, *httpError) {
	// People paste passwords with a trailing newline or space; an app
	// password never contains white space.
	secret := strings.TrimSpace(req.secret)
	cred, err := passwords.Parse(secret)
	rec := store.Password{Digest: passwords.DummyDigest, RefreshDigest: passwords.DummyDigest}
	var why string
	switch {
	case err != nil:
		why = "malformed app password"
	case req.grant == grantPassword && cred.Kind != passwords.KindPassword:
		why = "refresh token sent as password grant"
	case req.grant == grantRefresh && cred.Kind != passwords.KindRefresh:
		why = "password sent as refresh_token grant"
	default:
		p, err := s.passwords.GetPassword(ctx, cred.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			why = "unknown, revoked or expired password " + cred.ID
		case err != nil:
			s.metrics.storeErrors.Inc()
			return store.Password{}, cred, &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
				public: "the password store is unavailable; try again", cause: err}
		default:
			rec = p
		}
	}
	ok := cred.Matches(rec.Digest, rec.RefreshDigest) // the one comparison, on every path
	switch {
	case why != "":
	case !ok:
		why = "wrong secret for password " + cred.ID
	case !s.now().Before(rec.ExpiresAt):
		why = "expired password " + cred.ID
	case req.username != "" && req.username != rec.Username:
		why = "password " + cred.ID + " belongs to another user"
	}
	if why == "" {
		return rec, cred, nil
	}
	herr := withCause(errUnauthorized, why)
	if err != nil && !strings.HasPrefix(secret, passwords.PasswordPrefix) && !strings.HasPrefix(secret, passwords.RefreshPrefix) {
		// Most likely the identity provider's password: say what is
		// wanted instead. This reveals nothing about any account.
		herr.public = "invalid username or app password: use an app password (it starts with " + passwords.PasswordPrefix +
			") minted at " + s.realm + ", not your single sign-on password"
	}
	return store.Password{}, cred, herr
}

// currentGroups returns the groups password p acts with now: its owner's
// standing when the browser login is on, else those it was minted with.
func (s *Server) currentGroups(ctx context.Context, p store.Password, ev *tokenEvent) ([]string, *httpError) {
	if s.groups == nil {
		return p.Groups, nil
	}
	gs, err := s.groups.Groups(ctx, p)
	switch {
	case err == nil:
		return gs, nil
	case errors.Is(err, accounts.ErrSuspended):
		ev.reason = "suspended"
		return nil, &httpError{status: http.StatusUnauthorized, code: "invalid_grant",
			public: "your identity provider login is no longer valid; log in again at " + s.realm + " and your app passwords work again", cause: err}
	case errors.Is(err, accounts.ErrUnavailable):
		ev.reason = "idp_unavailable"
	default:
		ev.reason = "store_unavailable"
		s.metrics.storeErrors.Inc()
	}
	return nil, &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		public: "your group membership cannot be confirmed right now; try again later", cause: err}
}

// GroupResolver says which groups a password acts with now;
// *accounts.Accounts is one.
type GroupResolver interface {
	Groups(ctx context.Context, p store.Password) ([]string, error)
}

func withCause(e *httpError, cause string) *httpError {
	c := *e
	c.cause = errors.New(cause)
	return &c
}

// Bounds on client-supplied values in the audit event, so that a request
// cannot make its own log line large.
const (
	maxLoggedValue  = 128
	maxLoggedScopes = 1024
)

// audit records the request's metrics and its audit event. The event
// never holds a secret; every value the client chose is truncated.
func (s *Server) audit(r *http.Request, ev *tokenEvent, herr *httpError) {
	req := ev.req
	outcome, status := "granted", http.StatusOK
	switch {
	case herr != nil:
		status = herr.status
		switch {
		case status == http.StatusUnauthorized:
			outcome = "denied"
		case status >= 500:
			outcome = "error"
		default:
			outcome = "bad_request"
		}
	case ev.reason != "" && len(ev.granted) == 0:
		outcome = "refused" // 200, but nothing requested was granted
	case ev.reason != "":
		outcome = "partial"
	}
	if herr != nil && ev.reason == "" {
		ev.reason = defaultReason(herr.status)
	}
	s.metrics.observeToken(outcome, req.grant, s.now().Sub(ev.start))
	if ev.reason != "" {
		s.metrics.denial(ev.reason)
	}

	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("request_id", requestID(r.Context())),
		slog.String("outcome", outcome),
		slog.Int("status", status),
		slog.String("grant", req.grant),
		slog.String("client_ip", s.clientIP(r)),
	)
	if req.clientID != "" {
		attrs = append(attrs, slog.String("client_id", logSafe(req.clientID, maxLoggedValue)))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, slog.String("user_agent", logSafe(ua, maxLoggedValue)))
	}
	switch {
	case ev.hasRec:
		attrs = append(attrs, slog.String("user", ev.rec.Username), slog.String("password_id", ev.rec.ID))
	case ev.workload != nil || ev.workloadReason != "":
		attrs = append(attrs, workloadAttrs(ev)...)
	case req.username != "":
		attrs = append(attrs, slog.String("user", logSafeUsername(req.username)))
	}
	if len(req.scopes) > 0 {
		attrs = append(attrs, slog.String("requested", logSafe(scope.Format(req.scopes), maxLoggedScopes)))
	}
	if herr == nil {
		attrs = append(attrs, slog.String("granted", scope.Format(ev.granted)))
	}
	if ev.reason != "" {
		attrs = append(attrs, slog.String("reason", ev.reason))
	}
	if len(ev.denied) > 0 {
		attrs = append(attrs, slog.Any("denied", ev.denied))
	}
	if herr != nil {
		// The explanation the client got, and the cause it did not.
		attrs = append(attrs, slog.String("error", logSafe(herr.public, maxLoggedScopes)))
		if herr.cause != nil {
			attrs = append(attrs, slog.String("cause", logSafe(herr.cause.Error(), maxLoggedScopes)))
		}
	}
	s.log.LogAttrs(r.Context(), level, "token", attrs...)
}

// defaultReason is the metrics label of a refusal whose handler named no
// more precise one, so that every refusal has a reason.
func defaultReason(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "credentials"
	case status >= 500:
		return "server_error"
	}
	return "bad_request"
}

// logSafe cuts a client-supplied value to n bytes of valid UTF-8.
func logSafe(v string, n int) string { return truncate(strings.ToValidUTF8(v, "?"), n) }

// logSafeUsername keeps an attacker-supplied username fit for the audit
// log: an app password pasted into the username field is redacted to its
// public id, anything else is cut to 64 bytes.
func logSafeUsername(u string) string {
	if t := strings.TrimSpace(u); passwords.LooksLike(t) {
		return passwords.Redact(t)
	}
	if strings.Contains(u, passwords.PasswordPrefix) || strings.Contains(u, passwords.RefreshPrefix) {
		return "(redacted: looks like an app password)"
	}
	return logSafe(u, 64)
}
