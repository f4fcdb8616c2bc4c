package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/store/redis"
	"github.com/registry-bridge/bridge/store/storetest"
)

// spy wraps a store, counting lookups and recording touches and the Watch
// callback.
type spy struct {
	store.Store

	mu       sync.Mutex
	gets     map[string]int
	userGets map[string]int
	touches  map[string][]time.Time
	watchFn  func(store.Event)
	// beforeGet, when set, runs inside GetPassword and GetUser before the
	// lookup.
	beforeGet func(id string)
	// muted, when set before Start, keeps the next store's own events
	// away from the cache: only deliver reaches it.
	muted bool
	// watchFails is how many Watch calls fail before one succeeds.
	watchFails int
	watches    int
}

func newSpy(next store.Store) *spy {
	return &spy{Store: next, gets: map[string]int{}, userGets: map[string]int{}, touches: map[string][]time.Time{}}
}

func (s *spy) GetUser(ctx context.Context, username string) (store.User, error) {
	s.mu.Lock()
	s.userGets[username]++
	hook := s.beforeGet
	s.mu.Unlock()
	if hook != nil {
		hook(username)
	}
	return s.Store.GetUser(ctx, username)
}

func (s *spy) userGetCount(username string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userGets[username]
}

func (s *spy) GetPassword(ctx context.Context, id string) (store.Password, error) {
	s.mu.Lock()
	s.gets[id]++
	hook := s.beforeGet
	s.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	return s.Store.GetPassword(ctx, id)
}

func (s *spy) TouchPassword(ctx context.Context, id string, t time.Time) error {
	s.mu.Lock()
	s.touches[id] = append(s.touches[id], t)
	s.mu.Unlock()
	return s.Store.TouchPassword(ctx, id, t)
}

func (s *spy) Watch(ctx context.Context, fn func(store.Event)) error {
	s.mu.Lock()
	s.watches++
	if s.watchFails > 0 {
		s.watchFails--
		s.mu.Unlock()
		return errors.New("spy: watch refused")
	}
	s.watchFn = fn
	muted := s.muted
	s.mu.Unlock()
	if muted {
		return nil
	}
	return s.Store.Watch(ctx, fn)
}

func (s *spy) getCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[id]
}

func (s *spy) touched(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.touches[id]...)
}

// deliver calls the Watch callback the cache registered, as the store would.
func (s *spy) deliver(t *testing.T, e store.Event) {
	t.Helper()
	s.mu.Lock()
	fn := s.watchFn
	s.mu.Unlock()
	if fn == nil {
		t.Fatal("cache did not Watch")
	}
	fn(e)
}

type fixture struct {
	clock *storetest.Clock
	mem   *memory.Store
	spy   *spy
	cache *Cache
}

// newFixture returns a started cache in front of a memory store, muted:
// only events the test delivers reach the cache.
func newFixture(t *testing.T, opts Options) fixture {
	t.Helper()
	f := newUnstarted(t, opts)
	f.spy.muted = true
	if err := f.cache.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f
}

// newUnstarted is newFixture without Start.
func newUnstarted(t *testing.T, opts Options) fixture {
	t.Helper()
	clock := storetest.NewClock(time.Unix(1_800_000_000, 0))
	mem := memory.New(clock.Now)
	sp := newSpy(mem)
	opts.Now = clock.Now
	c := New(sp, opts)
	t.Cleanup(func() { c.Close() })
	return fixture{clock: clock, mem: mem, spy: sp, cache: c}
}

func (f fixture) create(t *testing.T, id, user string, ttl time.Duration) store.Password {
	t.Helper()
	p := store.Password{ID: id, Username: user, Groups: []string{"g"}, Digest: []byte{1},
		CreatedAt: f.clock.Now(), ExpiresAt: f.clock.Now().Add(ttl)}
	if err := f.cache.CreatePassword(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f fixture) get(t *testing.T, id string) (store.Password, error) {
	t.Helper()
	return f.cache.GetPassword(t.Context(), id)
}

func TestGetCachesHits(t *testing.T) {
	f := newFixture(t, Options{TTL: time.Minute})
	p := f.create(t, "a", "alice", time.Hour)
	for range 5 {
		got, err := f.get(t, "a")
		if err != nil || got.ID != p.ID || got.Username != "alice" {
			t.Fatalf("GetPassword = %+v, %v", got, err)
		}
	}
	if n := f.spy.getCount("a"); n != 1 {
		t.Fatalf("next store asked %d times, want 1", n)
	}
}

func TestGetDoesNotCacheMisses(t *testing.T) {
	f := newFixture(t, Options{})
	for range 2 {
		if _, err := f.get(t, "later"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetPassword(unknown) = %v", err)
		}
	}
	if n := f.spy.getCount("later"); n != 2 {
		t.Fatalf("next store asked %d times for a miss, want 2", n)
	}
	f.create(t, "later", "alice", time.Hour)
	if _, err := f.get(t, "later"); err != nil {
		t.Fatalf("GetPassword after create = %v", err)
	}
}

func TestEntryLifetime(t *testing.T) {
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
		{"record alive before its expiry", time.Hour, time.Minute, time.Minute - time.Second, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{TTL: tt.ttl})
			f.create(t, "a", "alice", tt.expiresIn)
			if _, err := f.get(t, "a"); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(tt.advance)
			_, err := f.get(t, "a")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetPassword = %v, want %v", err, tt.wantErr)
			}
			if n := f.spy.getCount("a"); n != tt.wantGets {
				t.Fatalf("next store asked %d times, want %d", n, tt.wantGets)
			}
		})
	}
}

func TestLocalDeletesInvalidateAtOnce(t *testing.T) {
	tests := []struct {
		name   string
		delete func(t *testing.T, c *Cache)
	}{
		{"DeletePassword", func(t *testing.T, c *Cache) {
			if err := c.DeletePassword(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
		}},
		{"DeleteUserPasswords", func(t *testing.T, c *Cache) {
			if n, err := c.DeleteUserPasswords(t.Context(), "alice"); err != nil || n != 1 {
				t.Fatalf("DeleteUserPasswords = %d, %v", n, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.create(t, "a", "alice", time.Hour)
			f.create(t, "b", "bob", time.Hour)
			for _, id := range []string{"a", "b"} {
				if _, err := f.get(t, id); err != nil {
					t.Fatal(err)
				}
			}
			tt.delete(t, f.cache)
			if _, err := f.get(t, "a"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetPassword after delete = %v, want ErrNotFound", err)
			}
			if _, err := f.get(t, "b"); err != nil || f.spy.getCount("b") != 1 {
				t.Fatalf("bob's cached record was dropped (err %v, lookups %d)", err, f.spy.getCount("b"))
			}
		})
	}
}

func TestEventsInvalidate(t *testing.T) {
	tests := []struct {
		name     string
		event    store.Event
		wantGets map[string]int // lookups of the next store after a second Get of each id
	}{
		{"PasswordChanged drops one", store.Event{Kind: store.PasswordChanged, ID: "a"}, map[string]int{"a": 2, "b": 1}},
		{"Reset drops all", store.Event{Kind: store.Reset}, map[string]int{"a": 2, "b": 2}},
		{"unknown id drops nothing", store.Event{Kind: store.PasswordChanged, ID: "zz"}, map[string]int{"a": 1, "b": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			for _, id := range []string{"a", "b"} {
				f.create(t, id, "alice", time.Hour)
				if _, err := f.get(t, id); err != nil {
					t.Fatal(err)
				}
			}
			f.spy.deliver(t, tt.event)
			for id, want := range tt.wantGets {
				if _, err := f.get(t, id); err != nil {
					t.Fatal(err)
				}
				if n := f.spy.getCount(id); n != want {
					t.Errorf("%s: next store asked %d times, want %d", id, n, want)
				}
			}
		})
	}
}

func TestInvalidationDuringLookupIsNotCached(t *testing.T) {
	f := newFixture(t, Options{})
	f.create(t, "a", "alice", time.Hour)
	// The event arrives while the lookup is in flight: its result may be
	// from before the revocation, so it must not be cached.
	var once sync.Once
	f.spy.beforeGet = func(string) {
		once.Do(func() { f.spy.deliver(t, store.Event{Kind: store.PasswordChanged, ID: "a"}) })
	}
	if _, err := f.get(t, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.get(t, "a"); err != nil {
		t.Fatal(err)
	}
	if n := f.spy.getCount("a"); n != 2 {
		t.Fatalf("next store asked %d times, want 2 (the raced result was cached)", n)
	}
}

func TestTouchIsCoalesced(t *testing.T) {
	f := newFixture(t, Options{TouchInterval: time.Hour}) // only Close flushes
	base := f.clock.Now()
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		f.create(t, id, "alice", 2*time.Hour)
	}
	if _, err := f.get(t, "a"); err != nil { // cached before the touches
		t.Fatal(err)
	}
	latest := base.Add(999 * time.Second)
	for i := range 1000 {
		for _, id := range ids {
			at := base.Add(time.Duration((i*7919)%1000) * time.Second) // a permutation of 0..999s
			if err := f.cache.TouchPassword(t.Context(), id, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The cached record shows the latest use before any write.
	if p, err := f.get(t, "a"); err != nil || !p.LastUsedAt.Equal(latest) {
		t.Fatalf("cached LastUsedAt = %v, %v; want %v", p.LastUsedAt, err, latest)
	}
	if got := f.spy.touched("a"); len(got) != 0 {
		t.Fatalf("touches written before the interval: %v", got)
	}
	// Read the backend before Close closes it.
	if err := f.cache.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		got := f.spy.touched(id)
		if len(got) != 1 || !got[0].Equal(latest) {
			t.Errorf("%s: next store touched at %v, want once at %v", id, got, latest)
		}
	}
}

func TestTouchFlushedEveryInterval(t *testing.T) {
	f := newFixture(t, Options{TouchInterval: 10 * time.Millisecond})
	f.create(t, "a", "alice", time.Hour)
	at := f.clock.Now().Add(time.Second)
	if err := f.cache.TouchPassword(t.Context(), "a", at); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := f.mem.GetPassword(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		if p.LastUsedAt.Equal(at) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("touch not written within 5s; LastUsedAt = %v", p.LastUsedAt)
		}
		time.Sleep(5 * time.Millisecond) // polling the backend; the flusher has no hook
	}
	if got := f.spy.touched("a"); len(got) != 1 {
		t.Fatalf("next store touched %d times, want 1", len(got))
	}
}

func TestMaxEntries(t *testing.T) {
	f := newFixture(t, Options{MaxEntries: numShards * 2})
	for i := range 1000 {
		id := fmt.Sprintf("p%d", i)
		f.create(t, id, "alice", time.Hour)
		if _, err := f.get(t, id); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range f.cache.shards {
		n := len(f.cache.shards[i].pw.m)
		if n > 2 {
			t.Errorf("shard %d holds %d entries, bound 2", i, n)
		}
		total += n
	}
	if total == 0 {
		t.Error("nothing cached")
	}
}

func TestStartFailure(t *testing.T) {
	f := newUnstarted(t, Options{})
	if err := f.mem.Close(); err != nil { // memory's Watch fails once closed
		t.Fatal(err)
	}
	if err := f.cache.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded though Watch failed")
	}
}

// TestConcurrentUse is for -race: lookups, touches, deletes, user writes
// and events at once.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, Options{TouchInterval: time.Millisecond, MaxEntries: 64})
	const ids = 50
	for i := range ids {
		f.create(t, fmt.Sprintf("p%d", i), fmt.Sprintf("u%d", i%5), time.Hour)
	}
	var wg sync.WaitGroup
	var deleted atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				id := fmt.Sprintf("p%d", (i*g+i)%ids)
				switch {
				case g == 0 && i%50 == 0:
					if err := f.cache.DeletePassword(t.Context(), id); err == nil {
						deleted.Add(1)
					}
				case g == 1 && i%100 == 0:
					f.spy.deliver(t, store.Event{Kind: store.Reset})
				case g == 2 && i%150 == 0:
					_, _ = f.cache.DeleteUserPasswords(t.Context(), "u1")
				case g == 3 && i%30 == 0:
					_ = f.cache.PutUser(t.Context(), store.User{Username: fmt.Sprintf("u%d", i%5), ExpiresAt: f.clock.Now().Add(time.Hour)})
				case g == 4 && i%70 == 0:
					_ = f.cache.DeleteUser(t.Context(), fmt.Sprintf("u%d", i%5))
				default:
					_, _ = f.cache.GetPassword(t.Context(), id)
					_ = f.cache.TouchPassword(t.Context(), id, f.clock.Now())
					_, _ = f.cache.GetUser(t.Context(), fmt.Sprintf("u%d", i%5))
				}
			}
		})
	}
	wg.Wait()
	// Whatever was deleted is gone from the cache too.
	for i := range ids {
		id := fmt.Sprintf("p%d", i)
		_, memErr := f.mem.GetPassword(t.Context(), id)
		_, cacheErr := f.cache.GetPassword(t.Context(), id)
		if errors.Is(memErr, store.ErrNotFound) != errors.Is(cacheErr, store.ErrNotFound) {
			t.Errorf("%s: store says %v, cache says %v", id, memErr, cacheErr)
		}
	}
	for i := range 5 {
		name := fmt.Sprintf("u%d", i)
		_, memErr := f.mem.GetUser(t.Context(), name)
		_, cacheErr := f.cache.GetUser(t.Context(), name)
		if errors.Is(memErr, store.ErrNotFound) != errors.Is(cacheErr, store.ErrNotFound) {
			t.Errorf("user %s: store says %v, cache says %v", name, memErr, cacheErr)
		}
	}
}

// TestRevokeReachesOtherProcess: two caches, as in two bridge processes,
// over one backend. A revoke through one makes the other answer
// ErrNotFound within a second.
func TestRevokeReachesOtherProcess(t *testing.T) {
	for _, backend := range sharedBackends {
		t.Run(backend.name, func(t *testing.T) {
			procA, procB := twoProcesses(t, backend.open)
			ctx := t.Context()
			tests := []struct {
				name   string
				ids    []string
				revoke func() error
			}{
				{"DeletePassword", []string{"one"}, func() error { return procA.DeletePassword(ctx, "one") }},
				{"DeleteUserPasswords", []string{"two", "three"}, func() error {
					_, err := procA.DeleteUserPasswords(ctx, "bob")
					return err
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					for _, id := range tt.ids {
						p := store.Password{ID: id, Username: "bob", Digest: []byte{1}, ExpiresAt: time.Now().Add(time.Hour)}
						if err := procA.CreatePassword(ctx, p); err != nil {
							t.Fatal(err)
						}
						if _, err := procB.GetPassword(ctx, id); err != nil { // now cached in B for an hour
							t.Fatal(err)
						}
					}
					if err := tt.revoke(); err != nil {
						t.Fatal(err)
					}
					for _, id := range tt.ids {
						waitNotFound(t, procB, id, time.Second)
					}
				})
			}
		})
	}
}

// sharedBackends open two handles on one backend, as two bridge processes
// would hold.
var sharedBackends = []struct {
	name string
	open func(t *testing.T) (a, b store.Store)
}{
	{"memory", func(t *testing.T) (store.Store, store.Store) {
		m := memory.New(time.Now)
		return m, m
	}},
	{"redis", func(t *testing.T) (store.Store, store.Store) {
		addr := testenv.Redis(t)
		open := func() store.Store {
			st, err := redis.New(redis.Config{URL: "redis://" + addr, KeyPrefix: "shared:"}, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		return open(), open()
	}},
}

// twoProcesses puts a started cache with an hour's TTL in front of each
// handle open returns; they close with the test.
func twoProcesses(t *testing.T, open func(t *testing.T) (a, b store.Store)) (procA, procB *Cache) {
	t.Helper()
	a, b := open(t)
	procA, procB = New(a, Options{TTL: time.Hour}), New(b, Options{TTL: time.Hour})
	for _, c := range []*Cache{procA, procB} {
		t.Cleanup(func() { c.Close() })
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return procA, procB
}

// waitNotFound polls c until id is gone, failing after within.
func waitNotFound(t *testing.T, c *Cache, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := c.GetPassword(t.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("GetPassword(%s) = %v", id, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still served %v after it was revoked elsewhere", id, within)
		}
		time.Sleep(time.Millisecond) // polling for an asynchronous event
	}
}

func BenchmarkCacheGetParallel(b *testing.B) {
	const n = 1024
	mem := memory.New(time.Now)
	c := New(mem, Options{})
	defer c.Close()
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("id%013d", i)
		p := store.Password{ID: ids[i], Username: "u", Groups: []string{"a", "b", "c", "d", "e"},
			Digest: make([]byte, 32), ExpiresAt: time.Now().Add(time.Hour)}
		if err := mem.CreatePassword(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		if _, err := c.GetPassword(context.Background(), ids[i]); err != nil {
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
			if _, err := c.GetPassword(ctx, ids[i%n]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkCacheGetTouchParallel(b *testing.B) {
	const n = 1024
	mem := memory.New(time.Now)
	c := New(mem, Options{TouchInterval: time.Hour})
	defer c.Close()
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("id%013d", i)
		p := store.Password{ID: ids[i], Username: "u", Digest: make([]byte, 32), ExpiresAt: time.Now().Add(time.Hour)}
		if err := mem.CreatePassword(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
	var seed atomic.Int64
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		ctx := context.Background()
		for pb.Next() {
			id := ids[i%n]
			if _, err := c.GetPassword(ctx, id); err != nil {
				b.Error(err)
				return
			}
			_ = c.TouchPassword(ctx, id, now)
			i++
		}
	})
}
