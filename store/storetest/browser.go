package storetest

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// lockPoll is how often testLockExpiry retries a lock whose ttl runs on a
// backend's real clock.
const lockPoll = 10 * time.Millisecond

// session returns a realistic session for user, created and last seen a
// minute ago and expiring in an hour, with a fresh id.
func (s suite) session(user string) store.Session {
	now := s.clock.Now()
	return store.Session{
		ID:         rand.Text() + rand.Text(),
		Subject:    "CgVhbGljZRIEbGRhcA-" + user,
		Username:   user,
		Email:      user + "@example.com",
		CSRF:       rand.Text(),
		IDToken:    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		CreatedAt:  now.Add(-time.Minute),
		LastSeenAt: now.Add(-time.Minute),
		ExpiresAt:  now.Add(time.Hour),
	}
}

// user returns a realistic user record, revalidated a minute ago, not to
// be revalidated again for five minutes, and expiring in a day.
func (s suite) user(name string) store.User {
	now := s.clock.Now()
	return store.User{
		Username:      name,
		Subject:       "CgVhbGljZRIEbGRhcA-" + name,
		Email:         name + "@example.com",
		Groups:        []string{"registry-admins", "team-a", "ünïcode-grøup"},
		RefreshToken:  []byte{0x00, 0x01, 0xfe, 0xff, '"', '\\', 0x7f},
		RevalidatedAt: now.Add(-time.Minute),
		NextAttemptAt: now.Add(5 * time.Minute),
		ExpiresAt:     now.Add(24 * time.Hour),
	}
}

func mustCreateSession(t *testing.T, st store.Store, sess store.Session) {
	t.Helper()
	if err := st.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func mustGetSession(t *testing.T, st store.Store, want store.Session) {
	t.Helper()
	got, err := st.GetSession(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if d := diffRecords(want, got); d != "" {
		t.Fatalf("GetSession differs from what was stored:\n%s", d)
	}
}

func mustNotFindSession(t *testing.T, st store.Store, id string) {
	t.Helper()
	if sess, err := st.GetSession(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession = %+v, %v; want ErrNotFound", sess, err)
	}
}

func mustPutUser(t *testing.T, st store.Store, u store.User) {
	t.Helper()
	if err := st.PutUser(t.Context(), u); err != nil {
		t.Fatalf("PutUser(%s): %v", u.Username, err)
	}
}

func mustGetUser(t *testing.T, st store.Store, want store.User) {
	t.Helper()
	got, err := st.GetUser(t.Context(), want.Username)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", want.Username, err)
	}
	if d := diffRecords(want, got); d != "" {
		t.Fatalf("GetUser(%s) differs from what was stored:\n%s", want.Username, d)
	}
}

func mustNotFindUser(t *testing.T, st store.Store, username string) {
	t.Helper()
	if u, err := st.GetUser(t.Context(), username); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser(%s) = %+v, %v; want ErrNotFound", username, u, err)
	}
}

func testSessionRoundTrip(t *testing.T, s suite) {
	full := s.session("alice.example-20chars")
	full.CreatedAt = full.CreatedAt.Add(123 * time.Millisecond)
	minimal := store.Session{ID: "minimal-session-id", ExpiresAt: s.clock.Now().Add(time.Hour)}
	for _, sess := range []store.Session{full, minimal} {
		mustCreateSession(t, s.a, sess)
		mustGetSession(t, s.a, sess)
		mustGetSession(t, s.b, sess)
	}
	got, err := s.b.GetSession(t.Context(), minimal.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.IsZero() || !got.LastSeenAt.IsZero() || got.Email != "" {
		t.Fatalf("zero fields came back as CreatedAt=%v LastSeenAt=%v Email=%q", got.CreatedAt, got.LastSeenAt, got.Email)
	}
}

func testSessionDuplicate(t *testing.T, s suite) {
	orig := s.session("alice")
	mustCreateSession(t, s.a, orig)
	dup := s.session("mallory")
	dup.ID = orig.ID
	for _, st := range []store.Store{s.a, s.b} {
		if err := st.CreateSession(t.Context(), dup); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("CreateSession(duplicate id) = %v, want ErrAlreadyExists", err)
		}
	}
	mustGetSession(t, s.b, orig)
}

func testSessionInvalid(t *testing.T, s suite) {
	now := s.clock.Now()
	tests := []struct {
		name   string
		mutate func(*store.Session)
	}{
		{"no id", func(sess *store.Session) { sess.ID = "" }},
		{"no expiry", func(sess *store.Session) { sess.ExpiresAt = time.Time{} }},
		{"expires now", func(sess *store.Session) { sess.ExpiresAt = now }},
		{"expired", func(sess *store.Session) { sess.ExpiresAt = now.Add(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess := s.session("alice")
			tt.mutate(&sess)
			err := s.a.CreateSession(t.Context(), sess)
			if err == nil || errors.Is(err, store.ErrAlreadyExists) {
				t.Fatalf("CreateSession = %v, want a validation error", err)
			}
			mustNotFindSession(t, s.b, sess.ID)
		})
	}
}

func testSessionExpiry(t *testing.T, s suite) {
	sess := s.session("alice")
	mustCreateSession(t, s.a, sess)

	s.clock.Advance(sess.ExpiresAt.Sub(s.clock.Now()) - time.Second)
	mustGetSession(t, s.b, sess)

	s.clock.Advance(time.Second) // now == ExpiresAt: expired
	mustNotFindSession(t, s.a, sess.ID)
	mustNotFindSession(t, s.b, sess.ID)

	// Touching an expired session fails and does not revive it.
	now := s.clock.Now()
	if err := s.a.TouchSession(t.Context(), sess.ID, now, now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TouchSession(expired) = %v, want ErrNotFound", err)
	}
	mustNotFindSession(t, s.b, sess.ID)

	// The id of an expired session is free again.
	reuse := s.session("bob")
	reuse.ID = sess.ID
	mustCreateSession(t, s.b, reuse)
	mustGetSession(t, s.a, reuse)
}

func testSessionTouch(t *testing.T, s suite) {
	sess := s.session("alice")
	mustCreateSession(t, s.a, sess)
	ctx := t.Context()

	t1 := s.clock.Now().Add(10 * time.Second)
	steps := []struct {
		name                string
		seen, expires       time.Time
		wantSeen, wantUntil time.Time
	}{
		{"later", t1, t1.Add(2 * time.Hour), t1, t1.Add(2 * time.Hour)},
		{"earlier changes nothing", t1.Add(-5 * time.Second), t1.Add(3 * time.Hour), t1, t1.Add(2 * time.Hour)},
		{"equal sets the expiry, even earlier", t1, t1.Add(90 * time.Minute), t1, t1.Add(90 * time.Minute)},
		{"much later", t1.Add(50 * time.Minute), t1.Add(170 * time.Minute), t1.Add(50 * time.Minute), t1.Add(170 * time.Minute)},
	}
	for i, step := range steps {
		st := []store.Store{s.a, s.b}[i%2]
		if err := st.TouchSession(ctx, sess.ID, step.seen, step.expires); err != nil {
			t.Fatalf("%s: TouchSession: %v", step.name, err)
		}
		want := sess
		want.LastSeenAt, want.ExpiresAt = step.wantSeen, step.wantUntil
		mustGetSession(t, s.a, want)
	}

	// The touches outlived the session's first expiry.
	s.clock.Advance(2 * time.Hour)
	want := sess
	want.LastSeenAt, want.ExpiresAt = steps[3].wantSeen, steps[3].wantUntil
	mustGetSession(t, s.b, want)

	// An expiry that is not after now ends the session.
	now := s.clock.Now()
	if err := s.b.TouchSession(ctx, sess.ID, now, now); err != nil {
		t.Fatalf("TouchSession(expires now) = %v", err)
	}
	mustNotFindSession(t, s.a, sess.ID)

	// Touching a deleted or unknown session fails and creates nothing.
	gone := s.session("bob")
	mustCreateSession(t, s.a, gone)
	if err := s.a.DeleteSession(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{gone.ID, "doesnotexist"} {
		if err := s.b.TouchSession(ctx, id, now, now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("TouchSession(%s) = %v, want ErrNotFound", id, err)
		}
		mustNotFindSession(t, s.a, id)
	}
}

func testSessionTouchConcurrent(t *testing.T, s suite) {
	sess := s.session("alice")
	mustCreateSession(t, s.a, sess)
	base := s.clock.Now()
	latest := base.Add(500 * time.Second)

	var wg sync.WaitGroup
	for g := range 8 {
		st := []store.Store{s.a, s.b}[g%2]
		wg.Go(func() {
			for i := range 25 {
				seen := base.Add(time.Duration((i*37+g*11)%500) * time.Second)
				if g == 3 && i == 12 {
					seen = latest
				}
				// Each touch's pair must stay a pair: the expiry that
				// wins belongs to the latest seen.
				if err := st.TouchSession(t.Context(), sess.ID, seen, seen.Add(time.Hour)); err != nil {
					t.Errorf("TouchSession: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := sess
	want.LastSeenAt, want.ExpiresAt = latest, latest.Add(time.Hour)
	mustGetSession(t, s.b, want)
}

func testSessionDelete(t *testing.T, s suite) {
	gone, kept := s.session("alice"), s.session("alice")
	mustCreateSession(t, s.a, gone)
	mustCreateSession(t, s.a, kept)
	if err := s.b.DeleteSession(t.Context(), gone.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	mustNotFindSession(t, s.a, gone.ID)
	mustGetSession(t, s.a, kept)
	for _, id := range []string{gone.ID, "doesnotexist"} {
		if err := s.a.DeleteSession(t.Context(), id); err != nil {
			t.Fatalf("DeleteSession(%s) = %v, want nil for a missing session", id, err)
		}
	}
}

func testUserRoundTrip(t *testing.T, s suite) {
	now := s.clock.Now()
	tests := []struct {
		name string
		user store.User
	}{
		{"full", func() store.User {
			u := s.user("alice.example-20chars")
			u.RevalidatedAt = now.Add(-90 * time.Second).Add(250 * time.Millisecond)
			u.UnreachableSince = now.Add(-time.Minute)
			u.NextAttemptAt = now.Add(30 * time.Second).Add(125 * time.Millisecond)
			u.Suspended = "the identity provider no longer accepts this login – ☃"
			return u
		}()},
		{"just logged in", s.user("bob")},
		{"minimal", store.User{Username: "carol", ExpiresAt: now.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustPutUser(t, s.a, tt.user)
			mustGetUser(t, s.a, tt.user)
			mustGetUser(t, s.b, tt.user) // times compare with Equal: zero stays zero
		})
	}
}

func testUserReplace(t *testing.T, s suite) {
	first := s.user("alice")
	first.UnreachableSince = s.clock.Now().Add(-time.Minute)
	mustPutUser(t, s.a, first)

	// A suspension: groups change, the refresh token and the outage
	// go, and the record lives a shorter time.
	second := first
	second.Groups = []string{"team-b"}
	second.RefreshToken = nil
	second.UnreachableSince = time.Time{}
	second.Suspended = "refresh token rejected"
	second.ExpiresAt = s.clock.Now().Add(time.Hour)
	mustPutUser(t, s.b, second)
	mustGetUser(t, s.a, second)

	s.clock.Advance(time.Hour)
	mustNotFindUser(t, s.a, "alice")
	mustNotFindUser(t, s.b, "alice")
}

func testUserInvalid(t *testing.T, s suite) {
	now := s.clock.Now()
	tests := []struct {
		name   string
		mutate func(*store.User)
	}{
		{"no username", func(u *store.User) { u.Username = "" }},
		{"no expiry", func(u *store.User) { u.ExpiresAt = time.Time{} }},
		{"expires now", func(u *store.User) { u.ExpiresAt = now }},
		{"expired", func(u *store.User) { u.ExpiresAt = now.Add(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := s.user("alice")
			tt.mutate(&u)
			if err := s.a.PutUser(t.Context(), u); err == nil {
				t.Fatal("PutUser succeeded, want a validation error")
			}
			mustNotFindUser(t, s.b, u.Username)
		})
	}
}

func testUserExpiry(t *testing.T, s suite) {
	short, long := s.user("alice"), s.user("bob")
	short.ExpiresAt = s.clock.Now().Add(time.Hour)
	mustPutUser(t, s.a, short)
	mustPutUser(t, s.a, long)

	s.clock.Advance(time.Hour - time.Second)
	mustGetUser(t, s.b, short)
	s.clock.Advance(time.Second) // now == ExpiresAt: expired
	mustNotFindUser(t, s.a, short.Username)
	mustNotFindUser(t, s.b, short.Username)
	mustGetUser(t, s.b, long)
}

func testUserDelete(t *testing.T, s suite) {
	gone, kept := s.user("alice"), s.user("bob")
	mustPutUser(t, s.a, gone)
	mustPutUser(t, s.a, kept)
	if err := s.b.DeleteUser(t.Context(), gone.Username); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	mustNotFindUser(t, s.a, gone.Username)
	mustGetUser(t, s.a, kept)
	for _, name := range []string{gone.Username, "nobody"} {
		if err := s.a.DeleteUser(t.Context(), name); err != nil {
			t.Fatalf("DeleteUser(%s) = %v, want nil for a missing user", name, err)
		}
	}
}

func testUserWatch(t *testing.T, s suite) {
	events := NewEventLog()
	if err := s.b.Watch(t.Context(), events.Add); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	mustPutUser(t, s.a, s.user("alice"))
	events.WaitFor(t, "UserChanged for PutUser", UsersChanged("alice"))
	if err := s.a.DeleteUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	events.WaitFor(t, "a second UserChanged, for DeleteUser", func(events []store.Event) bool {
		return count(events, store.Event{Kind: store.UserChanged, ID: "alice"}) >= 2
	})

	// Password events stay password events, and user events name users.
	p := s.password(t, "alice")
	s.create(t, p)
	if err := s.a.DeletePassword(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
	events.WaitFor(t, "PasswordChanged for DeletePassword", Changed(p.ID))
	for _, e := range events.Events() {
		if (e.Kind == store.UserChanged && e.ID != "alice") || (e.Kind == store.PasswordChanged && e.ID != p.ID) {
			t.Errorf("unexpected event %+v", e)
		}
	}
}

func testLockExclusive(t *testing.T, s suite) {
	ctx := t.Context()
	unlock, ok, err := s.a.TryLock(ctx, "revalidate:alice", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v; want the lock", ok, err)
	}
	for _, h := range []store.Store{s.b, s.a} {
		other, ok, err := h.TryLock(ctx, "revalidate:alice", time.Minute)
		if err != nil || ok {
			t.Fatalf("TryLock of a held lock = %v, %v; want false, nil", ok, err)
		}
		other() // a no-op, and must not release the holder's lock
	}
	if _, ok, err := s.b.TryLock(ctx, "revalidate:alice", time.Minute); err != nil || ok {
		t.Fatalf("after a loser's unlock, TryLock = %v, %v; want false, nil", ok, err)
	}
	unlockBob, ok, err := s.b.TryLock(ctx, "revalidate:bob", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock of another name = %v, %v; want the lock", ok, err)
	}
	defer unlockBob()

	unlock()
	unlockB, ok, err := s.b.TryLock(ctx, "revalidate:alice", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v; want the lock", ok, err)
	}
	unlock() // a second call must not release b's lock
	if _, ok, err := s.a.TryLock(ctx, "revalidate:alice", time.Minute); err != nil || ok {
		t.Fatalf("after a repeated unlock, TryLock = %v, %v; want false, nil", ok, err)
	}
	unlockB()
}

func testLockConcurrent(t *testing.T, s suite) {
	const contenders = 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   int
		others []error
	)
	for i := range contenders {
		h := []store.Store{s.a, s.b}[i%2]
		wg.Go(func() {
			_, ok, err := h.TryLock(t.Context(), "race", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				others = append(others, err)
			} else if ok {
				wins++
			}
		})
	}
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected errors: %v", others)
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent TryLocks got the lock, want exactly 1", wins, contenders)
	}
}

// testLockExpiry lets a lock's ttl pass — by the suite's clock for a
// backend that uses it, by real time for one whose server keeps the ttl —
// and checks that the late holder's unlock leaves the next holder's lock
// alone.
func testLockExpiry(t *testing.T, s suite) {
	ctx := t.Context()
	const ttl = 200 * time.Millisecond
	unlockA, ok, err := s.a.TryLock(ctx, "x", ttl)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v; want the lock", ok, err)
	}
	s.clock.Advance(ttl)
	deadline := time.Now().Add(eventTimeout)
	var unlockB func()
	for {
		unlockB, ok, err = s.b.TryLock(ctx, "x", time.Minute)
		if err != nil {
			t.Fatalf("TryLock: %v", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock with ttl %v still held after %v", ttl, eventTimeout)
		}
		time.Sleep(lockPoll) // the ttl may run on the server's real clock
	}

	unlockA() // too late: b holds the lock now
	if _, ok, err := s.a.TryLock(ctx, "x", time.Minute); err != nil || ok {
		t.Fatalf("after the expired holder's unlock, TryLock = %v, %v; want false, nil (b's lock was released)", ok, err)
	}
	unlockB()
	unlockA2, ok, err := s.a.TryLock(ctx, "x", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after b's unlock = %v, %v; want the lock", ok, err)
	}
	unlockA2()
}

func testLockInvalid(t *testing.T, s suite) {
	for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
		t.Run(ttl.String(), func(t *testing.T) {
			unlock, ok, err := s.a.TryLock(t.Context(), "x", ttl)
			if err == nil || ok {
				t.Fatalf("TryLock(ttl %v) = %v, %v; want an error", ttl, ok, err)
			}
			if unlock == nil {
				t.Fatal("TryLock returned a nil unlock")
			}
			unlock()
		})
	}
	// The rejected calls took nothing.
	unlock, ok, err := s.b.TryLock(t.Context(), "x", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v; want the lock", ok, err)
	}
	unlock()
}

// count returns how many times e occurs in events.
func count(events []store.Event, e store.Event) int {
	n := 0
	for _, got := range events {
		if got == e {
			n++
		}
	}
	return n
}
