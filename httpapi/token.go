package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/identity"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/scope"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/tokens"
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

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes+1))
		if err != nil {
			s.finishToken(w, r, start, tokenRequest{}, nil, nil,
				&httpError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", public: "form too large", cause: err})
			return
		}
	}
	req, herr := parseTokenRequest(r.Method, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body)
	if herr != nil {
		if herr.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		s.finishToken(w, r, start, req, nil, nil, herr)
		return
	}
	if req.service != "" && req.service != s.service {
		s.finishToken(w, r, start, req, nil, nil, badRequest("unknown service %s; this token server serves %q", quoteTrunc(req.service), s.service))
		return
	}

	subject := groups.Subject{Anonymous: true}
	var rec *store.Password
	var cred passwords.Credential
	if req.grant != grantAnonymous {
		p, c, herr := s.authenticate(r.Context(), req)
		if herr != nil {
			s.finishToken(w, r, start, req, nil, nil, herr)
			return
		}
		gs, herr := s.currentGroups(r.Context(), p)
		if herr != nil {
			s.finishToken(w, r, start, req, &p, nil, herr)
			return
		}
		rec, cred = &p, c
		subject = groups.Subject{Username: p.Username, Groups: gs, ReadOnly: p.ReadOnly}
	}

	granted := s.policy().Grant(subject, req.scopes)
	access := make([]scope.Scope, 0, len(granted))
	for _, g := range granted {
		if len(g.Actions) > 0 {
			access = append(access, g)
		}
	}
	tok, err := s.tokens.Issue(subject.Username, access)
	if err != nil {
		s.finishToken(w, r, start, req, rec, nil, &httpError{status: http.StatusInternalServerError, code: "server_error",
			public: "could not sign the token", cause: err})
		return
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
	if req.offline && rec != nil {
		// The refresh token is derived from the password, so it is the
		// same on every login and dies with the password.
		resp.RefreshToken = cred.RefreshToken()
	}
	if rec != nil {
		// Asynchronous and coalesced by the cache: never on the hot path.
		_ = s.passwords.TouchPassword(context.WithoutCancel(r.Context()), rec.ID, start)
	}

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
	s.finishToken(w, r, start, req, rec, access, nil)
}

// authenticate checks the request's credentials against the store. Every
// failure gets the same 401 and the same digest comparison, so the secret
// cannot be probed by timing. (Whether an id is live can be: a cached
// record answers without a store round trip. Ids are not secrets.) A store
// outage is a 503, never a 401 that would make clients drop credentials.
func (s *Server) authenticate(ctx context.Context, req tokenRequest) (store.Password, passwords.Credential, *httpError) {
	cred, err := passwords.Parse(req.secret)
	if err != nil {
		passwords.VerifyDigest(passwords.DummyDigest, req.secret)
		return store.Password{}, cred, withCause(errUnauthorized, "malformed app password")
	}
	switch {
	case req.grant == grantPassword && cred.Kind != passwords.KindPassword:
		passwords.VerifyDigest(passwords.DummyDigest, cred.Secret())
		return store.Password{}, cred, withCause(errUnauthorized, "refresh token sent as password grant")
	case req.grant == grantRefresh && cred.Kind != passwords.KindRefresh:
		passwords.VerifyDigest(passwords.DummyDigest, cred.Secret())
		return store.Password{}, cred, withCause(errUnauthorized, "password sent as refresh_token grant")
	}
	p, err := s.passwords.GetPassword(ctx, cred.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		passwords.VerifyDigest(passwords.DummyDigest, cred.Secret())
		return store.Password{}, cred, withCause(errUnauthorized, "unknown, revoked or expired password "+cred.ID)
	case err != nil:
		s.metrics.storeErrors.Inc()
		return store.Password{}, cred, &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			public: "the password store is unavailable; try again", cause: err}
	}
	ok := cred.Matches(p.Digest, p.RefreshDigest)
	switch {
	case !ok:
		return store.Password{}, cred, withCause(errUnauthorized, "wrong secret for password "+cred.ID)
	case !s.now().Before(p.ExpiresAt):
		return store.Password{}, cred, withCause(errUnauthorized, "expired password "+cred.ID)
	case req.username != "" && req.username != p.Username:
		return store.Password{}, cred, withCause(errUnauthorized, "password "+cred.ID+" belongs to another user")
	}
	return p, cred, nil
}

// currentGroups returns the groups password p acts with now: its owner's
// revalidated groups when the browser login is on, else those it was
// minted with.
func (s *Server) currentGroups(ctx context.Context, p store.Password) ([]string, *httpError) {
	if s.groups == nil {
		return p.Groups, nil
	}
	gs, err := s.groups.Groups(ctx, p)
	switch {
	case err == nil:
		return gs, nil
	case errors.Is(err, identity.ErrSuspended):
		return nil, &httpError{status: http.StatusUnauthorized, code: "invalid_grant",
			public: "your identity provider login is no longer valid; log in again at " + s.realm + " and your app passwords work again", cause: err}
	default:
		if !errors.Is(err, identity.ErrUnavailable) { // the provider's outage is counted by revalidations
			s.metrics.storeErrors.Inc()
		}
		return nil, &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			public: "your group membership cannot be confirmed right now; try again later", cause: err}
	}
}

// GroupResolver says which groups a password acts with now;
// *identity.Revalidator is one.
type GroupResolver interface {
	Groups(ctx context.Context, p store.Password) ([]string, error)
}

func withCause(e *httpError, cause string) *httpError {
	c := *e
	c.cause = errors.New(cause)
	return &c
}

// finishToken writes herr (if any), then records the request's metrics
// and its audit event. The event never holds a secret.
func (s *Server) finishToken(w http.ResponseWriter, r *http.Request, start time.Time, req tokenRequest,
	rec *store.Password, granted []scope.Scope, herr *httpError) {
	outcome, status := "granted", http.StatusOK
	if herr != nil {
		status = herr.status
		writeError(w, herr, s.realm)
		switch {
		case status == http.StatusUnauthorized:
			outcome = "denied"
		case status >= 500:
			outcome = "error"
		default:
			outcome = "bad_request"
		}
	}
	s.metrics.observeToken(outcome, req.grant, s.now().Sub(start))

	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("request_id", requestID(r.Context())),
		slog.String("outcome", outcome),
		slog.Int("status", status),
		slog.String("grant", req.grant),
		slog.String("client_ip", clientIP(r)),
	)
	if req.clientID != "" {
		attrs = append(attrs, slog.String("client_id", req.clientID))
	}
	switch {
	case rec != nil:
		attrs = append(attrs, slog.String("user", rec.Username), slog.String("password_id", rec.ID))
	case req.username != "":
		attrs = append(attrs, slog.String("user", logSafeUsername(req.username)))
	}
	if len(req.scopes) > 0 {
		attrs = append(attrs, slog.String("requested", scope.Format(req.scopes)))
	}
	if herr == nil {
		attrs = append(attrs, slog.String("granted", scope.Format(granted)))
	} else if herr.cause != nil {
		attrs = append(attrs, slog.String("reason", herr.cause.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "token", attrs...)
}

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
	return truncate(strings.ToValidUTF8(u, "?"), 64)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
