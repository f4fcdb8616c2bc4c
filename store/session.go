package store

import "time"

// Session is a browser session after login. The cookie holds a random
// value; the store keys the session by that value's digest (ID), so a copy
// of the store holds no usable session.
type Session struct {
	// ID is the hex SHA-256 of the cookie value; it names the record.
	ID       string `json:"id"`
	Subject  string `json:"sub"`
	Username string `json:"user"`
	Email    string `json:"email,omitempty"`
	// The groups a session's person acts with are not kept here: they are
	// the user record's, as accounts.Accounts.Standing says (a session
	// written by an older version may still hold a "groups" field; it is
	// ignored).
	// CSRF is the session's anti-CSRF token, sent back in forms and in
	// the X-CSRF-Token header of API calls.
	CSRF string `json:"csrf"`
	// IDToken is the login's ID token, the hint for RP-initiated logout.
	IDToken   string    `json:"idt,omitempty"`
	CreatedAt time.Time `json:"created"`
	// LastSeenAt is the last request's time, written (by TouchSession)
	// at most once a minute. Backends keep it to the millisecond.
	LastSeenAt time.Time `json:"seen"`
	// ExpiresAt is min(CreatedAt + max age, LastSeenAt + idle timeout);
	// TouchSession moves it together with LastSeenAt. Backends keep it to
	// the millisecond.
	ExpiresAt time.Time `json:"expires"`
}

// User is what the bridge knows of a person who logged in with the
// browser: the groups their passwords act with, and the means to re-read
// them from the identity provider.
type User struct {
	// Username names the record; it is the passwords' Username.
	Username string   `json:"user"`
	Subject  string   `json:"sub"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	// RefreshToken is the provider's refresh token, sealed (encrypted)
	// by the oidc package; empty when the provider gave none.
	RefreshToken []byte `json:"rt,omitempty"`
	// RevalidatedAt is when Groups were last read from the provider.
	RevalidatedAt time.Time `json:"revalidated"`
	// UnreachableSince is set when revalidation first failed because the
	// provider could not be reached, and cleared on success.
	UnreachableSince time.Time `json:"unreachable,omitzero"`
	// NextAttemptAt, after a failed revalidation, is when the provider
	// may be asked again; until then the outage is not retried on every
	// request.
	NextAttemptAt time.Time `json:"next_attempt,omitzero"`
	// Suspended, when not empty, says why every password of this user is
	// refused until they log in again.
	Suspended string `json:"suspended,omitempty"`
	// ExpiresAt: the record may go once no password of the user can
	// still be valid.
	ExpiresAt time.Time `json:"expires"`
}
