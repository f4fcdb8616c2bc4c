package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/workload"
)

// WorkloadVerifier checks workload OIDC tokens (CI jobs, pods) presented
// as passwords; *workload.Verifier is one.
type WorkloadVerifier interface {
	Verify(ctx context.Context, raw string) (workload.Identity, error)
	// Refresh returns the bridge's own refresh token for a verified
	// workload.
	Refresh(ctx context.Context, id workload.Identity) (string, error)
	// Release undoes the use of a one-shot token whose request failed
	// with a 5xx, so that the client's retry works.
	Release(id workload.Identity)
	// Trusts reports whether the issuer of that name is configured.
	Trusts(issuer string) bool
}

// workloadAuth is the token endpoint's workload path.
type workloadAuth struct {
	v WorkloadVerifier
	// results counts verifications by issuer and outcome ("ok" or a
	// workload.Reason… label).
	results *prometheus.CounterVec
}

func newWorkloadAuth(v WorkloadVerifier, reg prometheus.Registerer) *workloadAuth {
	if v == nil {
		return nil
	}
	w := &workloadAuth{v: v, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bridge_workload_tokens_total",
		Help: "Workload OIDC tokens presented, by issuer (its configured name, or unknown) and outcome (ok, or the refusal reason).",
	}, []string{"issuer", "outcome"})}
	reg.MustRegister(w.results)
	return w
}

// isWorkloadToken tells a workload JWT from an app password without
// parsing either: a refresh_token grant is always the bridge's own.
func (s *Server) isWorkloadToken(req tokenRequest) bool {
	return s.workloads != nil && req.grant != grantRefresh && workload.LooksLikeJWT(req.secret)
}

// authenticateWorkload verifies the workload token of req. A refusal is
// the same 401 for every reason (the log has the reason); an issuer that
// cannot be reached, or a store that cannot, is a 503 so that clients
// keep the token and retry.
func (s *Server) authenticateWorkload(ctx context.Context, req tokenRequest, ev *tokenEvent) (workload.Identity, *httpError) {
	id, err := s.workloads.v.Verify(ctx, req.secret)
	var we *workload.Error
	if err != nil && !errors.As(err, &we) {
		we = &workload.Error{Reason: workload.ReasonMalformed, Err: err}
	}
	if err == nil && id.BasicUsername != "" && req.username != "" && req.username != id.BasicUsername && req.username != id.Username {
		we = &workload.Error{Issuer: id.Issuer, Reason: "username", Err: errors.New("username " + logSafeUsername(req.username) +
			" is neither the issuer's basic_username nor the mapped username " + id.Username)}
	}
	if we == nil {
		s.workloads.observe(id.Issuer, "ok")
		ev.workload = &id
		return id, nil
	}
	s.workloads.observe(we.Issuer, we.Reason)
	ev.workloadIssuer, ev.workloadReason = we.Issuer, we.Reason
	switch we.Reason {
	case workload.ReasonUnavailable:
		ev.reason = "issuer_unavailable"
		return workload.Identity{}, &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			public: "the workload token's issuer cannot be reached to check it; try again", cause: we}
	case workload.ReasonStore:
		ev.reason = "store_unavailable"
		s.metrics.storeErrors.Inc()
		return workload.Identity{}, &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			public: "the password store is unavailable; try again", cause: we}
	}
	return workload.Identity{}, &httpError{status: http.StatusUnauthorized, code: "invalid_grant",
		public: "the workload token was refused; the bridge's log says why (request id " + requestID(ctx) + ")", cause: we}
}

// checkWorkloadRecord refuses the bridge's refresh token of a workload
// whose issuer is no longer configured (nor any workload's when no issuer
// is): removing an issuer stops its refresh tokens at once, not at their
// expiry. Other records pass.
func (s *Server) checkWorkloadRecord(p store.Password, ev *tokenEvent) *httpError {
	if p.CreatedBy != store.CreatedByWorkload {
		return nil
	}
	issuer, _ := accounts.WorkloadIssuer(p.Subject)
	if s.workloads != nil && s.workloads.v.Trusts(issuer) {
		return nil
	}
	return withCause(errUnauthorized, "workload refresh token of issuer "+logSafe(issuer, maxLoggedValue)+", which is no longer in workloads.issuers")
}

// releaseWorkload gives a one-shot workload token back when its request
// failed on the bridge's side (herr a 5xx): nothing was handed out, and
// the client retries with the same token.
func (s *Server) releaseWorkload(ev *tokenEvent, herr *httpError) {
	if herr != nil && herr.status >= 500 && ev.workload != nil {
		s.workloads.v.Release(*ev.workload)
	}
}

func (w *workloadAuth) observe(issuer, outcome string) {
	if issuer == "" {
		issuer = "unknown"
	}
	w.results.WithLabelValues(issuer, outcome).Inc()
}

// workloadRefresh returns the bridge's refresh token for the verified
// workload of ev. A workload at its cap of live refresh tokens gets ""
// (the response carries the access token alone, and the client keeps
// using its own token) and the audit event says so: a build that
// already holds a refresh token is never cut off, and the store stays
// bounded.
func (s *Server) workloadRefresh(ctx context.Context, ev *tokenEvent) (string, *httpError) {
	rt, err := s.workloads.v.Refresh(ctx, *ev.workload)
	if errors.Is(err, accounts.ErrLimit) {
		ev.refreshWithheld = "max_refresh_tokens_per_workload"
		return "", nil
	}
	if err != nil {
		ev.reason = "store_unavailable"
		s.metrics.storeErrors.Inc()
		return "", &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			public: "could not issue a refresh token; try again", cause: err}
	}
	return rt, nil
}

// workloadAttrs are the audit event's fields of a workload request: never
// the token.
func workloadAttrs(ev *tokenEvent) []slog.Attr {
	if id := ev.workload; id != nil {
		attrs := []slog.Attr{slog.String("user", id.Username), slog.String("issuer", id.Issuer),
			slog.String("workload_subject", logSafe(id.Subject, maxLoggedValue)), slog.String("groups", strings.Join(id.Groups, ","))}
		if ev.refreshWithheld != "" {
			attrs = append(attrs, slog.String("refresh_token_withheld", ev.refreshWithheld))
		}
		return attrs
	}
	attrs := []slog.Attr{slog.String("workload_reason", ev.workloadReason)}
	if ev.req.username != "" {
		attrs = append(attrs, slog.String("user", logSafeUsername(ev.req.username)))
	}
	if ev.workloadIssuer != "" {
		attrs = append(attrs, slog.String("issuer", ev.workloadIssuer))
	}
	return attrs
}
