package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors; backends wrap them with %w.
var (
	// ErrNotFound: no such record, or it has expired.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a record with this id exists.
	ErrAlreadyExists = errors.New("already exists")
)

// Creator values for Password.CreatedBy.
const (
	CreatedByCLI     = "cli"
	CreatedByBrowser = "browser"
	CreatedByAPI     = "api"
	// CreatedByWorkload: a workload's refresh token (accounts.Workload).
	CreatedByWorkload = "workload"
	// CreatedByDevice ("device") is in device.go.
)

// Password is an app password's record. It holds digests of the secret and
// of the refresh token derived from it, never the secrets themselves.
type Password struct {
	// ID is the public, random part of the password; it names the record.
	ID string `json:"id"`
	// Subject is the owner's stable IdP subject ("sub"); for robot
	// accounts minted with the CLI it is "cli:" + Username.
	Subject string `json:"sub"`
	// Username is the docker login username and the key of the user index.
	Username string `json:"user"`
	// Groups is the owner's groups when the password was minted.
	Groups []string `json:"groups,omitempty"`
	// Name is the owner's label for the password ("laptop", "ci").
	Name string `json:"name,omitempty"`
	// Digest is SHA-256 of the password's secret part.
	Digest []byte `json:"d"`
	// RefreshDigest is SHA-256 of the refresh token's secret part.
	RefreshDigest []byte `json:"rd,omitempty"`
	// CreatedAt is when the password was minted. Backends keep times to
	// the millisecond.
	CreatedAt time.Time `json:"created"`
	// ExpiresAt is when the record stops existing; it is required.
	ExpiresAt time.Time `json:"expires"`
	// LastUsedAt is zero until the password is first used.
	LastUsedAt time.Time `json:"last_used,omitzero"`
	// ReadOnly passwords are never granted push or delete.
	ReadOnly bool `json:"ro,omitempty"`
	// CreatedBy is one of the CreatedBy constants.
	CreatedBy string `json:"by,omitempty"`
}

// EventKind says what an Event invalidates.
type EventKind int

const (
	// PasswordChanged: the password Event.ID was revoked or changed.
	PasswordChanged EventKind = iota + 1
	// Reset: events may have been lost (for example the backend's
	// subscription reconnected); drop every cached record.
	Reset
	// UserChanged: the user record Event.ID (a username) was written or
	// deleted.
	UserChanged
)

// Event tells caches that records changed elsewhere.
type Event struct {
	Kind EventKind
	// ID is the password id for PasswordChanged, the username for
	// UserChanged, and empty for Reset.
	ID string
}

// Store is the bridge's persistence. Implementations are safe for
// concurrent use. See the package documentation for the contract.
type Store interface {
	// CreatePassword stores p under p.ID and adds it to p.Username's index.
	// It fails with ErrAlreadyExists if the id is taken, and with another
	// error if p has no ID or Username or its ExpiresAt is not in the
	// future.
	CreatePassword(ctx context.Context, p Password) error
	// GetPassword returns the password id, or ErrNotFound if there is none
	// or it has expired.
	GetPassword(ctx context.Context, id string) (Password, error)
	// ListPasswords returns username's unexpired passwords, or everyone's
	// when username is "", oldest (by CreatedAt, then ID) first.
	ListPasswords(ctx context.Context, username string) ([]Password, error)
	// TouchPassword sets LastUsedAt to t if t is later. It never changes
	// when the record expires, and never recreates one. A missing password
	// is not an error. The new time shows at once through the same Store
	// value; through other handles it may show later: store/cache writes
	// touches to the backend in the background (every TouchInterval), and
	// another cache's GetPassword may serve an older LastUsedAt until its
	// copy expires, while ListPasswords shows what the backend holds
	// (storetest.Options.TouchVisibleWithin). Last-used times are
	// informational: nothing decides access by them.
	TouchPassword(ctx context.Context, id string, t time.Time) error
	// DeletePassword removes the password id and publishes a
	// PasswordChanged event for it, or returns ErrNotFound if there is
	// none or it had expired.
	DeletePassword(ctx context.Context, id string) error
	// DeleteUserPasswords removes every password of username, publishes a
	// PasswordChanged event for each, and returns how many of them had not
	// expired.
	DeleteUserPasswords(ctx context.Context, username string) (int, error)

	// CreateSession stores s under s.ID. It fails with ErrAlreadyExists
	// if the id is taken, and with another error if s has no ID or its
	// ExpiresAt is not in the future.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session id, or ErrNotFound if there is none
	// or it has expired.
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession sets the session's LastSeenAt to seen and its
	// ExpiresAt (and the backend's TTL) to expires, as one change. If
	// seen is before the stored LastSeenAt it changes nothing, so
	// LastSeenAt never moves backwards. An expires that is not after now
	// ends the session. It returns ErrNotFound if there is no session id
	// or it has expired, and never recreates one.
	TouchSession(ctx context.Context, id string, seen, expires time.Time) error
	// DeleteSession removes the session id. A missing session is not an
	// error.
	DeleteSession(ctx context.Context, id string) error

	// GetUser returns the user username, or ErrNotFound if there is none
	// or the record has expired.
	GetUser(ctx context.Context, username string) (User, error)
	// PutUser stores u under u.Username until u.ExpiresAt, replacing any
	// record there, and publishes a UserChanged event for it. It fails if
	// u has no Username or its ExpiresAt is not in the future.
	PutUser(ctx context.Context, u User) error
	// DeleteUser removes the user username and publishes a UserChanged
	// event for it. A missing user is not an error.
	DeleteUser(ctx context.Context, username string) error

	// TryLock takes the store-wide lock name for ttl (at least a
	// millisecond) unless someone holds it, in which case it returns
	// ok == false and a nil error. unlock releases the lock if this call
	// still holds it: once ttl has passed and another caller has taken
	// the lock, unlock leaves the new holder's lock alone. unlock is never
	// nil, does nothing unless ok, and is safe to call more than once.
	// The ttl runs on the backend's clock: the Redis server's for
	// store/redis.
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)

	// DeviceStore keeps device authorizations (device.go).
	DeviceStore

	// Watch calls fn for every invalidation event until ctx ends. It
	// returns once the subscription is established (or failed), so that
	// no event published after Watch returns is missed. Each Watch calls
	// its fn from one goroutine, one event at a time; fn must return
	// quickly. When events may have been lost, fn receives a Reset.
	// A Watch that returned nil stays subscribed until ctx ends or Close,
	// re-subscribing by itself after a lost connection (then a Reset). A
	// Watch that failed is not retried by the backend: the caller retries
	// (store/cache does, with back-off), and its error should say where the
	// backend was looked for.
	Watch(ctx context.Context, fn func(Event)) error
	// Ping checks that the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}
