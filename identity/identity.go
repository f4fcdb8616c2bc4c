package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
)

// Sentinel errors the token endpoint turns into answers.
var (
	// ErrSuspended: the owner must log in again in the browser.
	ErrSuspended = errors.New("password owner must log in again")
	// ErrUnavailable: the owner's groups cannot be confirmed and the
	// grace period is over.
	ErrUnavailable = errors.New("identity provider unreachable beyond the grace period")
)

// Users reads and writes user records.
type Users interface {
	GetUser(ctx context.Context, username string) (store.User, error)
	PutUser(ctx context.Context, u store.User) error
}

// Locker takes a short store-wide lock, so that replicas do not refresh
// the same user at once (providers that rotate refresh tokens would take
// the second use for a replay).
type Locker interface {
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// Refresher re-reads an identity with a refresh token; *oidc.Provider is one.
type Refresher interface {
	Refresh(ctx context.Context, subject, refreshToken string) (oidc.Identity, oidc.Tokens, error)
}

// Options are a Revalidator's live values.
type Options struct {
	// Users is read on every use: pass the caching store.
	Users Users
	// Store is the uncached store, re-read under the lock, and the locker.
	Store interface {
		Users
		Locker
	}
	Provider Refresher
	Sealer   *oidc.Sealer
	// Every is passwords.revalidate_every; Grace is oidc.revalidate_grace.
	Every, Grace time.Duration
	// Timeout bounds one refresh at the provider. Default 10s.
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time
	// Observe, if set, counts revalidation results: "ok", "rejected",
	// "unreachable", "skipped_locked", "error".
	Observe func(result string)
}

// Revalidator implements the policy of the package documentation.
type Revalidator struct {
	o  Options
	sf singleflight.Group
}

// NewRevalidator returns a Revalidator.
func NewRevalidator(o Options) *Revalidator {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
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
	return &Revalidator{o: o}
}

// Groups returns the groups password p acts with now.
func (r *Revalidator) Groups(ctx context.Context, p store.Password) ([]string, error) {
	if p.CreatedBy == store.CreatedByCLI {
		return p.Groups, nil
	}
	u, err := owner(ctx, r.o.Users, p.Username, p.Subject)
	if err != nil {
		return nil, err
	}
	now := r.o.Now()
	switch {
	case r.fresh(u, now):
		return u.Groups, nil
	case now.Before(u.NextAttemptAt):
		return r.lastKnown(u, now) // the provider failed recently: no retry yet
	}
	// Stale: refresh once per user, detached from this request so that
	// its cancellation does not fail the others waiting on the result.
	v, err, _ := r.sf.Do(u.Username, func() (any, error) {
		return r.refresh(context.WithoutCancel(ctx), u)
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// owner reads the user record of username and checks that it still
// belongs to subject and is not suspended.
func owner(ctx context.Context, users Users, username, subject string) (store.User, error) {
	u, err := users.GetUser(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return u, fmt.Errorf("%w: no user record for %s", ErrSuspended, username)
	case err != nil:
		return u, fmt.Errorf("identity: get user %s: %w", username, err)
	case u.Subject != subject:
		return u, fmt.Errorf("%w: username %s now belongs to another account", ErrSuspended, username)
	case u.Suspended != "":
		return u, fmt.Errorf("%w: %s", ErrSuspended, u.Suspended)
	}
	return u, nil
}

// fresh reports whether u's groups need no revalidation at now: they were
// confirmed less than Every ago, or there is no refresh token to do it.
func (r *Revalidator) fresh(u store.User, now time.Time) bool {
	return len(u.RefreshToken) == 0 || now.Sub(u.RevalidatedAt) < r.o.Every
}

// lastKnown returns the groups last confirmed by the provider while they
// are trusted — for revalidate_every plus the grace period after that
// confirmation — and ErrUnavailable after.
func (r *Revalidator) lastKnown(u store.User, now time.Time) ([]string, error) {
	if deadline := u.RevalidatedAt.Add(r.o.Every + r.o.Grace); !now.Before(deadline) {
		return nil, fmt.Errorf("%w: groups of %s last confirmed %s", ErrUnavailable, u.Username, u.RevalidatedAt.UTC().Format(time.RFC3339))
	}
	return u.Groups, nil
}

// retryAfter is how long a failed revalidation waits before asking the
// provider again: half the revalidation interval, between 1s and 30s.
func (r *Revalidator) retryAfter() time.Duration {
	return min(max(r.o.Every/2, time.Second), 30*time.Second)
}

// lockTTL bounds how long a revalidation holds the user's lock: the
// provider call plus the store writes.
func (r *Revalidator) lockTTL() time.Duration { return r.o.Timeout + storeWriteTimeout }

// storeWriteTimeout bounds each store write of a revalidation; it has its
// own deadline so that a provider that hung until the refresh timed out
// does not also lose the record of the outage.
const storeWriteTimeout = 5 * time.Second

// refresh revalidates the user, or, when another replica is doing so,
// waits (bounded) for its result.
func (r *Revalidator) refresh(ctx context.Context, cached store.User) ([]string, error) {
	giveUp := time.Now().Add(r.o.Timeout)
	for {
		unlock, ok, err := r.o.Store.TryLock(ctx, "revalidate:"+cached.Username, r.lockTTL())
		if err != nil {
			r.o.Observe("error")
			return nil, fmt.Errorf("identity: lock %s: %w", cached.Username, err)
		}
		if ok {
			defer unlock()
			return r.refreshLocked(ctx, cached)
		}
		// Another replica (or a login) holds the lock: its result reaches
		// us through the store.
		u, err := owner(ctx, r.o.Store, cached.Username, cached.Subject)
		if err != nil {
			return nil, err
		}
		now := r.o.Now()
		if r.fresh(u, now) {
			return u.Groups, nil
		}
		if !u.UnreachableSince.IsZero() || !time.Now().Before(giveUp) {
			// A known outage, or no answer in time: the last confirmed
			// groups, within the same grace as everywhere else.
			r.o.Observe("skipped_locked")
			return r.lastKnown(u, now)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refreshLocked runs one revalidation; the caller holds the user's lock.
func (r *Revalidator) refreshLocked(ctx context.Context, cached store.User) ([]string, error) {
	u, err := owner(ctx, r.o.Store, cached.Username, cached.Subject)
	if err != nil {
		return nil, err
	}
	now := r.o.Now()
	switch {
	case r.fresh(u, now):
		return u.Groups, nil // another replica refreshed it meanwhile
	case now.Before(u.NextAttemptAt):
		return r.lastKnown(u, now) // another replica failed a moment ago
	}
	log := r.o.Log.With("user", u.Username)
	rt, err := r.o.Sealer.Open(u.RefreshToken, u.Subject)
	if err != nil {
		// Wrong key (rotated without care) or tampering: the only safe
		// answer is a new login.
		return nil, r.suspend(ctx, u, "the stored refresh token cannot be decrypted", err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	id, toks, err := r.o.Provider.Refresh(pctx, u.Subject, rt)
	cancel()
	switch {
	case err == nil && id.Username != "" && id.Username != u.Username:
		// The passwords carry the old name, which the provider may give
		// to someone else: they must not keep acting for this person.
		r.o.Observe("rejected")
		return nil, r.suspend(ctx, u, "the username changed at the identity provider to "+id.Username+"; log in again and mint new passwords", nil)
	case err == nil:
		sealed, serr := r.o.Sealer.Seal(toks.RefreshToken, u.Subject)
		if serr != nil {
			return nil, serr
		}
		changed := !equal(u.Groups, id.Groups)
		u.Groups, u.RefreshToken = id.Groups, sealed
		if id.Email != "" {
			u.Email = id.Email
		}
		u.RevalidatedAt, u.UnreachableSince, u.NextAttemptAt = now, time.Time{}, time.Time{}
		if err := r.putUser(ctx, u); err != nil {
			return nil, fmt.Errorf("identity: put user %s: %w", u.Username, err)
		}
		r.o.Observe("ok")
		if changed {
			log.InfoContext(ctx, "groups changed at the identity provider", "groups", id.Groups)
		}
		return u.Groups, nil
	case errors.Is(err, oidc.ErrRejected), errors.Is(err, oidc.ErrNotAllowed):
		r.o.Observe("rejected")
		return nil, r.suspend(ctx, u, "the identity provider no longer accepts this login", err)
	default:
		r.o.Observe("unreachable")
		if u.UnreachableSince.IsZero() {
			u.UnreachableSince = now
		}
		u.NextAttemptAt = now.Add(r.retryAfter())
		if perr := r.putUser(ctx, u); perr != nil {
			log.WarnContext(ctx, "could not record the provider outage", "err", perr)
		}
		groups, gerr := r.lastKnown(u, now)
		if gerr != nil {
			log.ErrorContext(ctx, "identity provider unreachable beyond the grace period; refusing the user's passwords",
				"last_confirmed", u.RevalidatedAt, "unreachable_since", u.UnreachableSince, "grace", r.o.Grace.String(), "err", err)
			return nil, fmt.Errorf("%w: %v", gerr, err)
		}
		log.WarnContext(ctx, "identity provider unreachable; using the last confirmed groups",
			"last_confirmed", u.RevalidatedAt, "unreachable_since", u.UnreachableSince, "grace", r.o.Grace.String(), "err", err)
		return groups, nil
	}
}

func (r *Revalidator) suspend(ctx context.Context, u store.User, reason string, cause error) error {
	u.Suspended, u.RefreshToken = reason, nil
	if err := r.putUser(ctx, u); err != nil {
		return fmt.Errorf("identity: suspend %s: %w", u.Username, err)
	}
	r.o.Log.WarnContext(ctx, "user suspended: their passwords are refused until they log in again",
		"user", u.Username, "reason", reason, "err", cause)
	return fmt.Errorf("%w: %s", ErrSuspended, reason)
}

// putUser writes the record with a deadline of its own.
func (r *Revalidator) putUser(ctx context.Context, u store.User) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	return r.o.Store.PutUser(ctx, u)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
