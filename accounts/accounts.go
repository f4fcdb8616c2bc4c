package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
)

// Sentinel errors callers branch on; the package wraps them with detail.
var (
	// ErrSuspended: the person must log in again in the browser (refused
	// or removed at the identity provider, renamed there, or their record
	// is gone). Their passwords and sessions count for nothing until then.
	ErrSuspended = errors.New("account owner must log in again")
	// ErrUnavailable: the owner's groups cannot be confirmed and the
	// last confirmation is older than revalidate_every + revalidate_grace.
	ErrUnavailable = errors.New("identity provider unreachable beyond the grace period")
	// ErrUsernameTaken: the username belongs to another person or robot.
	ErrUsernameTaken = errors.New("username belongs to another account")
	// ErrBadUsername: the name cannot be a docker login username.
	ErrBadUsername = errors.New("unusable username")
	// ErrInvalid: a mint request asks for something not allowed; the
	// wrapped message says what, in words fit for the person.
	ErrInvalid = errors.New("invalid request")
	// ErrLimit: the owner already has the most live passwords allowed.
	ErrLimit = errors.New("too many live passwords")
	// ErrRateLimited: the owner minted too many passwords too quickly.
	// errors.As into *RateLimitError gives the wait.
	ErrRateLimited = errors.New("too many passwords minted recently")
	// ErrNotFound: no such password among the owner's.
	ErrNotFound = errors.New("no such password")
)

// Kind is the kind of principal an account is.
type Kind string

const (
	// Person logs in at the identity provider in a browser; their groups
	// are the provider's, re-read at most every revalidate_every.
	Person Kind = "person"
	// Robot is an account an operator mints passwords for with
	// `bridge passwords create`; its groups are fixed at minting.
	Robot Kind = "robot"
)

// robotSubjectPrefix makes a robot's subject, so that it can never equal
// an identity provider's "sub" for a person in the ownership rule.
const robotSubjectPrefix = "cli:"

// Principal is whoever an app password acts for.
type Principal struct {
	Kind Kind
	// Subject is the identity provider's stable "sub" for a person, and
	// "cli:" + Username for a robot.
	Subject  string
	Username string
}

// RobotPrincipal returns the principal of the robot account username.
func RobotPrincipal(username string) Principal {
	return Principal{Kind: Robot, Subject: robotSubjectPrefix + username, Username: username}
}

// PersonPrincipal returns the principal of a person known by the
// provider's subject and the username they log in with.
func PersonPrincipal(subject, username string) Principal {
	return Principal{Kind: Person, Subject: subject, Username: username}
}

// OwnerOf returns the principal a password record acts for.
func OwnerOf(p store.Password) Principal {
	switch p.CreatedBy {
	case store.CreatedByCLI:
		return Principal{Kind: Robot, Subject: p.Subject, Username: p.Username}
	case store.CreatedByWorkload:
		return Principal{Kind: Workload, Subject: p.Subject, Username: p.Username}
	}
	return Principal{Kind: Person, Subject: p.Subject, Username: p.Username}
}

// Store is what accounts needs of the store: store.Store has it all.
type Store interface {
	CreatePassword(ctx context.Context, p store.Password) error
	GetPassword(ctx context.Context, id string) (store.Password, error)
	ListPasswords(ctx context.Context, username string) ([]store.Password, error)
	DeletePassword(ctx context.Context, id string) error
	GetUser(ctx context.Context, username string) (store.User, error)
	PutUser(ctx context.Context, u store.User) error
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// Users is the read side the token path uses.
type Users interface {
	GetUser(ctx context.Context, username string) (store.User, error)
}

// Refresher re-reads an identity with a refresh token; *oidc.Provider is one.
type Refresher interface {
	Refresh(ctx context.Context, subject, refreshToken string) (oidc.Identity, oidc.Tokens, error)
}

// Limits bound what minting may ask for.
type Limits struct {
	// DefaultLifetime applies when a mint asks for none; MaxLifetime
	// caps every password.
	DefaultLifetime, MaxLifetime time.Duration
	// MaxLive is the most live passwords one owner (person or robot)
	// may hold. 0 means no cap.
	MaxLive int
	// MintsPerHour is how many passwords one owner may mint per hour on
	// this replica, in bursts of up to min(10, MintsPerHour). 0 means no
	// rate limit.
	MintsPerHour int
}

// Revalidation says how current a person's groups must be.
type Revalidation struct {
	// Every is how long confirmed groups count before they are re-read
	// from the provider (revalidate_every).
	Every time.Duration
	// Grace is how much longer the last confirmed groups count while the
	// provider cannot answer (revalidate_grace).
	Grace time.Duration
	// Wait bounds how long a request whose owner's groups are older than
	// Every + Grace waits for the refresh it triggers; 0 never waits.
	// Requests within Every + Grace never wait. Default 2s.
	Wait time.Duration
	// Timeout bounds one refresh at the provider. Default 10s.
	Timeout time.Duration
}

// Options are an Accounts' live values.
type Options struct {
	// Store is the uncached store: every write, and the re-reads done
	// under the revalidation lock.
	Store Store
	// Users is read on every token request: pass the caching store.
	// Default Store.
	Users Users
	// Provider refreshes people's groups; nil when there is no browser
	// login (then only robots exist).
	Provider Refresher
	// Sealer encrypts the provider's refresh tokens at rest.
	Sealer *oidc.Sealer
	Limits Limits
	// Revalidation applies to people.
	Revalidation Revalidation
	// SessionMaxAge is the longest browser session: people can mint only
	// while logged in, so their record must outlive SessionMaxAge +
	// Limits.MaxLifetime.
	SessionMaxAge time.Duration
	Log           *slog.Logger
	Now           func() time.Time
	// WorkloadPrefixes maps each workload issuer's name to its username
	// prefix: its namespace, which people and robots cannot enter.
	WorkloadPrefixes map[string]string
	// Observe, if set, counts revalidation results: "ok", "rejected",
	// "unreachable", "skipped_locked", "busy", "error".
	Observe func(result string)
}

// Accounts is the one home of account rules. Safe for concurrent use.
type Accounts struct {
	o      Options
	mints  *mintLimiter
	ctx    context.Context // ends at Close: refreshes in flight stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	flights map[string]*flight // refreshes in flight, by username
	closed  bool

	// admitted are the workloads AdmitWorkload let in (workload.go).
	admitted admissions
}

// maxConcurrentRefreshes bounds the provider calls one replica makes at
// once; a trigger past it is dropped and retried by a later request.
const maxConcurrentRefreshes = 32

// New returns an Accounts. Call Close to stop background refreshes.
func New(o Options) *Accounts {
	if o.Users == nil {
		o.Users = o.Store
	}
	if o.Revalidation.Timeout == 0 {
		o.Revalidation.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Observe == nil {
		o.Observe = func(string) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Accounts{o: o, ctx: ctx, cancel: cancel, flights: map[string]*flight{},
		mints: newMintLimiter(o.Limits.MintsPerHour, o.Now)}
}

// Close stops refreshes in flight and waits for them.
func (a *Accounts) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
}

// MaxUsernameLength is the longest username accepted.
const MaxUsernameLength = 255

// ValidUsername reports whether u can be a docker login username and a
// path segment of a personal namespace: not empty, at most
// MaxUsernameLength bytes, valid UTF-8, and without ':' (HTTP Basic
// cannot carry it in a username, RFC 7617), '/' (it would reach into
// another user's namespace: users/alice/x is inside users/alice/**),
// white space or control characters.
func ValidUsername(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("%w: empty username", ErrBadUsername)
	case len(u) > MaxUsernameLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadUsername, MaxUsernameLength)
	case !utf8.ValidString(u):
		return fmt.Errorf("%w: not UTF-8", ErrBadUsername)
	case strings.ContainsAny(u, ":/") || strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("%w: contains ':', '/', white space or a control character", ErrBadUsername)
	}
	return nil
}

// claim is the one rule of who owns a username: its user record's
// subject if there is one (a person), else the subject of its live
// passwords (a robot's, a workload's, or a person's whose record
// expired), else nobody; and nobody but a workload of that issuer may
// newly take a username inside a workload issuer's namespace
// (Options.WorkloadPrefixes). It returns nil when subject may act under
// username, ErrUsernameTaken when another principal owns it.
func (a *Accounts) claim(ctx context.Context, username, subject string) error {
	u, err := a.o.Store.GetUser(ctx, username)
	switch {
	case err == nil && u.Subject != subject:
		return fmt.Errorf("%w: %s is held by subject %s", ErrUsernameTaken, username, u.Subject)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("accounts: get user %s: %w", username, err)
	}
	held := err == nil // subject's own user record
	list, err := a.o.Store.ListPasswords(ctx, username)
	if err != nil {
		return fmt.Errorf("accounts: list passwords of %s: %w", username, err)
	}
	for _, p := range list {
		if p.Subject != subject {
			return fmt.Errorf("%w: %s has passwords of subject %s", ErrUsernameTaken, username, p.Subject)
		}
		held = true
	}
	if !held {
		// A new holder: not inside a workload issuer's namespace unless
		// a workload (one who held it before the issuer was configured
		// keeps it).
		return a.checkReserved(username, subject)
	}
	return nil
}

// lockName is the store lock that serialises writes of username's record
// between revalidations (on any replica) and logins.
func lockName(username string) string { return "revalidate:" + username }

// lockTTL bounds how long a revalidation holds the user's lock: the
// provider call plus the store writes.
func (a *Accounts) lockTTL() time.Duration { return a.o.Revalidation.Timeout + storeWriteTimeout }

// storeWriteTimeout bounds each store write done for a refresh; it has
// its own deadline so that a provider that hung until the refresh timed
// out does not also lose the record of the outage.
const storeWriteTimeout = 5 * time.Second

// Login records a person's successful login at the identity provider:
// it checks that the username is theirs, stores their groups and their
// sealed refresh token, and lifts a suspension. It holds the user's
// revalidation lock (waiting for a refresh in flight), so a refresh
// finishing meanwhile cannot overwrite the new record with an older one.
func (a *Accounts) Login(ctx context.Context, id oidc.Identity, toks oidc.Tokens) (Principal, error) {
	if err := ValidUsername(id.Username); err != nil {
		return Principal{}, err
	}
	unlock := a.lockForLogin(ctx, id.Username)
	defer unlock()
	if err := a.claim(ctx, id.Username, id.Subject); err != nil {
		return Principal{}, err
	}
	prev, err := a.o.Store.GetUser(ctx, id.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("accounts: get user %s: %w", id.Username, err)
	}
	now := a.o.Now()
	user := store.User{Username: id.Username, Subject: id.Subject, Email: id.Email, Groups: id.Groups,
		RevalidatedAt: now, ExpiresAt: now.Add(a.o.SessionMaxAge + a.o.Limits.MaxLifetime)}
	if prev.ExpiresAt.After(user.ExpiresAt) {
		user.ExpiresAt = prev.ExpiresAt
	}
	switch {
	case toks.RefreshToken != "":
		sealed, err := a.o.Sealer.Seal(toks.RefreshToken, id.Subject)
		if err != nil {
			return Principal{}, fmt.Errorf("accounts: seal refresh token: %w", err)
		}
		user.RefreshToken = sealed
	case prev.Subject == id.Subject && prev.Suspended == "":
		// This login brought no refresh token (providers give one only on
		// some logins): keep the one that revalidates the passwords
		// already handed out.
		user.RefreshToken = prev.RefreshToken
	}
	if err := a.o.Store.PutUser(ctx, user); err != nil {
		return Principal{}, fmt.Errorf("accounts: put user %s: %w", id.Username, err)
	}
	return PersonPrincipal(id.Subject, id.Username), nil
}

// lockForLogin takes the user's revalidation lock, waiting for a refresh
// in flight to finish: a little longer than a refresh may hold it. If it
// still cannot, the login goes ahead.
func (a *Accounts) lockForLogin(ctx context.Context, username string) func() {
	giveUp := time.Now().Add(a.lockTTL() + time.Second)
	for time.Now().Before(giveUp) {
		unlock, ok, err := a.o.Store.TryLock(ctx, lockName(username), a.lockTTL()+5*time.Second)
		if err != nil {
			break
		}
		if ok {
			return unlock
		}
		select {
		case <-ctx.Done():
			return func() {}
		case <-time.After(250 * time.Millisecond):
		}
	}
	a.o.Log.WarnContext(ctx, "login: could not take the user's revalidation lock; saving anyway", "user", username)
	return func() {}
}
