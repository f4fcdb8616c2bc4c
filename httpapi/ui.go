package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/web"
)

// LoginProvider is the upstream login; *oidc.Provider is one.
type LoginProvider interface {
	Name() string
	AuthURL(ctx context.Context, st oidc.LoginState) (string, error)
	Exchange(ctx context.Context, st oidc.LoginState, code string) (oidc.Identity, oidc.Tokens, error)
	LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirect string) string
	// LogoutOrigin is the origin LogoutURL sends browsers to, or "".
	LogoutOrigin(ctx context.Context) string
}

// SessionStore keeps browser sessions, and marks the logins that were
// completed so that none completes twice (a TryLock never unlocked).
type SessionStore interface {
	CreateSession(ctx context.Context, s store.Session) error
	GetSession(ctx context.Context, id string) (store.Session, error)
	TouchSession(ctx context.Context, id string, seen, expires time.Time) error
	DeleteSession(ctx context.Context, id string) error
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// Accounts is the account rules the page and the API call;
// *accounts.Accounts is one.
type Accounts interface {
	Login(ctx context.Context, id oidc.Identity, toks oidc.Tokens) (accounts.Principal, error)
	Standing(ctx context.Context, person accounts.Principal) (accounts.Standing, error)
	Mint(ctx context.Context, req accounts.MintRequest) (accounts.Minted, error)
	Passwords(ctx context.Context, owner accounts.Principal) ([]store.Password, error)
	Revoke(ctx context.Context, owner accounts.Principal, id string) (store.Password, error)
	// CanMint checks what Mint would check of owner, minting nothing.
	CanMint(ctx context.Context, owner accounts.Principal) error
}

// LoginOptions turn on the browser login, the page and the JSON API.
type LoginOptions struct {
	Provider LoginProvider
	Sessions SessionStore
	Accounts Accounts
	// Sealer seals the logins in flight that browsers carry in the login
	// cookie: every replica must have the same key.
	Sealer *oidc.Sealer
	// Limits offers the lifetimes people may choose.
	Limits accounts.Limits
	// IdleTimeout and MaxAge bound browser sessions.
	IdleTimeout, MaxAge time.Duration
	// Registry is the host[:port] people docker login to.
	Registry string
	// Title heads every page. Default "Container registry".
	Title string
}

const (
	loginStateTTL = 10 * time.Minute
	// usedMarkerSlack keeps a completed login's used-marker a while past
	// the login's expiry: the marker's ttl runs on the store's clock
	// (Redis's), the expiry on this replica's.
	usedMarkerSlack = time.Minute
	// logoutOriginWait bounds how long a page waits for the provider's
	// discovery to learn the logout origin its CSP must allow.
	logoutOriginWait   = 2 * time.Second
	maxCallbackParam   = 2048
	touchEvery         = time.Minute
	maxPageFormBytes   = 16 << 10
	csrfHeader         = "X-CSRF-Token"
	loginCookie        = "rb_login"
	nextCookie         = "rb_next"
	sessionCookie      = "rb_session"
	secureCookiePrefix = "__Host-"
)

// ui is the browser side of the server.
type ui struct {
	*LoginOptions
	s         *Server
	pages     *template.Template
	lifetimes []lifetimeChoice
	secure    bool
	origin    string
}

// csp is every page's Content-Security-Policy but form-action, which
// pageCSP completes.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

func newUI(s *Server, o *LoginOptions) (*ui, error) {
	pages, err := web.Templates()
	if err != nil {
		return nil, err
	}
	if o.Title == "" {
		o.Title = "Container registry"
	}
	if o.Sealer == nil {
		return nil, errors.New("httpapi: login options need a Sealer")
	}
	u := &ui{LoginOptions: o, s: s, pages: pages, lifetimes: lifetimeChoices(o.Limits), secure: strings.HasPrefix(s.realm, "https://"), origin: normalOrigin(s.realm)}
	return u, nil
}

func (u *ui) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", u.page(u.handleIndex))
	mux.HandleFunc("GET /login", u.page(u.handleLogin))
	mux.HandleFunc("GET /callback", u.page(u.handleCallback))
	mux.HandleFunc("POST /logout", u.page(u.session(u.handleLogout)))
	mux.HandleFunc("POST /passwords", u.page(u.session(u.handleMint)))
	mux.HandleFunc("POST /passwords/revoke-all", u.page(u.session(u.handleRevokeAll)))
	mux.HandleFunc("POST /passwords/{id}/revoke", u.page(u.session(u.handleRevoke)))
	mux.HandleFunc("GET /api/v1/session", u.api(u.session(u.apiSession)))
	mux.HandleFunc("GET /api/v1/passwords", u.api(u.session(u.apiList)))
	mux.HandleFunc("POST /api/v1/passwords", u.api(u.session(u.apiCreate)))
	mux.HandleFunc("DELETE /api/v1/passwords/{id}", u.api(u.session(u.apiDelete)))
	mux.Handle("GET /static/", u.static(web.Static()))
}

// static serves the style sheet and scripts with the pages' security
// headers, and answers 404 for a directory rather than listing it.
func (u *ui) static(files fs.FS) http.Handler {
	serve := http.StripPrefix("/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.securityHeaders(w, nil)
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if name == "" || strings.HasSuffix(name, "/") || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		if fi, err := fs.Stat(files, name); err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		serve.ServeHTTP(w, r)
	})
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) *httpError

// sessionHandler is a handler for a signed-in person.
type sessionHandler func(w http.ResponseWriter, r *http.Request, who signedIn) *httpError

// signedIn is the person behind a request's session, as they count now.
type signedIn struct {
	store.Session
	// Person is the session's principal for account calls.
	Person accounts.Principal
	// Standing is their current standing; when StandingErr is set (the
	// provider cannot confirm their groups right now) it is zero.
	Standing    accounts.Standing
	StandingErr error
}

// page wraps an HTML handler: security headers, and errors as a page.
func (u *ui) page(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.securityHeaders(w, r)
		if e := h(w, r); e != nil {
			u.logError(r, e)
			u.renderError(w, e)
		}
	}
}

// api wraps a JSON handler: security headers, and errors as JSON.
func (u *ui) api(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.securityHeaders(w, nil)
		r = r.WithContext(context.WithValue(r.Context(), apiKey{}, true))
		if e := h(w, r); e != nil {
			u.logError(r, e)
			writeError(w, e, "")
		}
	}
}

type apiKey struct{}

func isAPI(r *http.Request) bool { v, _ := r.Context().Value(apiKey{}).(bool); return v }

// securityHeaders sets the headers of every page, JSON answer and static
// file. For a page (r != nil) the CSP's form-action is completed by
// pageCSP; for the others it allows only this site.
func (u *ui) securityHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	policy := csp + "; form-action 'self'"
	if r != nil {
		policy = u.pageCSP(r)
	}
	h.Set("Content-Security-Policy", policy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if u.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// pageCSP returns a page's Content-Security-Policy. Forms may post to
// this site only, and, on a signed-in page, whose logout form posts to
// /logout, which redirects to the provider's end_session_endpoint (Chrome
// applies form-action to that redirect), to exactly that endpoint's
// origin. The origin is known once discovery has run, which a signed-in
// page waits for briefly; a page without a session cookie needs no I/O.
func (u *ui) pageCSP(r *http.Request) string {
	policy := csp + "; form-action 'self'"
	if c, err := r.Cookie(u.cookieName(sessionCookie)); err != nil || c.Value == "" {
		return policy
	}
	ctx, cancel := context.WithTimeout(r.Context(), logoutOriginWait)
	defer cancel()
	if o := u.Provider.LogoutOrigin(ctx); o != "" {
		policy += " " + o
	}
	return policy
}

func (u *ui) logError(r *http.Request, e *httpError) {
	level, msg := slog.LevelWarn, "request refused"
	if e.status >= 500 {
		level, msg = slog.LevelError, "request failed"
	}
	args := []any{"request_id", requestID(r.Context()), "path", r.URL.Path, "status", e.status, "public", e.public}
	if e.cause != nil {
		args = append(args, "err", e.cause.Error())
	}
	u.s.log.Log(r.Context(), level, msg, args...)
}

// session loads the signed-in person's session, bounds and reads the
// body of a state-changing request, checks CSRF on it, keeps the idle
// timeout sliding, and ends the session of a person the identity provider
// no longer accepts.
func (u *ui) session(h sessionHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) *httpError {
		sess, ok, herr := u.currentSession(r)
		if herr != nil {
			return herr
		}
		if !ok {
			if isAPI(r) {
				return &httpError{status: http.StatusUnauthorized, code: "login_required", public: "not signed in; log in at " + u.s.realm}
			}
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return nil
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !isAPI(r) {
				if herr := readForm(w, r, maxPageFormBytes); herr != nil {
					return herr
				}
			}
			if herr := u.checkCSRF(r, sess); herr != nil {
				return herr
			}
		}
		who, herr := u.signedIn(w, r, sess)
		if herr != nil {
			return herr
		}
		return h(w, r, who)
	}
}

// signedIn returns the session's person as they count now. The session
// of a person refused, removed or renamed at the provider ends here, on
// every replica, and they must log in again.
func (u *ui) signedIn(w http.ResponseWriter, r *http.Request, sess store.Session) (signedIn, *httpError) {
	who := signedIn{Session: sess, Person: accounts.PersonPrincipal(sess.Subject, sess.Username)}
	who.Standing, who.StandingErr = u.Accounts.Standing(r.Context(), who.Person)
	if errors.Is(who.StandingErr, accounts.ErrSuspended) {
		_ = u.Sessions.DeleteSession(r.Context(), sess.ID)
		u.clearCookie(w, sessionCookie)
		return who, &httpError{status: http.StatusUnauthorized, code: "login_required",
			public: "Your login at " + u.Provider.Name() + " is no longer valid. Log in again.", cause: who.StandingErr}
	}
	return who, nil
}

// readForm reads a form: application/x-www-form-urlencoded only (no
// multipart, so nothing is ever spooled to disk), at most limit bytes,
// before anything else looks at the body; the values land in r.PostForm.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) *httpError {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return &httpError{status: http.StatusUnsupportedMediaType, code: "invalid_request",
			public: "send the form as application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
				public: fmt.Sprintf("the form is larger than %d KiB", max(limit>>10, 1)), cause: err}
		}
		return badRequest("malformed form: %v", err)
	}
	return nil
}

// currentSession returns the session of the request's cookie, if valid.
func (u *ui) currentSession(r *http.Request) (store.Session, bool, *httpError) {
	c, err := r.Cookie(u.cookieName(sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return store.Session{}, false, nil
	}
	id := digestHex(c.Value)
	sess, err := u.Sessions.GetSession(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Session{}, false, nil
	case err != nil:
		return store.Session{}, false, unavailable("session store", err)
	}
	now := u.s.now()
	if !now.Before(sess.ExpiresAt) {
		return store.Session{}, false, nil
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		expires := minTime(sess.CreatedAt.Add(u.MaxAge), now.Add(u.IdleTimeout))
		if err := u.Sessions.TouchSession(r.Context(), id, now, expires); err == nil {
			sess.LastSeenAt, sess.ExpiresAt = now, expires
		}
	}
	return sess, true, nil
}

// checkCSRF requires the session's token in the form field "csrf" or the
// X-CSRF-Token header, and, when the browser says where the request comes
// from, that it comes from this site.
func (u *ui) checkCSRF(r *http.Request, sess store.Session) *httpError {
	forbidden := &httpError{status: http.StatusForbidden, code: "csrf", public: "this form has expired or did not come from this site; reload the page and try again"}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return withCause(forbidden, "Sec-Fetch-Site "+site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && normalOrigin(o) != u.origin {
		return withCause(forbidden, "Origin "+o)
	}
	token := r.Header.Get(csrfHeader)
	if token == "" && !isAPI(r) {
		token = r.PostForm.Get("csrf") // read, bounded, by readForm
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) != 1 {
		return withCause(forbidden, "missing or wrong CSRF token")
	}
	return nil
}

func (u *ui) cookieName(base string) string {
	if u.secure {
		return secureCookiePrefix + base
	}
	return base
}

func (u *ui) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     u.cookieName(name),
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   u.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (u *ui) clearCookie(w http.ResponseWriter, name string) {
	u.setCookie(w, name, "", -time.Second) // MaxAge < 0: delete now
}

// handleLogin starts a login: a fresh state, nonce and PKCE verifier,
// sealed (oidc.Sealer.SealLogin) into the login cookie, which binds them to
// this browser. It writes nothing to the store, so anonymous requests
// cannot grow it. It takes no redirect target, so it cannot be turned into
// an open redirect.
func (u *ui) handleLogin(w http.ResponseWriter, r *http.Request) *httpError {
	st, err := oidc.NewLoginState()
	if err != nil {
		return internal(err)
	}
	sealed, err := u.Sealer.SealLogin(st, u.s.now().Add(loginStateTTL))
	if err != nil {
		return internal(err)
	}
	authURL, err := u.Provider.AuthURL(r.Context(), st)
	if err != nil {
		return &httpError{status: http.StatusBadGateway, code: "idp_unavailable",
			public: u.Provider.Name() + " cannot be reached right now. Try again in a minute.", cause: err}
	}
	u.setCookie(w, loginCookie, sealed, loginStateTTL)
	if next := returnTo(r.URL.Query()); next != "" {
		u.setCookie(w, nextCookie, next, loginStateTTL)
	} else {
		u.clearCookie(w, nextCookie)
	}
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// returnTo is where a login started with ?next= comes back to: only the
// device page, with a user code of the code's form, never a URL the
// request names, so /login cannot become an open redirect.
func returnTo(q url.Values) string {
	if q.Get("next") != "device" {
		return ""
	}
	if code, ok := normalUserCode(q.Get("user_code")); ok {
		return "/device?user_code=" + code
	}
	return "/device"
}

// afterLogin is where the callback sends the browser: the device page
// when the login started there (the cookie's value checked again), else
// the home page.
func (u *ui) afterLogin(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(u.cookieName(nextCookie))
	if err != nil {
		return "/"
	}
	u.clearCookie(w, nextCookie)
	target, err := url.Parse(c.Value)
	if err != nil || target.Path != "/device" {
		return "/"
	}
	if next := returnTo(url.Values{"next": {"device"}, "user_code": {target.Query().Get("user_code")}}); next != "" {
		return next
	}
	return "/"
}

// callback is what a callback request carries, read and bounded by
// readCallback.
type callback struct {
	state, code string
	// errCode and errDescription are the provider's error response (RFC
	// 6749 §4.1.2.1), truncated: for the log, never for the page.
	errCode, errDescription string
	// login is this browser's login, opened from its cookie; loginErr
	// says why there is none.
	login    oidc.LoginState
	expires  time.Time
	loginErr error
	// bound: the state parameter is this browser's login's state.
	bound bool
}

// readCallback reads the callback's parameters and the browser's login
// cookie. It changes nothing.
func (u *ui) readCallback(r *http.Request) callback {
	q := r.URL.Query()
	cb := callback{
		state: q.Get("state"), code: q.Get("code"),
		errCode: truncate(q.Get("error"), 200), errDescription: truncate(q.Get("error_description"), 200),
	}
	c, err := r.Cookie(u.cookieName(loginCookie))
	switch {
	case err != nil || c.Value == "":
		cb.loginErr = errors.New("no login cookie")
	default:
		cb.login, cb.expires, cb.loginErr = u.Sealer.OpenLogin(c.Value, u.s.now())
	}
	cb.bound = cb.loginErr == nil && cb.state != "" && len(cb.state) <= maxCallbackParam &&
		subtle.ConstantTimeCompare([]byte(cb.state), []byte(cb.login.State)) == 1
	return cb
}

// handleCallback finishes a login. Only the browser that started it can:
// the state parameter must be the one sealed in this browser's login
// cookie, unexpired, before anything is consumed, so a stranger who saw the
// state cannot spend it. The code is exchanged with the PKCE verifier and
// the ID token's nonce checked by the provider; then a used-marker (a
// store lock never unlocked, until the login would have expired) makes the
// login single use. The marker is written only for a code the provider
// accepted, so no unauthenticated request adds to the store.
func (u *ui) handleCallback(w http.ResponseWriter, r *http.Request) *httpError {
	cb := u.readCallback(r)
	if cb.bound || cb.loginErr != nil {
		// This browser's login ends here, or it has none worth keeping;
		// a callback for someone else's state leaves its login alone.
		u.clearCookie(w, loginCookie)
	}
	if cb.errCode != "" {
		return &httpError{status: http.StatusForbidden, code: "login_failed",
			public: u.Provider.Name() + " did not log you in: " + providerErrorMessage(cb.errCode),
			cause:  fmt.Errorf("provider error %q: %q (state bound to this browser: %t)", cb.errCode, cb.errDescription, cb.bound)}
	}
	expired := &httpError{status: http.StatusBadRequest, code: "login_expired", public: "This login link has expired or was already used. Start again."}
	switch {
	case cb.state == "" || cb.code == "":
		return withCause(expired, "callback without state or code")
	case len(cb.state) > maxCallbackParam || len(cb.code) > maxCallbackParam:
		return withCause(expired, "callback state or code too long")
	case cb.loginErr != nil:
		return withCause(expired, "login cookie: "+cb.loginErr.Error())
	case !cb.bound:
		return withCause(expired, "state not bound to this browser")
	}
	id, toks, err := u.Provider.Exchange(r.Context(), cb.login, cb.code)
	switch {
	case errors.Is(err, oidc.ErrNotAllowed):
		return &httpError{status: http.StatusForbidden, code: "not_allowed",
			public: "Your account is not in a group allowed to use this registry. Ask your administrator.", cause: err}
	case errors.Is(err, oidc.ErrUnavailable):
		return &httpError{status: http.StatusBadGateway, code: "idp_unavailable",
			public: u.Provider.Name() + " cannot be reached right now. Try again in a minute.", cause: err}
	case err != nil:
		return &httpError{status: http.StatusBadRequest, code: "login_failed", public: "The login could not be completed. Start again.", cause: err}
	}
	_, fresh, err := u.Sessions.TryLock(r.Context(), "login-used:"+digestHex(cb.login.State), cb.expires.Sub(u.s.now())+usedMarkerSlack)
	switch {
	case err != nil:
		return unavailable("session store", err)
	case !fresh:
		return withCause(expired, "login already completed once")
	}
	if _, err := u.Accounts.Login(r.Context(), id, toks); err != nil {
		return loginError(err)
	}
	// A new session on every login: the cookie value is never reused
	// (no session fixation), and the old session, if any, is ended.
	if old, err := r.Cookie(u.cookieName(sessionCookie)); err == nil {
		_ = u.Sessions.DeleteSession(r.Context(), digestHex(old.Value))
	}
	value := randomToken()
	now := u.s.now()
	sess := store.Session{
		ID: digestHex(value), Subject: id.Subject, Username: id.Username, Email: id.Email,
		CSRF: randomToken(), IDToken: toks.IDToken, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: minTime(now.Add(u.MaxAge), now.Add(u.IdleTimeout)),
	}
	if err := u.Sessions.CreateSession(r.Context(), sess); err != nil {
		return unavailable("session store", err)
	}
	u.setCookie(w, sessionCookie, value, u.MaxAge)
	u.s.log.InfoContext(r.Context(), "login", "request_id", requestID(r.Context()), "user", id.Username,
		"groups", id.Groups, "refresh_token", toks.RefreshToken != "", "client_ip", u.s.clientIP(r))
	http.Redirect(w, r, u.afterLogin(w, r), http.StatusSeeOther)
	return nil
}

// providerErrorMessage says in our own words what an authorization error
// response's code means (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6).
// The provider's text is never shown: whoever crafts the callback link
// chooses it.
func providerErrorMessage(code string) string {
	switch code {
	case "access_denied":
		return "the request was denied. If you did not cancel it, ask your administrator for access."
	case "login_required", "interaction_required", "consent_required", "account_selection_required":
		return "it needs you to sign in or confirm there first. Try again."
	case "temporarily_unavailable", "server_error":
		return "it is unavailable right now. Try again in a minute."
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope":
		return "it refused this registry's login request, which is a configuration problem. Ask your administrator."
	default:
		return "the login failed. Try again."
	}
}

// loginError answers a login the account rules refused.
func loginError(err error) *httpError {
	switch {
	case errors.Is(err, accounts.ErrBadUsername):
		return &httpError{status: http.StatusForbidden, code: "bad_username",
			public: "Your account's username cannot be used with docker login (it is empty, too long, or contains ':', '/', white space or control characters). Ask your administrator.", cause: err}
	case errors.Is(err, accounts.ErrUsernameTaken):
		return &httpError{status: http.StatusConflict, code: "username_taken",
			public: "Your username already belongs to another account here. Ask your administrator.", cause: err}
	}
	return unavailable("user store", err)
}

func (u *ui) handleLogout(w http.ResponseWriter, r *http.Request, sess signedIn) *httpError {
	if err := u.Sessions.DeleteSession(r.Context(), sess.ID); err != nil {
		return unavailable("session store", err)
	}
	u.clearCookie(w, sessionCookie)
	target := "/"
	if l := u.Provider.LogoutURL(r.Context(), sess.IDToken, u.s.realm+"/"); l != "" {
		target = l
	}
	u.s.log.InfoContext(r.Context(), "logout", "request_id", requestID(r.Context()), "user", sess.Username)
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// normalOrigin returns scheme://host[:port] in lower case without the
// scheme's default port, so that equal origins compare equal.
func normalOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return s
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host
}

func digestHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// randomToken returns 256 bits from crypto/rand, base64url.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func internal(err error) *httpError {
	return &httpError{status: http.StatusInternalServerError, code: "server_error", public: "Something went wrong on our side.", cause: err}
}

func unavailable(what string, err error) *httpError {
	return &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		public: "The " + what + " is unavailable right now. Try again in a minute.", cause: err}
}
