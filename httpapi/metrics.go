package httpapi

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series. Label values are fixed sets,
// so series resolve once here and the hot path only increments.
type metrics struct {
	tokenRequests *prometheus.CounterVec
	tokenLatency  *prometheus.HistogramVec
	// token holds every (outcome, grant) series, resolved at start-up;
	// it is only read afterwards.
	token       map[[2]string]tokenSeries
	storeErrors prometheus.Counter
	// denials counts refusals by reason; resolved per reason on first use.
	denials *prometheus.CounterVec
	// passwordsMinted (by channel) and passwordsRevoked count changes
	// made through this server (page and API), not by the CLI.
	passwordsMinted  *prometheus.CounterVec
	passwordsRevoked prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_token_requests_total",
			Help: "Token requests by outcome (granted, partial, refused, denied, bad_request, error) and grant (basic, anonymous, password, refresh_token).",
		}, []string{"outcome", "grant"}),
		tokenLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bridge_token_request_duration_seconds",
			Help:    "Time to answer a token request, by outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"outcome"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bridge_store_errors_total",
			Help: "Store operations that failed (not counting not-found).",
		}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_token_denials_total",
			Help: "Token requests refused wholly or in part, by reason (credentials, suspended, idp_unavailable, issuer_unavailable, store_unavailable, policy, read_only, wrong_service, bad_request, server_error).",
		}, []string{"reason"}),
		passwordsMinted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_passwords_minted_total",
			Help: "App passwords minted through this server, by channel.",
		}, []string{"by"}),
		passwordsRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bridge_passwords_revoked_total",
			Help: "App passwords revoked through this server.",
		}),
	}
	reg.MustRegister(m.tokenRequests, m.tokenLatency, m.storeErrors, m.denials, m.passwordsMinted, m.passwordsRevoked)
	m.token = make(map[[2]string]tokenSeries)
	for _, outcome := range []string{"granted", "partial", "refused", "denied", "bad_request", "error"} {
		for _, grant := range []string{grantBasic, grantAnonymous, grantPassword, grantRefresh, "unknown"} {
			m.token[[2]string{outcome, grant}] = tokenSeries{
				count:   m.tokenRequests.WithLabelValues(outcome, grant),
				latency: m.tokenLatency.WithLabelValues(outcome),
			}
		}
	}
	return m
}

type tokenSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// observeToken counts a token request; a grant not known yet (the request
// did not parse) is "unknown".
func (m *metrics) observeToken(outcome, grant string, d time.Duration) {
	if grant == "" {
		grant = "unknown"
	}
	ts, ok := m.token[[2]string{outcome, grant}]
	if !ok {
		ts = tokenSeries{m.tokenRequests.WithLabelValues(outcome, grant), m.tokenLatency.WithLabelValues(outcome)}
	}
	ts.count.Inc()
	ts.latency.Observe(d.Seconds())
}

// denial counts a refusal; reasons are a fixed set chosen by the handler.
func (m *metrics) denial(reason string) { m.denials.WithLabelValues(reason).Inc() }
