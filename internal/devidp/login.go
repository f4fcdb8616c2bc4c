package devidp

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// sessionCookie names the browser's session at the provider. It differs
// from the bridge's cookies: browsers share cookies across the ports of a host.
const sessionCookie = "devidp_session"

// page is what the HTML template shows: a message, or the login form when
// Form is set.
type page struct {
	Title    string
	Message  string
	Form     bool
	ID       string // login request id, posted back
	ClientID string
	Username string
	Error    string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · devidp (DEVELOPMENT ONLY)</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 2rem auto; padding: 0 1rem; }
.warning { background: #b00020; color: #fff; padding: .75rem; font-weight: bold; }
.error { color: #b00020; font-weight: bold; }
label { display: block; margin-top: .75rem; }
input { width: 100%; padding: .4rem; box-sizing: border-box; }
button { margin-top: 1rem; padding: .5rem 1.5rem; }
</style>
</head>
<body>
<p class="warning" role="alert">DEVELOPMENT ONLY: devidp is a test identity provider with
plain-text passwords and in-memory state. Never use it for real accounts.</p>
<h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Form}}
{{if .Error}}<p id="error" class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" value="{{.Username}}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="submit" type="submit">Sign in</button>
</form>
{{end}}
</body>
</html>
`))

func (p *Provider) render(w http.ResponseWriter, r *http.Request, status int, pg page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'") // no form-action: Chromium applies it to the redirects after the POST
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, pg); err != nil {
		p.log.ErrorContext(r.Context(), "devidp: render page", "error", err)
	}
}

func (p *Provider) renderUnknownRequest(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusBadRequest, page{
		Title:   "Sign-in request expired",
		Message: "This sign-in request is unknown or has expired. Start again from the application.",
	})
}

// showLogin answers the redirect from /authorize: a browser with a live
// session goes straight back to the client, any other sees the form.
func (p *Provider) showLogin(w http.ResponseWriter, r *http.Request) {
	ar, ok := p.store.authRequest(r.URL.Query().Get("authRequestID"))
	if !ok {
		p.renderUnknownRequest(w, r)
		return
	}
	if se, ok := p.browserSession(r); ok && !needsLogin(ar, se, p.store.now()) {
		p.finish(w, r, ar, se.subject, se.authTime, "session")
		return
	}
	p.render(w, r, http.StatusOK, page{Title: "Sign in to " + ar.clientID, Form: true, ID: ar.id, ClientID: ar.clientID, Username: ar.loginHint})
}

// needsLogin reports whether prompt=login or max_age asks for a fresh
// password entry despite the session.
func needsLogin(ar *authRequest, se session, now time.Time) bool {
	return ar.maxAge != nil && now.Sub(se.authTime) >= *ar.maxAge
}

// submitLogin checks the posted credentials; on failure it shows the form
// again with an error (status 401).
func (p *Provider) submitLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ar, ok := p.store.authRequest(r.PostForm.Get("authRequestID"))
	if !ok {
		p.renderUnknownRequest(w, r)
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	subject, err := p.store.checkPassword(username, r.PostForm.Get("password"))
	if err != nil {
		p.log.WarnContext(r.Context(), "devidp: sign-in failed", "user", username, "client_id", ar.clientID, "reason", err.Error())
		msg := "Wrong username or password."
		if errors.Is(err, errDisabled) {
			msg = "This account is disabled."
		}
		p.render(w, r, http.StatusUnauthorized, page{Title: "Sign in to " + ar.clientID, Form: true, ID: ar.id, ClientID: ar.clientID, Username: username, Error: msg})
		return
	}
	authTime := p.store.now()
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    p.store.newSession(subject, authTime),
		Path:     "/",
		HttpOnly: true,
		Secure:   strings.HasPrefix(p.issuer, "https://"),
		SameSite: http.SameSiteLaxMode,
	})
	p.finish(w, r, ar, subject, authTime, "password")
}

// finish marks the login request done and sends the browser to the
// library's callback, which redirects to the client with code and state.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, ar *authRequest, subject string, authTime time.Time, how string) {
	if err := p.store.finishLogin(ar.id, subject, authTime); err != nil {
		p.renderUnknownRequest(w, r)
		return
	}
	p.log.InfoContext(r.Context(), "devidp: signed in", "subject", subject, "client_id", ar.clientID,
		"scopes", strings.Join(ar.scopes, " "), "via", how)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), ar.id), http.StatusSeeOther)
}

func (p *Provider) browserSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	return p.store.session(c.Value)
}

// endSession ends this browser's session, then lets the library validate
// the RP-initiated logout and redirect to post_logout_redirect_uri.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		p.store.endSession(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true})
	p.op.ServeHTTP(w, r)
}

func (p *Provider) showLoggedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, page{Title: "Signed out", Message: "You are signed out of devidp."})
}
