package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/registry-bridge/bridge/groups"
)

// Options are the server's live dependencies.
type Options struct {
	Log *slog.Logger
	// Passwords is the (caching) password store the token endpoint reads.
	Passwords PasswordLookup
	// Ping checks the store for /readyz.
	Ping func(ctx context.Context) error
	// Tokens signs registry tokens.
	Tokens TokenIssuer
	// Policy returns the current access policy; it may change between
	// calls (config reload).
	Policy func() *groups.Policy
	// JWKS returns the verification keys document.
	JWKS func() any
	// Service is the registry's service name, the tokens' audience.
	Service string
	// PublicURL is the bridge's external base URL, the Basic realm.
	PublicURL string
	// Registry receives the server's metrics and is what /metrics
	// serves; nil means a new registry of its own.
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Groups, when set, resolves the groups a password acts with now
	// (revalidated at the identity provider); else a password's own
	// groups are used.
	Groups GroupResolver
	// Login, when set, turns on the browser login, the page and the
	// JSON password API.
	Login *LoginOptions
	// Workloads, when set, accepts workload OIDC tokens (CI jobs, pods)
	// as passwords on the token endpoint.
	Workloads WorkloadVerifier
	// Device, when set with Login, turns on the terminal login
	// (device.go).
	Device *DeviceOptions
	// TrustedProxies are the proxies whose X-Forwarded-For the bridge
	// believes (clientip.go); none means the peer's address is the
	// client's.
	TrustedProxies []netip.Prefix
}

// Server is the bridge's HTTP surface. It implements http.Handler.
type Server struct {
	log       *slog.Logger
	passwords PasswordLookup
	ping      func(ctx context.Context) error
	tokens    TokenIssuer
	groups    GroupResolver
	policy    func() *groups.Policy
	jwks      func() any
	service   string
	realm     string
	now       func() time.Time
	metrics   *metrics
	workloads *workloadAuth
	mux       *http.ServeMux
	device    *device // nil without the terminal login
	// trustedProxies are Options.TrustedProxies.
	trustedProxies []netip.Prefix
}

// New returns a Server serving the routes of the HTTP surface in
// docs/reference.md.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		log:       o.Log,
		passwords: o.Passwords,
		ping:      o.Ping,
		tokens:    o.Tokens,
		groups:    o.Groups,
		policy:    o.Policy,
		jwks:      o.JWKS,
		service:   o.Service,
		realm:     o.PublicURL,
		now:       o.Now,
		metrics:   newMetrics(o.Registry),
		mux:       http.NewServeMux(),

		trustedProxies: o.TrustedProxies,
	}
	s.workloads = newWorkloadAuth(o.Workloads, o.Registry)
	s.mux.HandleFunc("/token", s.handleToken)
	s.mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	s.mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleMetadata)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	if o.Login != nil {
		u, err := newUI(s, o.Login)
		if err != nil {
			return nil, err
		}
		u.routes(s.mux)
		if o.Device != nil {
			s.device = newDevice(u, o.Device)
			s.device.routes(s.mux)
		}
	} else {
		s.mux.HandleFunc("GET /{$}", s.handleNoLogin)
	}
	return s, nil
}

// handleNoLogin answers the page when no identity provider is configured.
func (s *Server) handleNoLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("registry-bridge: this server has no oidc section configured, so there is no browser login.\n" +
		"App passwords are minted with `bridge passwords create`. The token endpoint is " + s.realm + "/token\n"))
}

// ServeHTTP adds a request id and turns panics into logged 500s.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic", "request_id", id, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, &httpError{status: http.StatusInternalServerError, code: "server_error", public: "internal error"}, "")
		}
	}()
	s.mux.ServeHTTP(w, r)
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReady answers 200 {"status":"ready"} when the store answers and
// the cache follows its events, else 503 {"status":"unavailable","store":
// "…"} with the store's error, which names the server and the config key
// to check (never a password). Failures are not logged here: the cache
// logs the store's state changes once each, and a probe every few seconds
// would flood the log.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := readyBody{Status: "ready"}
	status := http.StatusOK
	if err := s.ping(ctx); err != nil {
		s.metrics.storeErrors.Inc()
		s.log.DebugContext(ctx, "not ready", "request_id", requestID(ctx), "err", err)
		body = readyBody{Status: "unavailable", Store: err.Error()}
		status = http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// readyBody is /readyz's answer.
type readyBody struct {
	Status string `json:"status"`
	Store  string `json:"store,omitempty"`
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(s.jwks())
}
