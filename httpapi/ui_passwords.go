package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

// lifetimeChoice is an option of the page's "expires after" menu.
type lifetimeChoice struct {
	Value, Label string
	Default      bool
}

// lifetimeChoices lists the menu's options allowed by the passwords
// configuration; newUI computes them once.
func lifetimeChoices(cfg passwords.Config) []lifetimeChoice {
	var out []lifetimeChoice
	for _, c := range []struct {
		d     time.Duration
		label string
	}{{24 * time.Hour, "1 day"}, {7 * 24 * time.Hour, "7 days"}, {30 * 24 * time.Hour, "30 days"}, {90 * 24 * time.Hour, "90 days"}, {365 * 24 * time.Hour, "1 year"}} {
		if c.d <= cfg.MaxLifetime {
			out = append(out, lifetimeChoice{Value: c.d.String(), Label: c.label, Default: c.d == cfg.DefaultLifetime})
		}
	}
	if !slices.ContainsFunc(out, func(c lifetimeChoice) bool { return c.Default }) {
		out = append(out, lifetimeChoice{Value: cfg.DefaultLifetime.String(), Label: cfg.DefaultLifetime.String() + " (default)", Default: true})
	}
	return out
}

// userGroups returns the groups the session's passwords act with now:
// the user record's (kept fresh by revalidation), else the login's.
func (u *ui) userGroups(ctx context.Context, sess store.Session) (groupsNow []string, canRevalidate bool) {
	usr, err := u.Accounts.GetUser(ctx, sess.Username)
	if err != nil || usr.Subject != sess.Subject {
		return sess.Groups, false
	}
	return usr.Groups, len(usr.RefreshToken) > 0
}

// ownPasswords lists the passwords the session's person minted. A robot
// account minted with the CLI under the same username is not theirs.
func (u *ui) ownPasswords(ctx context.Context, sess store.Session) ([]store.Password, error) {
	all, err := u.Accounts.ListPasswords(ctx, sess.Username)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(p store.Password) bool { return p.Subject != sess.Subject }), nil
}

func (u *ui) handleIndex(w http.ResponseWriter, r *http.Request) *httpError {
	sess, ok, herr := u.currentSession(r)
	if herr != nil {
		return herr
	}
	if !ok {
		return u.render(w, http.StatusOK, "login.html", map[string]any{"Title": u.Title, "IdPName": u.Provider.Name()})
	}
	list, err := u.ownPasswords(r.Context(), sess)
	if err != nil {
		return unavailable("password store", err)
	}
	gs, canRevalidate := u.userGroups(r.Context(), sess)
	allow := u.s.policy().Summary(groups.Subject{Username: sess.Username, Groups: gs})
	return u.render(w, http.StatusOK, "index.html", map[string]any{
		"Title": u.Title, "Session": sess, "CSRF": sess.CSRF, "Groups": gs, "Registry": u.Registry,
		"Allowances": allow, "Passwords": list, "Lifetimes": u.lifetimes, "CanRevalidate": canRevalidate,
	})
}

// mintRequest is what the form and the API send to mint a password.
type mintRequest struct {
	Name     string `json:"name"`
	Lifetime string `json:"lifetime"`
	ReadOnly bool   `json:"read_only"`
}

// mintResponse is shown once: on the page and in the API's answer.
type mintResponse struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Password  string    `json:"password"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires"`
	ReadOnly  bool      `json:"read_only"`
	Registry  string    `json:"registry"`
}

func (u *ui) mint(ctx context.Context, sess store.Session, req mintRequest, by string) (mintResponse, *httpError) {
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		return mintResponse{}, badRequest("give the password a name, such as \"laptop\" or \"ci\"")
	case utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name):
		return mintResponse{}, badRequest("the name must be at most %d characters", maxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return mintResponse{}, badRequest("the name must not contain control characters")
	}
	var want time.Duration
	if req.Lifetime != "" {
		d, err := time.ParseDuration(req.Lifetime)
		if err != nil {
			return mintResponse{}, badRequest("lifetime %q: want a duration such as 720h", truncate(req.Lifetime, 20))
		}
		want = d
	}
	lifetime, err := u.Passwords.Lifetime(want)
	if err != nil {
		return mintResponse{}, badRequest("%v", err)
	}
	gs, _ := u.userGroups(ctx, sess)
	m, err := passwords.Mint()
	if err != nil {
		return mintResponse{}, internal(err)
	}
	now := u.s.now().UTC().Truncate(time.Second)
	rec := store.Password{
		ID: m.ID, Subject: sess.Subject, Username: sess.Username, Groups: gs, Name: name,
		Digest: m.Digest, RefreshDigest: m.RefreshDigest, CreatedAt: now, ExpiresAt: now.Add(lifetime),
		ReadOnly: req.ReadOnly, CreatedBy: by,
	}
	if err := u.Accounts.CreatePassword(ctx, rec); err != nil {
		return mintResponse{}, unavailable("password store", err)
	}
	u.s.metrics.passwordsMinted.WithLabelValues(by).Inc()
	u.s.log.InfoContext(ctx, "password minted", "request_id", requestID(ctx), "user", sess.Username,
		"password_id", rec.ID, "name", name, "expires", rec.ExpiresAt, "read_only", rec.ReadOnly, "by", by)
	return mintResponse{ID: rec.ID, Username: rec.Username, Password: m.Password, Name: name,
		ExpiresAt: rec.ExpiresAt, ReadOnly: rec.ReadOnly, Registry: u.Registry}, nil
}

func (u *ui) handleMint(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	resp, herr := u.mint(r.Context(), sess, mintRequest{
		Name: r.PostFormValue("name"), Lifetime: r.PostFormValue("lifetime"), ReadOnly: r.PostFormValue("read_only") == "true",
	}, store.CreatedByBrowser)
	if herr != nil {
		return herr
	}
	return u.render(w, http.StatusOK, "minted.html", map[string]any{
		"Title": u.Title, "Session": sess, "CSRF": sess.CSRF, "Username": resp.Username, "Password": resp.Password,
		"Name": resp.Name, "ExpiresAt": resp.ExpiresAt, "ReadOnly": resp.ReadOnly, "Registry": u.Registry,
	})
}

// revoke deletes one of the session's own passwords. Another person's id
// gets the same answer as an unknown one.
func (u *ui) revoke(ctx context.Context, sess store.Session, id string) *httpError {
	notFound := &httpError{status: http.StatusNotFound, code: "not_found", public: "no such password"}
	if len(id) > 64 {
		return notFound
	}
	p, err := u.Accounts.GetPassword(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case err != nil:
		return unavailable("password store", err)
	case p.Subject != sess.Subject:
		return withCause(notFound, "password "+id+" belongs to "+p.Username)
	}
	if err := u.Accounts.DeletePassword(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return unavailable("password store", err)
	}
	u.s.metrics.passwordsRevoked.Inc()
	u.s.log.InfoContext(ctx, "password revoked", "request_id", requestID(ctx), "user", sess.Username, "password_id", id)
	return nil
}

func (u *ui) handleRevoke(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	if herr := u.revoke(r.Context(), sess, r.PathValue("id")); herr != nil {
		return herr
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

func (u *ui) handleRevokeAll(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	list, err := u.ownPasswords(r.Context(), sess)
	if err != nil {
		return unavailable("password store", err)
	}
	for _, p := range list {
		if herr := u.revoke(r.Context(), sess, p.ID); herr != nil && herr.status != http.StatusNotFound {
			return herr
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// passwordView is a password as the API lists it: never a secret or digest.
type passwordView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created"`
	ExpiresAt time.Time  `json:"expires"`
	LastUsed  *time.Time `json:"last_used"`
	ReadOnly  bool       `json:"read_only"`
	CreatedBy string     `json:"created_by"`
}

func (u *ui) apiSession(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	gs, canRevalidate := u.userGroups(r.Context(), sess)
	return writeJSON(w, http.StatusOK, map[string]any{
		"username": sess.Username, "email": sess.Email, "groups": nonNil(gs), "csrf_token": sess.CSRF,
		"registry": u.Registry, "revalidated": canRevalidate,
	})
}

func (u *ui) apiList(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	list, err := u.ownPasswords(r.Context(), sess)
	if err != nil {
		return unavailable("password store", err)
	}
	out := make([]passwordView, 0, len(list))
	for _, p := range list {
		v := passwordView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, ReadOnly: p.ReadOnly, CreatedBy: p.CreatedBy}
		if !p.LastUsedAt.IsZero() {
			t := p.LastUsedAt
			v.LastUsed = &t
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (u *ui) apiCreate(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &httpError{status: http.StatusUnsupportedMediaType, code: "invalid_request", public: "send Content-Type: application/json"}
	}
	var req mintRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	resp, herr := u.mint(r.Context(), sess, req, store.CreatedByAPI)
	if herr != nil {
		return herr
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (u *ui) apiDelete(w http.ResponseWriter, r *http.Request, sess store.Session) *httpError {
	if herr := u.revoke(r.Context(), sess, r.PathValue("id")); herr != nil {
		return herr
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) *httpError {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// render executes a page template into a buffer first, so a template
// error becomes a clean 500 instead of half a page.
func (u *ui) render(w http.ResponseWriter, status int, name string, data map[string]any) *httpError {
	var b strings.Builder
	if err := u.pages.ExecuteTemplate(&b, name, data); err != nil {
		return internal(err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
	return nil
}

func (u *ui) renderError(w http.ResponseWriter, e *httpError) {
	heading := "Something went wrong"
	switch {
	case e.status == http.StatusForbidden:
		heading = "Not allowed"
	case e.status == http.StatusNotFound:
		heading = "Not found"
	case e.status < 500:
		heading = "That did not work"
	case e.status == http.StatusBadGateway || e.status == http.StatusServiceUnavailable:
		heading = "Temporarily unavailable"
	}
	next, label := "/", "Back"
	if e.code == "login_expired" || e.code == "login_failed" {
		next, label = "/login", "Log in again"
	}
	if herr := u.render(w, e.status, "error.html", map[string]any{
		"Title": u.Title, "Heading": heading, "Message": e.public, "Next": next, "NextLabel": label,
	}); herr != nil {
		http.Error(w, e.public, e.status)
	}
}
