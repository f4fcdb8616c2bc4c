package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
)

// Standing is what a person counts for now.
type Standing struct {
	// Groups are the groups their passwords act with now.
	Groups []string
	// Revalidated is set when the groups are re-read from the provider
	// (the provider gave a refresh token); else they are the login's.
	Revalidated bool
	// ConfirmedAt is when the provider last confirmed Groups.
	ConfirmedAt time.Time
}

// Groups returns the groups password p acts with now: a robot's (and a
// workload refresh token's) are those it was minted with; a person's are their current standing's. It is on
// the token path and never waits for the identity provider while the
// person's last confirmed groups are within revalidate_every +
// revalidate_grace; see the package documentation.
func (a *Accounts) Groups(ctx context.Context, p store.Password) ([]string, error) {
	if p.CreatedBy == store.CreatedByCLI || p.CreatedBy == store.CreatedByWorkload {
		return p.Groups, nil
	}
	st, err := a.Standing(ctx, PersonPrincipal(p.Subject, p.Username))
	return st.Groups, err
}

// Standing returns what person counts for now, or ErrSuspended (they must
// log in again) or ErrUnavailable (nothing confirmed recently enough and
// the provider does not answer). When the groups are due it triggers a
// refresh at the provider in the background.
func (a *Accounts) Standing(ctx context.Context, person Principal) (Standing, error) {
	u, err := owner(ctx, a.o.Users, person.Username, person.Subject)
	if err != nil {
		return Standing{}, err
	}
	now := a.o.Now()
	if a.fresh(u, now) {
		return standing(u), nil
	}
	if now.Before(u.NextAttemptAt) {
		return a.lastKnown(u, now) // the provider failed recently: no retry yet
	}
	done := a.refreshInBackground(u)
	if st, err := a.lastKnown(u, now); err == nil {
		return st, nil
	}
	// Nothing recent enough to trust: the answer is the provider's, so
	// wait for it, briefly.
	if done == nil || a.o.Revalidation.Wait <= 0 {
		return a.lastKnown(u, now)
	}
	t := time.NewTimer(a.o.Revalidation.Wait)
	defer t.Stop()
	select {
	case <-done.done:
		if done.err != nil {
			return Standing{}, done.err
		}
		// The refresh may have answered for an earlier moment (it began
		// before this request): what it returns must still be trusted now.
		if done.st.Revalidated && !now.Before(done.st.ConfirmedAt.Add(a.o.Revalidation.Every+a.o.Revalidation.Grace)) {
			return Standing{}, fmt.Errorf("%w: groups of %s last confirmed %s", ErrUnavailable, person.Username, done.st.ConfirmedAt.UTC().Format(time.RFC3339))
		}
		return done.st, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return a.lastKnown(u, now)
}

// owner reads the user record of username and checks that it still
// belongs to subject and is not suspended.
func owner(ctx context.Context, users Users, username, subject string) (store.User, error) {
	u, err := users.GetUser(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return u, fmt.Errorf("%w: no user record for %s", ErrSuspended, username)
	case err != nil:
		return u, fmt.Errorf("accounts: get user %s: %w", username, err)
	case u.Subject != subject:
		return u, fmt.Errorf("%w: username %s now belongs to another account", ErrSuspended, username)
	case u.Suspended != "":
		return u, fmt.Errorf("%w: %s", ErrSuspended, u.Suspended)
	}
	return u, nil
}

func standing(u store.User) Standing {
	return Standing{Groups: u.Groups, Revalidated: len(u.RefreshToken) > 0, ConfirmedAt: u.RevalidatedAt}
}

// fresh reports whether u's groups need no revalidation at now: they were
// confirmed less than Every ago, or there is no refresh token to do it.
func (a *Accounts) fresh(u store.User, now time.Time) bool {
	return len(u.RefreshToken) == 0 || now.Sub(u.RevalidatedAt) < a.o.Revalidation.Every
}

// lastKnown returns the groups last confirmed by the provider while they
// are trusted — for Every plus Grace after that confirmation — and
// ErrUnavailable after.
func (a *Accounts) lastKnown(u store.User, now time.Time) (Standing, error) {
	r := a.o.Revalidation
	if deadline := u.RevalidatedAt.Add(r.Every + r.Grace); !now.Before(deadline) {
		return Standing{}, fmt.Errorf("%w: groups of %s last confirmed %s", ErrUnavailable, u.Username, u.RevalidatedAt.UTC().Format(time.RFC3339))
	}
	return standing(u), nil
}

// retryAfter is how long a failed revalidation waits before asking the
// provider again: half the revalidation interval, between 1s and 30s.
func (a *Accounts) retryAfter() time.Duration {
	return min(max(a.o.Revalidation.Every/2, time.Second), 30*time.Second)
}

// flight is a refresh in progress; done closes when st and err are set.
type flight struct {
	done chan struct{}
	st   Standing
	err  error
}

// refreshInBackground starts a refresh of u unless one is in flight for
// the same username (then it returns that one), and returns it; nil when
// there is no provider, the Accounts is closed, or maxConcurrentRefreshes
// are in flight (a later request triggers it again).
func (a *Accounts) refreshInBackground(u store.User) *flight {
	if a.o.Provider == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f, ok := a.flights[u.Username]; ok {
		return f
	}
	if a.closed || len(a.flights) >= maxConcurrentRefreshes {
		if !a.closed {
			a.o.Observe("busy")
		}
		return nil
	}
	f := &flight{done: make(chan struct{})}
	a.flights[u.Username] = f
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f.st, f.err = a.refresh(a.ctx, u)
		a.mu.Lock()
		delete(a.flights, u.Username)
		a.mu.Unlock()
		close(f.done)
	}()
	return f
}

// refresh revalidates the user, or, when another replica is doing so,
// waits (bounded) for its result.
func (a *Accounts) refresh(ctx context.Context, cached store.User) (Standing, error) {
	giveUp := time.Now().Add(a.o.Revalidation.Timeout)
	for {
		unlock, ok, err := a.o.Store.TryLock(ctx, lockName(cached.Username), a.lockTTL())
		if err != nil {
			a.o.Observe("error")
			return Standing{}, fmt.Errorf("accounts: lock %s: %w", cached.Username, err)
		}
		if ok {
			defer unlock()
			return a.refreshLocked(ctx, cached)
		}
		// Another replica (or a login) holds the lock: its result reaches
		// us through the store.
		u, err := owner(ctx, a.o.Store, cached.Username, cached.Subject)
		if err != nil {
			return Standing{}, err
		}
		now := a.o.Now()
		if a.fresh(u, now) {
			return standing(u), nil
		}
		if !u.UnreachableSince.IsZero() || !time.Now().Before(giveUp) {
			// A known outage, or no answer in time: the last confirmed
			// groups, within the same grace as everywhere else.
			a.o.Observe("skipped_locked")
			return a.lastKnown(u, now)
		}
		select {
		case <-ctx.Done():
			return a.lastKnown(u, now)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// refreshLocked runs one revalidation; the caller holds the user's lock.
func (a *Accounts) refreshLocked(ctx context.Context, cached store.User) (Standing, error) {
	u, err := owner(ctx, a.o.Store, cached.Username, cached.Subject)
	if err != nil {
		return Standing{}, err
	}
	now := a.o.Now()
	switch {
	case a.fresh(u, now):
		return standing(u), nil // another replica refreshed it meanwhile
	case now.Before(u.NextAttemptAt):
		return a.lastKnown(u, now) // another replica failed a moment ago
	}
	log := a.o.Log.With("user", u.Username)
	rt, err := a.o.Sealer.Open(u.RefreshToken, u.Subject)
	if err != nil {
		// Wrong key (rotated without care) or tampering: the only safe
		// answer is a new login.
		return Standing{}, a.suspend(ctx, u, "the stored refresh token cannot be decrypted", err)
	}
	pctx, cancel := context.WithTimeout(ctx, a.o.Revalidation.Timeout)
	id, toks, err := a.o.Provider.Refresh(pctx, u.Subject, rt)
	cancel()
	switch {
	case err == nil && id.Username != "" && id.Username != u.Username:
		// The passwords carry the old name, which the provider may give
		// to someone else: they must not keep acting for this person.
		a.o.Observe("rejected")
		return Standing{}, a.suspend(ctx, u, "the username changed at the identity provider to "+id.Username+"; log in again and mint new passwords", nil)
	case err == nil:
		sealed, serr := a.o.Sealer.Seal(toks.RefreshToken, u.Subject)
		if serr != nil {
			return Standing{}, serr
		}
		changed := !slices.Equal(u.Groups, id.Groups)
		u.Groups, u.RefreshToken = id.Groups, sealed
		if id.Email != "" {
			u.Email = id.Email
		}
		// Confirmed when the provider answered, not when the call began: a
		// request waiting for this result checks it against its own now.
		u.RevalidatedAt, u.UnreachableSince, u.NextAttemptAt = a.o.Now(), time.Time{}, time.Time{}
		if err := a.putUser(ctx, u); err != nil {
			return Standing{}, fmt.Errorf("accounts: put user %s: %w", u.Username, err)
		}
		a.o.Observe("ok")
		if changed {
			log.InfoContext(ctx, "groups changed at the identity provider", "groups", id.Groups)
		}
		return standing(u), nil
	case errors.Is(err, oidc.ErrRejected), errors.Is(err, oidc.ErrNotAllowed):
		a.o.Observe("rejected")
		return Standing{}, a.suspend(ctx, u, "the identity provider no longer accepts this login", err)
	default:
		a.o.Observe("unreachable")
		if u.UnreachableSince.IsZero() {
			u.UnreachableSince = now
		}
		u.NextAttemptAt = now.Add(a.retryAfter())
		if perr := a.putUser(ctx, u); perr != nil {
			log.WarnContext(ctx, "could not record the provider outage", "err", perr)
		}
		st, gerr := a.lastKnown(u, now)
		if gerr != nil {
			log.ErrorContext(ctx, "identity provider unreachable beyond the grace period; refusing the user's passwords",
				"last_confirmed", u.RevalidatedAt, "unreachable_since", u.UnreachableSince, "grace", a.o.Revalidation.Grace.String(), "err", err)
			return Standing{}, fmt.Errorf("%w: %v", gerr, err)
		}
		log.WarnContext(ctx, "identity provider unreachable; using the last confirmed groups",
			"last_confirmed", u.RevalidatedAt, "unreachable_since", u.UnreachableSince, "grace", a.o.Revalidation.Grace.String(), "err", err)
		return st, nil
	}
}

func (a *Accounts) suspend(ctx context.Context, u store.User, reason string, cause error) error {
	u.Suspended, u.RefreshToken = reason, nil
	if err := a.putUser(ctx, u); err != nil {
		return fmt.Errorf("accounts: suspend %s: %w", u.Username, err)
	}
	a.o.Log.WarnContext(ctx, "user suspended: their passwords and sessions are refused until they log in again",
		"user", u.Username, "reason", reason, "err", cause)
	return fmt.Errorf("%w: %s", ErrSuspended, reason)
}

// putUser writes the record with a deadline of its own, so that a refresh
// cancelled at shutdown still records what it learnt.
func (a *Accounts) putUser(ctx context.Context, u store.User) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	return a.o.Store.PutUser(ctx, u)
}
