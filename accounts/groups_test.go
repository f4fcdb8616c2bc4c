package accounts

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
)

// refresher answers refresh grants as a provider would, counting calls.
type refresher struct {
	calls  atomic.Int32
	mu     sync.Mutex
	groups []string
	err    error
	gate   chan struct{} // if set, each call waits for it
	// username the provider reports; "" means "alice"
	username string
	// hangUntilCtx: with gate set, give up when the call's context ends
	hangUntilCtx bool
}

func (r *refresher) Refresh(ctx context.Context, subject, rt string) (oidc.Identity, oidc.Tokens, error) {
	r.calls.Add(1)
	if r.gate != nil {
		if r.hangUntilCtx {
			select {
			case <-r.gate:
			case <-ctx.Done():
				return oidc.Identity{}, oidc.Tokens{}, fmt.Errorf("%w: %v", oidc.ErrUnavailable, ctx.Err())
			}
		} else {
			<-r.gate
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return oidc.Identity{}, oidc.Tokens{}, r.err
	}
	name := r.username
	if name == "" {
		name = "alice"
	}
	return oidc.Identity{Subject: subject, Username: name, Groups: r.groups}, oidc.Tokens{RefreshToken: rt + "+"}, nil
}

type env struct {
	now  time.Time
	st   *memory.Store
	ref  *refresher
	acc  *Accounts
	seal *oidc.Sealer
	pw   store.Password
	seen []string
	mu   sync.Mutex
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), ref: &refresher{groups: []string{"team-b"}}}
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	e.st = memory.New(clock)
	t.Cleanup(func() { e.st.Close() })
	e.seal, _ = oidc.RandomSealer()
	sealed, _ := e.seal.Seal("rt-1", "sub-alice")
	if err := e.st.PutUser(t.Context(), store.User{Username: "alice", Subject: "sub-alice", Groups: []string{"team-a"},
		RefreshToken: sealed, RevalidatedAt: e.now, ExpiresAt: e.now.Add(1000 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.pw = store.Password{ID: "p1", Subject: "sub-alice", Username: "alice", Groups: []string{"minted-with"}, CreatedBy: store.CreatedByBrowser}
	e.acc = New(Options{Store: e.st, Provider: e.ref, Sealer: e.seal,
		Revalidation: Revalidation{Every: time.Minute, Grace: time.Hour, Timeout: 300 * time.Millisecond, Wait: 2 * time.Second},
		Limits:       Limits{DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour},
		Now:          clock, Observe: func(r string) { e.mu.Lock(); e.seen = append(e.seen, r); e.mu.Unlock() }})
	t.Cleanup(e.acc.Close)
	return e
}

// results returns the revalidation results observed so far.
func (e *env) results() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seen)
}

// settle waits until n revalidations have finished (background refreshes
// report through Observe), failing the test after 10s.
func (e *env) settle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.results()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d revalidations, saw %v", n, e.results())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) advance(d time.Duration) { e.mu.Lock(); e.now = e.now.Add(d); e.mu.Unlock() }

func TestFreshRecordNeedsNoProvider(t *testing.T) {
	e := newEnv(t)
	got, err := e.acc.Groups(t.Context(), e.pw)
	if err != nil || !reflect.DeepEqual(got, []string{"team-a"}) || e.ref.calls.Load() != 0 {
		t.Fatalf("Groups = %v, %v; %d refreshes", got, err, e.ref.calls.Load())
	}
}

func TestCLIPasswordsKeepTheirGroups(t *testing.T) {
	e := newEnv(t)
	e.advance(time.Hour)
	cli := store.Password{ID: "c", Subject: "cli:bot", Username: "bot", Groups: []string{"ci"}, CreatedBy: store.CreatedByCLI}
	if got, err := e.acc.Groups(t.Context(), cli); err != nil || !reflect.DeepEqual(got, []string{"ci"}) || e.ref.calls.Load() != 0 {
		t.Fatalf("Groups = %v, %v", got, err)
	}
}

// idle waits until no refresh is in flight, failing after 10s.
func (e *env) idle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.acc.mu.Lock()
		n := len(e.acc.flights)
		e.acc.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refreshes still in flight", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// noLock is a store whose lock is always free, so that only the
// in-process deduplication can keep refreshes of one user to one.
type noLock struct{ *memory.Store }

func (noLock) TryLock(context.Context, string, time.Duration) (func(), bool, error) {
	return func() {}, true, nil
}

func TestStaleRecordRefreshesOncePerUser(t *testing.T) {
	e := newEnv(t)
	e.acc.o.Store = noLock{e.st}
	e.advance(2 * time.Minute)
	e.ref.gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			// Due but within grace: the last confirmed groups at once,
			// while the refresh is still held at the gate.
			if g, err := e.acc.Groups(context.Background(), e.pw); err != nil || !reflect.DeepEqual(g, []string{"team-a"}) {
				t.Errorf("while refreshing: %v, %v", g, err)
			}
		})
	}
	wg.Wait()
	close(e.ref.gate)
	e.idle(t)
	if n := e.ref.calls.Load(); n != 1 {
		t.Fatalf("%d refreshes for 8 concurrent requests, want 1", n)
	}
	u, _ := e.st.GetUser(t.Context(), "alice")
	if rt, _ := e.seal.Open(u.RefreshToken, "sub-alice"); rt != "rt-1+" {
		t.Errorf("the rotated refresh token was not stored: %q", rt)
	}
	if !u.RevalidatedAt.Equal(e.now) {
		t.Errorf("RevalidatedAt = %v", u.RevalidatedAt)
	}
	// Fresh again: the new groups, no more refreshes.
	if g, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(g, []string{"team-b"}) || e.ref.calls.Load() != 1 {
		t.Fatalf("after the refresh: %v, %v, %d refreshes", g, err, e.ref.calls.Load())
	}
}

func TestLockedByAnotherReplica(t *testing.T) {
	e := newEnv(t)
	e.advance(2 * time.Minute)
	unlock, ok, err := e.st.TryLock(t.Context(), lockName("alice"), time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer unlock()
	got, err := e.acc.Groups(t.Context(), e.pw)
	e.idle(t)
	if err != nil || !reflect.DeepEqual(got, []string{"team-a"}) || e.ref.calls.Load() != 0 {
		t.Fatalf("while locked: %v, %v, %d refreshes", got, err, e.ref.calls.Load())
	}
	if r := e.results(); !slices.Equal(r, []string{"skipped_locked"}) {
		t.Errorf("results = %v", r)
	}
}

// TestWaitsForAnotherReplicasRefresh: for a user idle longer than the
// grace period, a request waits (bounded) for the refresh another replica
// is doing instead of failing.
func TestWaitsForAnotherReplicasRefresh(t *testing.T) {
	e := newEnv(t)
	e.advance(3 * time.Hour)
	unlock, ok, err := e.st.TryLock(t.Context(), lockName("alice"), time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		u, _ := e.st.GetUser(context.Background(), "alice")
		u.Groups, u.RevalidatedAt = []string{"team-c"}, e.now
		_ = e.st.PutUser(context.Background(), u)
		unlock()
	}()
	got, err := e.acc.Groups(t.Context(), e.pw)
	if err != nil || !reflect.DeepEqual(got, []string{"team-c"}) || e.ref.calls.Load() != 0 {
		t.Fatalf("Groups = %v, %v; %d refreshes of our own", got, err, e.ref.calls.Load())
	}
}

// TestHungProviderIsNotOnTheTokenPath: a provider that accepts and never
// answers delays no request while the last groups are within grace, and
// once it fails, it is not asked again on every request.
func TestHungProviderIsNotOnTheTokenPath(t *testing.T) {
	e := newEnv(t)
	e.ref.gate = make(chan struct{}) // held until the requests are done
	e.ref.err = fmt.Errorf("%w: timeout", oidc.ErrUnavailable)
	e.advance(2 * time.Minute)
	for range 3 {
		// Each returns while the provider call is still hanging: had it
		// waited, it would never return, as the gate stays closed.
		if g, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(g, []string{"team-a"}) {
			t.Fatalf("within grace: %v, %v", g, err)
		}
	}
	close(e.ref.gate)
	e.idle(t)
	if n := e.ref.calls.Load(); n != 1 {
		t.Fatalf("%d provider calls, want 1", n)
	}
	u, _ := e.st.GetUser(t.Context(), "alice")
	if u.NextAttemptAt.IsZero() || u.UnreachableSince.IsZero() {
		t.Fatalf("outage not recorded: %+v", u)
	}
	if _, err := e.acc.Groups(t.Context(), e.pw); err != nil || e.ref.calls.Load() != 1 {
		t.Fatalf("retried at once: %v, %d calls", err, e.ref.calls.Load())
	}
}

// TestHungProviderStillBacksOff: a provider that answers only at the
// timeout must not lose the back-off record (its writes have their own
// deadline).
func TestHungProviderStillBacksOff(t *testing.T) {
	e := newEnv(t)
	e.ref.gate = make(chan struct{}) // never closed: the refresh hangs
	e.ref.hangUntilCtx = true
	e.advance(2 * time.Minute)
	if _, err := e.acc.Groups(t.Context(), e.pw); err != nil {
		t.Fatalf("within grace: %v", err)
	}
	e.idle(t)
	u, _ := e.st.GetUser(t.Context(), "alice")
	if u.NextAttemptAt.IsZero() || u.UnreachableSince.IsZero() {
		t.Fatalf("outage not recorded: %+v", u)
	}
	calls := e.ref.calls.Load()
	if _, err := e.acc.Groups(t.Context(), e.pw); err != nil || e.ref.calls.Load() != calls {
		t.Fatalf("retried at once: %v, %d calls", err, e.ref.calls.Load()-calls)
	}
}

// TestBeyondGraceWaitIsBounded: with nothing recent enough to trust, a
// request waits for the provider at most Revalidation.Wait, and not at
// all when Wait is 0.
func TestBeyondGraceWaitIsBounded(t *testing.T) {
	e := newEnv(t)
	e.acc.o.Revalidation.Wait = 0
	e.ref.gate = make(chan struct{}) // held until the request is done
	e.advance(2 * time.Hour)
	if _, err := e.acc.Groups(t.Context(), e.pw); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	close(e.ref.gate)
	e.idle(t)
	// The refresh it started went on in the background: the next
	// request is served.
	if g, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(g, []string{"team-b"}) {
		t.Fatalf("after the background refresh: %v, %v", g, err)
	}
}

func TestLockedElsewhereStillHonoursGrace(t *testing.T) {
	e := newEnv(t)
	unlock, ok, err := e.st.TryLock(t.Context(), lockName("alice"), 10*time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer unlock()
	e.advance(time.Minute + time.Hour + time.Second) // beyond every + grace
	if _, err := e.acc.Groups(t.Context(), e.pw); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("beyond grace with the lock held elsewhere: err = %v, want ErrUnavailable", err)
	}
}

func TestRenamedAtProviderSuspends(t *testing.T) {
	e := newEnv(t)
	e.advance(2 * time.Minute)
	e.ref.username = "alice2"
	_, _ = e.acc.Groups(t.Context(), e.pw) // served; the refresh finds the rename
	e.idle(t)
	if _, err := e.acc.Groups(t.Context(), e.pw); !errors.Is(err, ErrSuspended) {
		t.Fatalf("err = %v, want ErrSuspended", err)
	}
}

func TestRejectedSuspendsUntilLogin(t *testing.T) {
	e := newEnv(t)
	e.advance(2 * time.Minute)
	e.ref.err = oidc.ErrRejected
	_, _ = e.acc.Groups(t.Context(), e.pw)
	e.idle(t)
	if _, err := e.acc.Groups(t.Context(), e.pw); !errors.Is(err, ErrSuspended) {
		t.Fatalf("err = %v, want ErrSuspended", err)
	}
	u, _ := e.st.GetUser(t.Context(), "alice")
	if u.Suspended == "" || len(u.RefreshToken) != 0 {
		t.Fatalf("user not suspended: %+v", u)
	}
	// Every password of the user, and their standing, without asking the
	// provider again.
	e.ref.err = nil
	other := e.pw
	other.ID = "p2"
	if _, err := e.acc.Groups(t.Context(), other); !errors.Is(err, ErrSuspended) || e.ref.calls.Load() != 1 {
		t.Fatalf("second password: %v, %d refreshes", err, e.ref.calls.Load())
	}
	if _, err := e.acc.Standing(t.Context(), PersonPrincipal("sub-alice", "alice")); !errors.Is(err, ErrSuspended) {
		t.Fatalf("standing: %v", err)
	}
	// Logging in again lifts the suspension.
	if _, err := e.acc.Login(t.Context(), oidc.Identity{Subject: "sub-alice", Username: "alice", Groups: []string{"team-d"}},
		oidc.Tokens{RefreshToken: "rt-2"}); err != nil {
		t.Fatal(err)
	}
	if g, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(g, []string{"team-d"}) {
		t.Fatalf("after login: %v, %v", g, err)
	}
}

func TestProviderDownGraceThenFailClosed(t *testing.T) {
	e := newEnv(t)
	e.advance(2 * time.Minute)
	e.ref.err = oidc.ErrUnavailable
	if got, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(got, []string{"team-a"}) {
		t.Fatalf("within grace: %v, %v", got, err)
	}
	e.idle(t)
	e.advance(30 * time.Minute)
	if _, err := e.acc.Groups(t.Context(), e.pw); err != nil {
		t.Fatalf("still within grace: %v", err)
	}
	e.idle(t)
	e.advance(31 * time.Minute)
	if _, err := e.acc.Groups(t.Context(), e.pw); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("beyond grace: err = %v, want ErrUnavailable", err)
	}
	e.idle(t)
	// Meanwhile the provider is not asked on every request.
	calls := e.ref.calls.Load()
	for range 5 {
		_, _ = e.acc.Groups(t.Context(), e.pw)
	}
	if got := e.ref.calls.Load(); got != calls {
		t.Fatalf("%d more refresh attempts within the retry interval, want 0", got-calls)
	}
	// The provider is back: once the retry interval passes, the request
	// that triggers the refresh waits for it and the outage mark clears.
	e.ref.err = nil
	e.advance(time.Minute)
	if got, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(got, []string{"team-b"}) {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
	if u, _ := e.st.GetUser(t.Context(), "alice"); !u.UnreachableSince.IsZero() {
		t.Fatal("UnreachableSince not cleared")
	}
}

func TestRecordProblemsSuspend(t *testing.T) {
	for name, change := range map[string]func(e *env){
		"no user record":  func(e *env) { _ = e.st.DeleteUser(context.Background(), "alice") },
		"another subject": func(e *env) { e.pw.Subject = "sub-mallory" },
		"undecryptable token": func(e *env) {
			u, _ := e.st.GetUser(context.Background(), "alice")
			u.RefreshToken = []byte("garbage-garbage-garbage-garbage")
			_ = e.st.PutUser(context.Background(), u)
			e.advance(2 * time.Minute)
			_, _ = e.acc.Groups(context.Background(), e.pw) // served; the refresh cannot open it
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			change(e)
			e.idle(t)
			if _, err := e.acc.Groups(t.Context(), e.pw); !errors.Is(err, ErrSuspended) {
				t.Fatalf("err = %v, want ErrSuspended", err)
			}
		})
	}
}

func TestNoRefreshTokenKeepsLoginGroups(t *testing.T) {
	e := newEnv(t)
	u, _ := e.st.GetUser(t.Context(), "alice")
	u.RefreshToken = nil
	_ = e.st.PutUser(t.Context(), u)
	e.advance(24 * time.Hour)
	if got, err := e.acc.Groups(t.Context(), e.pw); err != nil || !reflect.DeepEqual(got, []string{"team-a"}) || e.ref.calls.Load() != 0 {
		t.Fatalf("Groups = %v, %v", got, err)
	}
}

// TestWaitedResultIsCheckedAgainstNow: a request beyond the grace period
// that waits for a refresh started earlier must not take that refresh's
// answer for an earlier moment as its own.
func TestWaitedResultIsCheckedAgainstNow(t *testing.T) {
	e := newEnv(t)
	e.ref.gate = make(chan struct{})
	e.ref.err = oidc.ErrUnavailable
	e.advance(2 * time.Minute)
	// Within grace: served, and the refresh starts, held at the gate.
	if _, err := e.acc.Groups(t.Context(), e.pw); err != nil {
		t.Fatal(err)
	}
	for e.ref.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	e.advance(2 * time.Hour) // now beyond every + grace
	got := make(chan error, 1)
	go func() { _, err := e.acc.Groups(context.Background(), e.pw); got <- err }()
	time.Sleep(50 * time.Millisecond) // let it join the flight (the assertion holds either way)
	close(e.ref.gate)
	if err := <-got; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("beyond grace, after a refresh that began within it: err = %v, want ErrUnavailable", err)
	}
}
