package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// httpError is what a handler returns instead of writing an error itself:
// the status and public message go to the client, the cause only to logs.
type httpError struct {
	status int
	// code is the OAuth2 error code ("invalid_request", "invalid_grant"…).
	code string
	// public is safe to show the client.
	public string
	// cause is logged, never sent.
	cause error
	// header, if set, is added to the answer (e.g. Retry-After).
	header http.Header
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.status, e.code, e.public, e.cause)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.public)
}

func (e *httpError) Unwrap() error { return e.cause }

func badRequest(format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, code: "invalid_request", public: fmt.Sprintf(format, args...)}
}

// errorBody carries both the OAuth2 error fields (RFC 6749 §5.2) and the
// registry's own {"errors":[…]} form, which docker prints as
// "unauthorized: <message>".
type errorBody struct {
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
	Errors      []registryError `json:"errors"`
}

type registryError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func registryCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case http.StatusMethodNotAllowed:
		return "UNSUPPORTED"
	}
	if status >= 500 {
		return "UNKNOWN"
	}
	return "INVALID_REQUEST"
}

// writeError sends e as JSON. The realm, when not empty, goes into a
// WWW-Authenticate: Basic challenge on 401s.
func writeError(w http.ResponseWriter, e *httpError, realm string) {
	h := w.Header()
	e.setHeaders(h)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.status == http.StatusUnauthorized && realm != "" {
		h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", realm))
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(errorBody{
		Error:       e.code,
		Description: e.public,
		Errors:      []registryError{{Code: registryCode(e.status), Message: e.public}},
	})
}

// setHeaders adds the error's own headers to h.
func (e *httpError) setHeaders(h http.Header) {
	for k, v := range e.header {
		h[k] = v
	}
}
