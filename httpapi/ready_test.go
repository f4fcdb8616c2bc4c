package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReadyNamesTheStore: /readyz says which store is missing and what to
// check, as the store's error puts it.
func TestReadyNamesTheStore(t *testing.T) {
	const cause = "redis store: ping: 127.0.0.1:6379 unreachable: dial tcp 127.0.0.1:6379: connect: connection refused; check store.redis.url"
	tests := []struct {
		name       string
		ping       error
		wantStatus int
		want       readyBody
	}{
		{"ready", nil, http.StatusOK, readyBody{Status: "ready"}},
		{"store down", errors.New(cause), http.StatusServiceUnavailable, readyBody{Status: "unavailable", Store: cause}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Options{Log: slog.New(slog.DiscardHandler), Ping: func(context.Context) error { return tt.ping }})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			var got readyBody
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tt.wantStatus || got != tt.want {
				t.Errorf("/readyz = %d %+v, want %d %+v", w.Code, got, tt.wantStatus, tt.want)
			}
		})
	}
}
