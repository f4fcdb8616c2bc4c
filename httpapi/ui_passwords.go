package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/groups"
	"github.com/registry-bridge/bridge/store"
)

// lifetimeChoice is an option of the page's "expires after" menu.
type lifetimeChoice struct {
	Value, Label string
	Default      bool
}

// lifetimeChoices lists the menu's options the limits allow; newUI
// computes them once.
func lifetimeChoices(l accounts.Limits) []lifetimeChoice {
	var out []lifetimeChoice
	for _, c := range []struct {
		d     time.Duration
		label string
	}{{24 * time.Hour, "1 day"}, {7 * 24 * time.Hour, "7 days"}, {30 * 24 * time.Hour, "30 days"}, {90 * 24 * time.Hour, "90 days"}, {365 * 24 * time.Hour, "1 year"}} {
		if c.d <= l.MaxLifetime {
			out = append(out, lifetimeChoice{Value: c.d.String(), Label: c.label, Default: c.d == l.DefaultLifetime})
		}
	}
	if !slices.ContainsFunc(out, func(c lifetimeChoice) bool { return c.Default }) {
		out = append(out, lifetimeChoice{Value: l.DefaultLifetime.String(), Label: l.DefaultLifetime.String() + " (default)", Default: true})
	}
	return out
}

// notices are the page's fixed confirmations, chosen by ?done=.
var notices = map[string]string{
	"revoked":     "The password was revoked. Clients using it are refused from now on.",
	"revoked-all": "All your app passwords were revoked.",
}

func (u *ui) handleIndex(w http.ResponseWriter, r *http.Request) *httpError {
	sess, ok, herr := u.currentSession(r)
	if herr != nil {
		return herr
	}
	if !ok {
		return u.render(w, http.StatusOK, "login.html", map[string]any{"Title": u.Title, "IdPName": u.Provider.Name()})
	}
	who, herr := u.signedIn(w, r, sess)
	if herr != nil {
		return herr
	}
	list, err := u.Accounts.Passwords(r.Context(), who.Person)
	if err != nil {
		return unavailable("password store", err)
	}
	data := map[string]any{
		"Title": u.Title, "Session": sess, "CSRF": sess.CSRF, "Registry": u.Registry,
		"Passwords": list, "Lifetimes": u.lifetimes, "Notice": notices[r.URL.Query().Get("done")],
	}
	if who.StandingErr == nil {
		data["Groups"], data["CanRevalidate"] = who.Standing.Groups, who.Standing.Revalidated
		data["Allowances"] = u.s.policy().Summary(groups.Subject{Username: sess.Username, Groups: who.Standing.Groups})
	} else {
		data["GroupsUnknown"], data["CanRevalidate"] = true, true
	}
	return u.render(w, http.StatusOK, "index.html", data)
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

// mint translates a mint request into the account rules' call and back.
func (u *ui) mint(ctx context.Context, who signedIn, req mintRequest, via string) (mintResponse, *httpError) {
	var lifetime time.Duration
	if req.Lifetime != "" {
		d, err := time.ParseDuration(req.Lifetime)
		if err != nil || d <= 0 {
			return mintResponse{}, badRequest("lifetime %q: want a duration such as 720h", truncate(strings.ToValidUTF8(req.Lifetime, "?"), 20))
		}
		lifetime = d
	}
	m, err := u.Accounts.Mint(ctx, accounts.MintRequest{Owner: who.Person, Name: req.Name, Lifetime: lifetime, ReadOnly: req.ReadOnly, Via: via})
	if err != nil {
		return mintResponse{}, accountError(err)
	}
	rec := m.Record
	u.s.metrics.passwordsMinted.WithLabelValues(via).Inc()
	u.s.log.InfoContext(ctx, "password minted", "request_id", requestID(ctx), "user", rec.Username,
		"password_id", rec.ID, "name", rec.Name, "expires", rec.ExpiresAt, "read_only", rec.ReadOnly, "by", via)
	return mintResponse{ID: rec.ID, Username: rec.Username, Password: m.Password, Name: rec.Name,
		ExpiresAt: rec.ExpiresAt, ReadOnly: rec.ReadOnly, Registry: u.Registry}, nil
}

// accountError answers what the account rules refused, in their words
// where those are meant for people.
func accountError(err error) *httpError {
	var rl *accounts.RateLimitError
	switch {
	case errors.As(err, &rl):
		secs := int(rl.RetryAfter.Round(time.Second) / time.Second)
		e := &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
			public: fmt.Sprintf("You have created many passwords in a short time. Try again in %s.", rl.RetryAfter.Round(time.Second)), cause: err}
		e.header = http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}
		return e
	case errors.Is(err, accounts.ErrLimit):
		return &httpError{status: http.StatusConflict, code: "too_many_passwords",
			public: "You have as many live app passwords as allowed. Revoke one you no longer use, then create the new one.", cause: err}
	case errors.Is(err, accounts.ErrInvalid):
		return &httpError{status: http.StatusBadRequest, code: "invalid_request", public: accounts.Public(err), cause: err}
	case errors.Is(err, accounts.ErrNotFound):
		return &httpError{status: http.StatusNotFound, code: "not_found", public: "no such password", cause: err}
	case errors.Is(err, accounts.ErrSuspended):
		return &httpError{status: http.StatusUnauthorized, code: "login_required", public: "Your login is no longer valid. Log in again.", cause: err}
	case errors.Is(err, accounts.ErrUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			public: "Your groups cannot be confirmed with the identity provider right now. Try again in a minute.", cause: err}
	}
	return unavailable("password store", err)
}

func (u *ui) handleMint(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	f := r.PostForm // read, bounded, by readForm
	resp, herr := u.mint(r.Context(), who, mintRequest{
		Name: f.Get("name"), Lifetime: f.Get("lifetime"), ReadOnly: f.Get("read_only") == "true",
	}, store.CreatedByBrowser)
	if herr != nil {
		return herr
	}
	return u.render(w, http.StatusOK, "minted.html", map[string]any{
		"Title": u.Title, "Session": who.Session, "CSRF": who.CSRF, "Username": resp.Username, "Password": resp.Password,
		"Name": resp.Name, "ExpiresAt": resp.ExpiresAt, "ReadOnly": resp.ReadOnly, "Registry": u.Registry,
	})
}

// revoke deletes one of the person's own passwords. Another person's id
// gets the same answer as an unknown one.
func (u *ui) revoke(ctx context.Context, who signedIn, id string) *httpError {
	p, err := u.Accounts.Revoke(ctx, who.Person, id)
	if err != nil {
		return accountError(err)
	}
	u.s.metrics.passwordsRevoked.Inc()
	u.s.log.InfoContext(ctx, "password revoked", "request_id", requestID(ctx), "user", who.Username, "password_id", p.ID, "name", p.Name)
	return nil
}

func (u *ui) handleRevoke(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	if herr := u.revoke(r.Context(), who, r.PathValue("id")); herr != nil {
		return herr
	}
	http.Redirect(w, r, "/?done=revoked", http.StatusSeeOther)
	return nil
}

// handleRevokeAll asks for a confirmation first: the form on the page
// posts without confirm=yes and gets a page that posts with it.
func (u *ui) handleRevokeAll(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	list, err := u.Accounts.Passwords(r.Context(), who.Person)
	if err != nil {
		return unavailable("password store", err)
	}
	if r.PostForm.Get("confirm") != "yes" {
		return u.render(w, http.StatusOK, "confirm.html", map[string]any{
			"Title": u.Title, "Session": who.Session, "CSRF": who.CSRF, "Count": len(list),
		})
	}
	for _, p := range list {
		if herr := u.revoke(r.Context(), who, p.ID); herr != nil && herr.status != http.StatusNotFound {
			return herr
		}
	}
	http.Redirect(w, r, "/?done=revoked-all", http.StatusSeeOther)
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

func (u *ui) apiSession(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	body := map[string]any{
		"username": who.Username, "email": who.Email, "groups": nonNil(who.Standing.Groups), "csrf_token": who.CSRF,
		"registry": u.Registry, "revalidated": who.Standing.Revalidated,
	}
	if who.StandingErr != nil {
		body["groups_error"] = "your groups cannot be confirmed with the identity provider right now"
	}
	return writeJSON(w, http.StatusOK, body)
}

func (u *ui) apiList(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	list, err := u.Accounts.Passwords(r.Context(), who.Person)
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

// maxJSONBytes bounds the API's request bodies.
const maxJSONBytes = 16 << 10

func (u *ui) apiCreate(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &httpError{status: http.StatusUnsupportedMediaType, code: "invalid_request", public: "send Content-Type: application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	if err != nil {
		return &httpError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
			public: fmt.Sprintf("the body is larger than %d KiB", maxJSONBytes>>10), cause: err}
	}
	var req mintRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON body: more than one value")
	}
	resp, herr := u.mint(r.Context(), who, req, store.CreatedByAPI)
	if herr != nil {
		return herr
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (u *ui) apiDelete(w http.ResponseWriter, r *http.Request, who signedIn) *httpError {
	if herr := u.revoke(r.Context(), who, r.PathValue("id")); herr != nil {
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
	case e.status == http.StatusTooManyRequests:
		heading = "Slow down"
	case e.status < 500:
		heading = "That did not work"
	case e.status == http.StatusBadGateway || e.status == http.StatusServiceUnavailable:
		heading = "Temporarily unavailable"
	}
	next, label := "/", "Back"
	if e.code == "login_expired" || e.code == "login_failed" || e.code == "login_required" {
		next, label = "/login", "Log in again"
	}
	if herr := u.render(w, e.status, "error.html", map[string]any{
		"Title": u.Title, "Heading": heading, "Message": e.public, "Next": next, "NextLabel": label,
	}); herr != nil {
		http.Error(w, e.public, e.status)
	}
}
