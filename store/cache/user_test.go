package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
)

func (f fixture) putUser(t *testing.T, name string, ttl time.Duration, groups ...string) store.User {
	t.Helper()
	u := store.User{Username: name, Subject: "sub-" + name, Groups: groups, RefreshToken: []byte{1, 2},
		RevalidatedAt: f.clock.Now(), ExpiresAt: f.clock.Now().Add(ttl)}
	if err := f.cache.PutUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func (f fixture) getUser(t *testing.T, name string) (store.User, error) {
	t.Helper()
	return f.cache.GetUser(t.Context(), name)
}

func TestGetUserCachesHits(t *testing.T) {
	f := newFixture(t, Options{TTL: time.Minute})
	f.putUser(t, "alice", time.Hour, "team-a")
	for range 5 {
		got, err := f.getUser(t, "alice")
		if err != nil || got.Username != "alice" || !slices.Equal(got.Groups, []string{"team-a"}) {
			t.Fatalf("GetUser = %+v, %v", got, err)
		}
	}
	if n := f.spy.userGetCount("alice"); n != 1 {
		t.Fatalf("next store asked %d times, want 1", n)
	}
	// A password id equal to the username is another record.
	if _, err := f.get(t, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPassword(alice) = %v, want ErrNotFound", err)
	}
}

func TestGetUserDoesNotCacheMisses(t *testing.T) {
	f := newFixture(t, Options{})
	for range 2 {
		if _, err := f.getUser(t, "later"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetUser(unknown) = %v", err)
		}
	}
	if n := f.spy.userGetCount("later"); n != 2 {
		t.Fatalf("next store asked %d times for a miss, want 2", n)
	}
	f.putUser(t, "later", time.Hour)
	if _, err := f.getUser(t, "later"); err != nil {
		t.Fatalf("GetUser after PutUser = %v", err)
	}
}

func TestUserEntryLifetime(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration // cache TTL
		expiresIn time.Duration // record lifetime
		advance   time.Duration
		wantGets  int
		wantErr   error
	}{
		{"within TTL", time.Minute, time.Hour, time.Minute - time.Second, 1, nil},
		{"TTL reached", time.Minute, time.Hour, time.Minute, 2, nil},
		{"record expires before TTL", time.Hour, time.Minute, time.Minute, 2, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{TTL: tt.ttl})
			f.putUser(t, "alice", tt.expiresIn)
			if _, err := f.getUser(t, "alice"); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(tt.advance)
			if _, err := f.getUser(t, "alice"); !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetUser = %v, want %v", err, tt.wantErr)
			}
			if n := f.spy.userGetCount("alice"); n != tt.wantGets {
				t.Fatalf("next store asked %d times, want %d", n, tt.wantGets)
			}
		})
	}
}

func TestLocalUserWritesInvalidateAtOnce(t *testing.T) {
	tests := []struct {
		name       string
		write      func(t *testing.T, f fixture)
		wantGroups []string // nil: want ErrNotFound
	}{
		{"PutUser", func(t *testing.T, f fixture) { f.putUser(t, "alice", time.Hour, "team-b") }, []string{"team-b"}},
		{"DeleteUser", func(t *testing.T, f fixture) {
			if err := f.cache.DeleteUser(t.Context(), "alice"); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.putUser(t, "alice", time.Hour, "team-a")
			f.putUser(t, "bob", time.Hour, "team-a")
			for _, name := range []string{"alice", "bob"} {
				if _, err := f.getUser(t, name); err != nil {
					t.Fatal(err)
				}
			}
			tt.write(t, f)
			got, err := f.getUser(t, "alice")
			switch {
			case tt.wantGroups == nil && !errors.Is(err, store.ErrNotFound):
				t.Fatalf("GetUser after the write = %+v, %v; want ErrNotFound", got, err)
			case tt.wantGroups != nil && (err != nil || !slices.Equal(got.Groups, tt.wantGroups)):
				t.Fatalf("GetUser after the write = %v, %v; want groups %v", got.Groups, err, tt.wantGroups)
			}
			if _, err := f.getUser(t, "bob"); err != nil || f.spy.userGetCount("bob") != 1 {
				t.Fatalf("bob's cached record was dropped (err %v, lookups %d)", err, f.spy.userGetCount("bob"))
			}
		})
	}
}

func TestUserEventsInvalidate(t *testing.T) {
	tests := []struct {
		name     string
		event    store.Event
		wantGets map[string]int // lookups of the next store after a second GetUser of each
	}{
		{"UserChanged drops one", store.Event{Kind: store.UserChanged, ID: "alice"}, map[string]int{"alice": 2, "bob": 1}},
		{"Reset drops all", store.Event{Kind: store.Reset}, map[string]int{"alice": 2, "bob": 2}},
		{"PasswordChanged of the same name drops nothing", store.Event{Kind: store.PasswordChanged, ID: "alice"}, map[string]int{"alice": 1, "bob": 1}},
		{"unknown user drops nothing", store.Event{Kind: store.UserChanged, ID: "zz"}, map[string]int{"alice": 1, "bob": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			for _, name := range []string{"alice", "bob"} {
				f.putUser(t, name, time.Hour)
				if _, err := f.getUser(t, name); err != nil {
					t.Fatal(err)
				}
			}
			f.spy.deliver(t, tt.event)
			for name, want := range tt.wantGets {
				if _, err := f.getUser(t, name); err != nil {
					t.Fatal(err)
				}
				if n := f.spy.userGetCount(name); n != want {
					t.Errorf("%s: next store asked %d times, want %d", name, n, want)
				}
			}
		})
	}
}

func TestUserInvalidationDuringLookupIsNotCached(t *testing.T) {
	f := newFixture(t, Options{})
	f.putUser(t, "alice", time.Hour)
	var once sync.Once
	f.spy.beforeGet = func(string) {
		once.Do(func() { f.spy.deliver(t, store.Event{Kind: store.UserChanged, ID: "alice"}) })
	}
	for range 2 {
		if _, err := f.getUser(t, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.spy.userGetCount("alice"); n != 2 {
		t.Fatalf("next store asked %d times, want 2 (the raced result was cached)", n)
	}
}

func TestMaxUserEntries(t *testing.T) {
	f := newFixture(t, Options{MaxEntries: numShards * 2})
	for i := range 1000 {
		name := fmt.Sprintf("u%d", i)
		f.putUser(t, name, time.Hour)
		if _, err := f.getUser(t, name); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range f.cache.shards {
		n := len(f.cache.shards[i].users.m)
		if n > 2 {
			t.Errorf("shard %d holds %d users, bound 2", i, n)
		}
		total += n
	}
	if total == 0 {
		t.Error("nothing cached")
	}
}

// TestPassThrough: sessions and locks go straight to the
// next store, uncached.
func TestPassThrough(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := t.Context()
	now := f.clock.Now()

	sess := store.Session{ID: "s", Username: "alice", ExpiresAt: now.Add(time.Hour)}
	if err := f.cache.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cache.GetSession(ctx, "s"); err != nil {
		t.Fatalf("GetSession through the cache = %v", err)
	}
	if err := f.cache.TouchSession(ctx, "s", now.Add(time.Minute), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := f.mem.GetSession(ctx, "s"); err != nil || !got.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("next store's session = %+v, %v; want the touch applied", got, err)
	}
	if err := f.cache.DeleteSession(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mem.GetSession(ctx, "s"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("next store's session after DeleteSession = %v, want ErrNotFound", err)
	}

	unlock, ok, err := f.cache.TryLock(ctx, "l", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if _, ok, _ := f.mem.TryLock(ctx, "l", time.Minute); ok {
		t.Fatal("the cache's lock is not held in the next store")
	}
	unlock()
	if _, ok, _ := f.mem.TryLock(ctx, "l", time.Minute); !ok {
		t.Fatal("the cache's unlock did not reach the next store")
	}
}

// TestUserChangeReachesOtherProcess: two caches, as in two bridge
// processes, over one backend. A user written or deleted through one is
// re-read by the other within a second.
func TestUserChangeReachesOtherProcess(t *testing.T) {
	for _, backend := range sharedBackends {
		t.Run(backend.name, func(t *testing.T) {
			procA, procB := twoProcesses(t, backend.open)
			ctx := t.Context()
			u := store.User{Username: "carol", Subject: "sub-carol", Groups: []string{"team-a"}, ExpiresAt: time.Now().Add(time.Hour)}
			if err := procA.PutUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, err := procB.GetUser(ctx, "carol"); err != nil { // now cached in B for an hour
				t.Fatal(err)
			}

			u.Groups, u.Suspended = []string{"team-b"}, "refresh token rejected"
			if err := procA.PutUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			waitUser(t, procB, "carol", time.Second, func(got store.User, err error) bool {
				return err == nil && got.Suspended != "" && slices.Equal(got.Groups, u.Groups)
			})

			if err := procA.DeleteUser(ctx, "carol"); err != nil {
				t.Fatal(err)
			}
			waitUser(t, procB, "carol", time.Second, func(_ store.User, err error) bool {
				return errors.Is(err, store.ErrNotFound)
			})
		})
	}
}

// waitUser polls c's GetUser(name) until done holds, failing after within.
func waitUser(t *testing.T, c *Cache, name string, within time.Duration, done func(store.User, error) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		u, err := c.GetUser(t.Context(), name)
		if done(u, err) {
			return
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetUser(%s) = %v", name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still read as %+v, %v %v after it changed elsewhere", name, u, err, within)
		}
		time.Sleep(time.Millisecond) // polling for an asynchronous event
	}
}

func BenchmarkCacheGetUserParallel(b *testing.B) {
	const n = 1024
	mem := memory.New(time.Now)
	c := New(mem, Options{})
	defer c.Close()
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("user%d", i)
		u := store.User{Username: names[i], Groups: []string{"a", "b", "c"}, RefreshToken: make([]byte, 64),
			ExpiresAt: time.Now().Add(time.Hour)}
		if err := c.PutUser(context.Background(), u); err != nil {
			b.Fatal(err)
		}
		if _, err := c.GetUser(context.Background(), names[i]); err != nil {
			b.Fatal(err)
		}
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		ctx := context.Background()
		for pb.Next() {
			if _, err := c.GetUser(ctx, names[i%n]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
