package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

// The terminal login: RFC 8628 device authorization, approved by a
// signed-in person on /device. docs/device-login.md describes the flow,
// the routes and the limits.
//
//	POST /device/code   device authorization endpoint (unauthenticated)
//	GET  /device        the page: enter or confirm a code
//	POST /device        approve or deny (session + CSRF)
//	POST /token         grant_type=urn:ietf:params:oauth:grant-type:device_code
//	POST /revoke        RFC 7009: revoke an app password or its refresh token
//	GET  /.well-known/oauth-authorization-server   RFC 8414 metadata

// DeviceClientID is the one public client the device login serves: the
// credential helper, cmd/docker-credential-bridge.
const DeviceClientID = "docker-credential-bridge"

// grantDeviceCode is the device grant's grant_type (RFC 8628 §3.4).
const grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// User codes are eight characters of an alphabet without vowels (no
// words) and without look-alikes (0/O, 1/I/L, 5/S…): 20^8 ≈ 2^34.6
// codes, shown as XXXX-XXXX (RFC 8628 §6.1).
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
	maxUserCodeInput = 20
)

// Bounds on what the unauthenticated device authorization request may
// send.
const (
	maxDeviceFormBytes = 4 << 10
	maxClientNameLen   = 64
	maxHostLen         = 253
	maxDeviceCodeLen   = 128
)

// Wrong user codes entered on /device: each person (by subject, over
// all their sessions) may get personAttempts wrong in a row, then one
// more every personAttemptEvery; all people on a replica together
// globalAttempts, then one every globalAttemptEvery. When the replica's
// budget is spent, only people without recent wrong codes may still try,
// one code each until theirs has refilled, so that guessers cannot lock
// everyone else out. With at most max_pending codes live, a guess hits
// one with odds max_pending/20^8 (1000/2.6e10 by default).
const (
	personAttempts     = 5
	personAttemptEvery = time.Minute
	globalAttempts     = 30
	globalAttemptEvery = 6 * time.Second
	maxAttemptPeople   = 10_000
)

// DeviceStore keeps device authorizations; store.Store is one.
type DeviceStore = store.DeviceStore

// DeviceOptions turn on the terminal login; it needs the browser login
// (Options.Login) too.
type DeviceOptions struct {
	Store DeviceStore
	// Lifetime is the default lifetime of a minted password.
	Lifetime time.Duration
	// CodeLifetime is how long a code may be approved and redeemed.
	CodeLifetime time.Duration
	// Interval is the least time between polls.
	Interval time.Duration
	// MaxPending and MaxPendingPerAddress cap the authorizations in
	// flight, in the store and per client address.
	MaxPending, MaxPendingPerAddress int
}

// device is the terminal login's handlers.
type device struct {
	*DeviceOptions
	u        *ui
	attempts *attemptLimiter
}

func newDevice(u *ui, o *DeviceOptions) *device {
	return &device{DeviceOptions: o, u: u, attempts: newAttemptLimiter(u.s.now)}
}

func (d *device) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /device/code", d.handleCode)
	mux.HandleFunc("GET /device", d.u.page(d.handlePage))
	mux.HandleFunc("POST /device", d.u.page(d.u.session(d.handleDecide)))
	mux.HandleFunc("POST /revoke", d.handleRevoke)
}

// deviceCodeResponse is RFC 8628 §3.2's answer.
type deviceCodeResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// readOAuthForm reads an unauthenticated OAuth form: bounded before
// parsing, each parameter at most once (RFC 6749 §3.1), valid UTF-8.
func readOAuthForm(w http.ResponseWriter, r *http.Request, limit int64) (url.Values, *httpError) {
	if herr := readForm(w, r, limit); herr != nil {
		return nil, herr
	}
	f := r.PostForm
	for k, v := range f {
		if len(v) > 1 {
			return nil, badRequest("parameter %s given %d times", quoteTrunc(k), len(v))
		}
		if !utf8.ValidString(v[0]) {
			return nil, badRequest("parameter %s is not UTF-8", quoteTrunc(k))
		}
	}
	return f, nil
}

// printable reports whether s is at most n bytes without control
// characters.
func printable(s string, n int) bool {
	return len(s) <= n && strings.IndexFunc(s, unicode.IsControl) < 0
}

// handleCode is the device authorization endpoint (RFC 8628 §3.1–3.2).
// It is unauthenticated, so everything it stores is capped: per client
// address and in all (store.DeviceLimits), and for CodeLifetime only.
func (d *device) handleCode(w http.ResponseWriter, r *http.Request) {
	if herr := d.code(w, r); herr != nil {
		d.u.logError(r, herr)
		writeError(w, herr, "")
	}
}

func (d *device) code(w http.ResponseWriter, r *http.Request) *httpError {
	f, herr := readOAuthForm(w, r, maxDeviceFormBytes)
	if herr != nil {
		return herr
	}
	if f.Get("client_id") != DeviceClientID {
		return &httpError{status: http.StatusUnauthorized, code: "invalid_client",
			public: "unknown client_id; this server's device login serves " + DeviceClientID}
	}
	name, host := strings.TrimSpace(f.Get("client_name")), strings.TrimSpace(f.Get("host"))
	if !printable(name, maxClientNameLen) {
		return badRequest("client_name: at most %d bytes of printable text", maxClientNameLen)
	}
	if !printable(host, maxHostLen) {
		return badRequest("host: at most %d bytes of printable text", maxHostLen)
	}
	var lifetime time.Duration
	if v := f.Get("lifetime"); v != "" {
		l, err := time.ParseDuration(v)
		if err != nil || l <= 0 {
			return badRequest("lifetime %s: want a duration such as 12h", quoteTrunc(v))
		}
		if _, err := d.u.Limits.Lifetime(l); err != nil {
			return badRequest("%s", accounts.Public(err))
		}
		lifetime = l
	}
	var readOnly bool
	switch v := f.Get("read_only"); v {
	case "", "false":
	case "true":
		readOnly = true
	default:
		return badRequest("read_only: want true or false, got %s", quoteTrunc(v))
	}

	now := d.u.s.now()
	deviceCode := randomToken()
	rec := store.DeviceAuth{
		ID: digestHex(deviceCode), ClientID: DeviceClientID, ClientName: name, Host: host, ClientIP: d.u.s.clientIP(r),
		Lifetime: lifetime, ReadOnly: readOnly, CreatedAt: now, ExpiresAt: now.Add(d.CodeLifetime),
		Interval: d.Interval, State: store.DevicePending,
	}
	rec.ClientGroup = addressGroup(rec.ClientIP)
	lim := store.DeviceLimits{MaxPending: d.MaxPending, MaxPerClient: d.MaxPendingPerAddress}
	var userCode string
	for attempt := 0; ; attempt++ {
		userCode = newUserCode()
		rec.UserCode = userCodeKey(userCode)
		err := d.Store.CreateDeviceAuth(r.Context(), rec, lim)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrAlreadyExists) && attempt < 3:
			continue // a user code collision
		case errors.Is(err, store.ErrTooManyFromClient):
			// slow_down is the token endpoint's (RFC 8628 §3.5); here it
			// is RFC 6749's temporarily_unavailable, with Retry-After.
			return retryLater(http.StatusTooManyRequests, "temporarily_unavailable",
				fmt.Sprintf("too many device logins in progress from your address (at most %d); finish or wait for one to expire", d.MaxPendingPerAddress), d.CodeLifetime, err)
		case errors.Is(err, store.ErrTooManyPending):
			return retryLater(http.StatusServiceUnavailable, "temporarily_unavailable",
				"too many device logins are in progress on this server; try again in a few minutes", d.CodeLifetime, err)
		default:
			return unavailable("device login store", err)
		}
		break
	}
	shown := formatUserCode(userCode)
	d.u.s.log.InfoContext(r.Context(), "device login started", "request_id", requestID(r.Context()),
		"client_ip", rec.ClientIP, "host", logSafe(host, 64), "client_name", logSafe(name, 64), "read_only", readOnly)
	verify := d.u.s.realm + "/device"
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, deviceCodeResponse{
		DeviceCode: deviceCode, UserCode: shown, VerificationURI: verify,
		VerificationURIComplete: verify + "?user_code=" + url.QueryEscape(shown),
		ExpiresIn:               int(d.CodeLifetime / time.Second), Interval: int(d.Interval / time.Second),
	})
}

// retryLater is a refusal with a Retry-After.
func retryLater(status int, code, public string, after time.Duration, cause error) *httpError {
	return &httpError{status: status, code: code, public: public, cause: cause,
		header: http.Header{"Retry-After": {strconv.Itoa(max(int(after/time.Second), 1))}}}
}

// newUserCode returns userCodeLength characters of userCodeAlphabet from
// crypto/rand, without modulo bias.
func newUserCode() string {
	const limit = 256 - 256%len(userCodeAlphabet)
	out := make([]byte, 0, userCodeLength)
	var buf [16]byte
	for len(out) < userCodeLength {
		_, _ = rand.Read(buf[:]) // never fails on supported platforms
		for _, b := range buf {
			if int(b) < limit && len(out) < userCodeLength {
				out = append(out, userCodeAlphabet[int(b)%len(userCodeAlphabet)])
			}
		}
	}
	return string(out)
}

func formatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// normalUserCode reads a user code as people type it: any case, with or
// without the dash or spaces. ok is false unless it has the code's form.
func normalUserCode(s string) (code string, ok bool) {
	if len(s) > maxUserCodeInput {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
		case r < utf8.RuneSelf && strings.IndexByte(userCodeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != userCodeLength {
		return "", false
	}
	return b.String(), true
}

// userCodeKey is the store's name for a user code.
func userCodeKey(code string) string { return digestHex("user-code:" + code) }

// lookup finds the pending authorization of a typed user code, counting
// wrong ones against the person's (subject's) and the replica's attempts.
func (d *device) lookup(ctx context.Context, subject, typed string) (store.DeviceAuth, string, *httpError) {
	switch d.attempts.allow(subject) {
	case refusedPerson:
		return store.DeviceAuth{}, "", &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
			public: "Too many wrong codes. Wait a few minutes, then enter the code exactly as the terminal shows it."}
	case refusedGlobal:
		return store.DeviceAuth{}, "", &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
			public: "Too many wrong codes have been entered on this server recently. Wait a minute, then enter the code exactly as the terminal shows it."}
	}
	wrong := &httpError{status: http.StatusBadRequest, code: "invalid_code",
		public: "That code is not valid, has expired or was used already. Check the terminal and try again, or start the login again there."}
	code, ok := normalUserCode(typed)
	if !ok {
		d.attempts.fail(subject)
		return store.DeviceAuth{}, "", withCause(wrong, "malformed user code")
	}
	rec, err := d.Store.GetDeviceAuthByUserCode(ctx, userCodeKey(code))
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.attempts.fail(subject)
		return store.DeviceAuth{}, "", withCause(wrong, "unknown or expired user code")
	case err != nil:
		return store.DeviceAuth{}, "", unavailable("device login store", err)
	case rec.State != store.DevicePending:
		return store.DeviceAuth{}, "", withCause(wrong, "user code already "+string(rec.State))
	}
	return rec, formatUserCode(code), nil
}

// handlePage is GET /device: signed out, a login button; signed in, the
// code form, or with ?user_code= what is asking and the approve and deny
// buttons.
func (d *device) handlePage(w http.ResponseWriter, r *http.Request) *httpError {
	u := d.u
	sess, ok, herr := u.currentSession(r)
	if herr != nil {
		return herr
	}
	data := map[string]any{"Title": u.Title}
	if !ok {
		// The login comes back here, to the same code: /login takes the
		// code (checked for its form, never a URL) and remembers it.
		login := "/login?next=device"
		if code, ok := normalUserCode(r.URL.Query().Get("user_code")); ok {
			login += "&user_code=" + code
		}
		data["SignIn"], data["IdPName"], data["LoginURL"] = true, u.Provider.Name(), login
		return u.render(w, http.StatusOK, "device.html", data)
	}
	who, herr := u.signedIn(w, r, sess)
	if herr != nil {
		return herr
	}
	data["Session"], data["CSRF"] = who.Session, who.CSRF
	typed := r.URL.Query().Get("user_code")
	if typed == "" {
		return u.render(w, http.StatusOK, "device.html", data)
	}
	rec, shown, herr := d.lookup(r.Context(), who.Subject, typed)
	if herr != nil {
		u.logError(r, herr)
		data["Error"] = herr.public
		return u.render(w, herr.status, "device.html", data)
	}
	data["Auth"], data["UserCode"], data["Lifetime"] = rec, shown, humanDuration(d.lifetime(rec))
	return u.render(w, http.StatusOK, "device.html", data)
}

// handleDecide is POST /device: the signed-in person approves or denies.
// Whoever approves owns the password the terminal gets; a decided code
// cannot be decided again, by them or anyone.
func (d *device) handleDecide(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	u := d.u
	f := r.PostForm // read, bounded, by readForm
	var approve bool
	switch f.Get("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		return badRequest("decision: want approve or deny")
	}
	rec, _, herr := d.lookup(r.Context(), who.Subject, f.Get("user_code"))
	if herr != nil {
		return herr
	}
	if approve {
		// The password is minted at the terminal's next poll; refuse here,
		// where the person sees it, what the mint would refuse now (the
		// code stays pending: they may fix it and approve again).
		if err := u.Accounts.CanMint(r.Context(), accounts.PersonPrincipal(who.Subject, who.Username)); err != nil {
			herr := accountError(err)
			herr.public = "Not approved: " + herr.public
			return herr
		}
	}
	err := d.Store.DecideDeviceAuth(r.Context(), rec.ID, approve, who.Subject, who.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &httpError{status: http.StatusBadRequest, code: "invalid_code", public: "That code has expired. Start the login again in the terminal.", cause: err}
	case errors.Is(err, store.ErrNotPending):
		return &httpError{status: http.StatusConflict, code: "already_decided", public: "That code was approved or denied already.", cause: err}
	case err != nil:
		return unavailable("device login store", err)
	}
	u.s.log.InfoContext(r.Context(), "device login decided", "request_id", requestID(r.Context()), "user", who.Username,
		"approved", approve, "device_ip", rec.ClientIP, "host", logSafe(rec.Host, 64), "client_ip", u.s.clientIP(r))
	return u.render(w, http.StatusOK, "device.html", map[string]any{
		"Title": u.Title, "Session": who.Session, "CSRF": who.CSRF, "Done": true, "Approved": approve,
		"Host": cmp.Or(rec.Host, rec.ClientIP), "Name": passwordName(rec),
	})
}

// humanDuration writes whole days or hours in words, else as Go does.
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	}
	return d.String()
}

// lifetime is the lifetime the minted password gets.
func (d *device) lifetime(rec store.DeviceAuth) time.Duration {
	if rec.Lifetime > 0 {
		return rec.Lifetime
	}
	return d.Lifetime
}

// passwordName is the minted password's name: "device: <host>".
func passwordName(rec store.DeviceAuth) string {
	name := "device: " + cmp.Or(rec.Host, rec.ClientIP)
	if utf8.RuneCountInString(name) > accounts.MaxNameLength {
		name = string([]rune(name)[:accounts.MaxNameLength])
	}
	return name
}

// deviceTokenResponse is the device grant's answer: the app password
// (access_token, used as the Basic password with username) and its
// refresh token, which Docker and containerd keep as the identity token
// and trade at POST /token (grant_type=refresh_token).
type deviceTokenResponse struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int       `json:"expires_in"`
	RefreshToken string    `json:"refresh_token"`
	Username     string    `json:"username"`
	PasswordID   string    `json:"password_id"`
	Name         string    `json:"name"`
	ExpiresAt    time.Time `json:"expires_at"`
	ReadOnly     bool      `json:"read_only"`
}

// deviceError is a device grant refusal of RFC 8628 §3.5.
func deviceError(code, public string) *httpError {
	return &httpError{status: http.StatusBadRequest, code: code, public: public}
}

// deviceToken answers the device grant (RFC 8628 §3.4–3.5). The poll is
// one atomic store step; the first timely poll after approval consumes
// the code and mints the password, owned by whoever approved it.
func (s *Server) deviceToken(w http.ResponseWriter, r *http.Request, req tokenRequest, ev *tokenEvent) *httpError {
	d := s.device
	if d == nil {
		return &httpError{status: http.StatusBadRequest, code: "unsupported_grant_type", public: "this server has no device login"}
	}
	if req.clientID != DeviceClientID {
		return &httpError{status: http.StatusUnauthorized, code: "invalid_client", public: "unknown client_id"}
	}
	if len(req.secret) > maxDeviceCodeLen {
		ev.reason = "device_expired"
		return deviceError("expired_token", "the device code has expired; start the login again")
	}
	rec, outcome, err := d.Store.PollDeviceAuth(r.Context(), digestHex(req.secret))
	switch {
	case errors.Is(err, store.ErrNotFound):
		ev.reason = "device_expired"
		return deviceError("expired_token", "the device code has expired or is unknown; start the login again")
	case err != nil:
		ev.reason = "store_unavailable"
		s.metrics.storeErrors.Inc()
		return unavailable("device login store", err)
	case outcome == store.PollTooFast:
		ev.reason = "device_slow_down"
		return deviceError("slow_down", fmt.Sprintf("polling too fast; wait at least %ds between requests", int(rec.Interval/time.Second)))
	case outcome == store.PollRedeemed:
	case rec.State == store.DevicePending:
		ev.reason = "device_pending"
		return deviceError("authorization_pending", "waiting for the code to be approved in the browser")
	case rec.State == store.DeviceDenied:
		ev.reason = "device_denied"
		return deviceError("access_denied", "the login was denied in the browser")
	default:
		ev.reason = "device_used"
		return deviceError("invalid_grant", "the device code was used already; start the login again")
	}
	m, err := d.u.Accounts.Mint(r.Context(), accounts.MintRequest{
		Owner: accounts.PersonPrincipal(rec.Subject, rec.Username), Name: passwordName(rec),
		Lifetime: d.lifetime(rec), ReadOnly: rec.ReadOnly, Via: store.CreatedByDevice,
	})
	if err != nil {
		ev.reason = "device_mint"
		herr := accountError(err)
		if herr.status < 500 {
			herr.status, herr.code = http.StatusBadRequest, "access_denied"
			return herr
		}
		// A store or identity provider outage may pass: the code goes
		// back to approved, and the terminal's next poll tries again.
		if rerr := d.Store.ReleaseDeviceAuth(r.Context(), rec.ID); rerr != nil {
			s.log.ErrorContext(r.Context(), "device login: cannot release the code after a failed mint", "request_id", requestID(r.Context()),
				"user", rec.Username, "err", rerr.Error())
			return herr
		}
		s.log.WarnContext(r.Context(), "device login: mint failed, the code stays approved", "request_id", requestID(r.Context()),
			"user", rec.Username, "err", err.Error())
		ev.reason = "device_mint_retry"
		return deviceError("authorization_pending", "approved, but the password cannot be made right now ("+herr.public+"); the next poll tries again")
	}
	refresh, err := passwords.RefreshToken(m.Password)
	if err != nil {
		return internal(err)
	}
	p := m.Record
	ev.rec, ev.hasRec = p, true
	s.metrics.passwordsMinted.WithLabelValues(store.CreatedByDevice).Inc()
	s.log.InfoContext(r.Context(), "password minted", "request_id", requestID(r.Context()), "user", p.Username,
		"password_id", p.ID, "name", p.Name, "expires", p.ExpiresAt, "read_only", p.ReadOnly, "by", store.CreatedByDevice)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return writeJSON(w, http.StatusOK, deviceTokenResponse{
		AccessToken: m.Password, TokenType: "app_password", ExpiresIn: int(p.ExpiresAt.Sub(s.now()) / time.Second),
		RefreshToken: refresh, Username: p.Username, PasswordID: p.ID, Name: p.Name, ExpiresAt: p.ExpiresAt, ReadOnly: p.ReadOnly,
	})
}

// handleRevoke is RFC 7009 token revocation: whoever holds an app
// password or its refresh token may revoke it (possession is the
// authentication). As the RFC says, an unknown or wrong token gets the
// same 200 as a revoked one.
func (d *device) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if herr := d.revoke(w, r); herr != nil {
		d.u.logError(r, herr)
		writeError(w, herr, "")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (d *device) revoke(w http.ResponseWriter, r *http.Request) *httpError {
	f, herr := readOAuthForm(w, r, maxDeviceFormBytes)
	if herr != nil {
		return herr
	}
	token := strings.TrimSpace(f.Get("token"))
	if token == "" {
		return badRequest("missing token")
	}
	cred, err := passwords.Parse(token)
	if err != nil {
		return nil
	}
	rec, err := d.u.s.passwords.GetPassword(r.Context(), cred.ID)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return unavailable("password store", err)
	}
	if !found {
		rec = store.Password{Digest: passwords.DummyDigest, RefreshDigest: passwords.DummyDigest}
	}
	if !cred.Matches(rec.Digest, rec.RefreshDigest) || !found {
		return nil
	}
	if _, err := d.u.Accounts.Revoke(r.Context(), accounts.OwnerOf(rec), rec.ID); err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return unavailable("password store", err)
	}
	d.u.s.metrics.passwordsRevoked.Inc()
	d.u.s.log.InfoContext(r.Context(), "password revoked", "request_id", requestID(r.Context()), "user", rec.Username,
		"password_id", rec.ID, "name", rec.Name, "by", "revocation_endpoint", "client_ip", d.u.s.clientIP(r))
	return nil
}

// metadata is RFC 8414 authorization server metadata.
type metadata struct {
	Issuer                      string   `json:"issuer"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint,omitempty"`
	RevocationEndpoint          string   `json:"revocation_endpoint,omitempty"`
	GrantTypesSupported         []string `json:"grant_types_supported"`
	ResponseTypesSupported      []string `json:"response_types_supported"`
	TokenEndpointAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                     string   `json:"jwks_uri"`
}

// handleMetadata serves /.well-known/oauth-authorization-server, from
// which the credential helper learns the endpoints given only the
// bridge's URL.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	m := metadata{
		Issuer: s.realm, TokenEndpoint: s.realm + "/token", JWKSURI: s.realm + "/.well-known/jwks.json",
		GrantTypesSupported:      []string{grantPassword, grantRefresh},
		ResponseTypesSupported:   []string{},
		TokenEndpointAuthMethods: []string{"none", "client_secret_basic"},
	}
	if s.device != nil {
		m.DeviceAuthorizationEndpoint = s.realm + "/device/code"
		m.RevocationEndpoint = s.realm + "/revoke"
		m.GrantTypesSupported = append(m.GrantTypesSupported, grantDeviceCode)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = writeJSON(w, http.StatusOK, m)
}

// attemptBucket is a token bucket: tokens at time at.
type attemptBucket struct {
	tokens float64
	at     time.Time
}

// attemptLimiter bounds wrong user codes per person and per replica,
// with token buckets.
type attemptLimiter struct {
	now    func() time.Time
	mu     sync.Mutex
	global attemptBucket
	people map[string]*attemptBucket // by subject
}

func newAttemptLimiter(now func() time.Time) *attemptLimiter {
	return &attemptLimiter{now: now, global: attemptBucket{tokens: globalAttempts, at: now()}, people: map[string]*attemptBucket{}}
}

// refill brings b up to date: one token per every, up to burst.
func refill(b *attemptBucket, now time.Time, burst float64, every time.Duration) {
	b.tokens = min(burst, b.tokens+float64(now.Sub(b.at))/float64(every))
	b.at = now
}

// attemptVerdict is what allow decides.
type attemptVerdict int

const (
	allowed       attemptVerdict = iota
	refusedPerson                // the person's own attempts are spent
	refusedGlobal                // the replica's are, and the person failed lately
)

// allow reports whether person may try a code now; it spends nothing.
// A person without recent wrong codes may try even when the replica's
// budget is spent.
func (l *attemptLimiter) allow(person string) attemptVerdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	refill(&l.global, now, globalAttempts, globalAttemptEvery)
	b, ok := l.people[person]
	if ok {
		refill(b, now, personAttempts, personAttemptEvery)
		if b.tokens < 1 {
			return refusedPerson
		}
	}
	if l.global.tokens < 1 && ok && b.tokens < personAttempts {
		return refusedGlobal
	}
	return allowed
}

// fail spends one attempt of person's and of the replica's.
func (l *attemptLimiter) fail(person string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	refill(&l.global, now, globalAttempts, globalAttemptEvery)
	l.global.tokens = max(l.global.tokens-1, 0)
	b, ok := l.people[person]
	if !ok {
		if len(l.people) >= maxAttemptPeople {
			for k, v := range l.people { // drop the refilled ones, they carry nothing
				if refill(v, now, personAttempts, personAttemptEvery); v.tokens >= personAttempts {
					delete(l.people, k)
				}
			}
			if len(l.people) >= maxAttemptPeople {
				clear(l.people) // forgives some people a few attempts; the global bucket still holds
			}
		}
		b = &attemptBucket{tokens: personAttempts, at: now}
		l.people[person] = b
	}
	refill(b, now, personAttempts, personAttemptEvery)
	b.tokens = max(b.tokens-1, 0)
}
