package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// Defaults for zero Options fields.
const (
	DefaultTTL           = 30 * time.Second
	DefaultMaxEntries    = 100_000
	DefaultTouchInterval = time.Minute
)

const (
	numShards = 64
	// evictProbe is how many entries a full shard looks at to find an
	// expired one before it evicts an arbitrary one.
	evictProbe = 8
	// closeFlushTimeout bounds the final flush of pending touches.
	closeFlushTimeout = 5 * time.Second
)

// Options configures a Cache. Every field is optional.
type Options struct {
	// TTL bounds how long a record is served without asking the next
	// store, should an invalidation event be lost. Default DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds the number of cached passwords, and separately
	// the number of cached users. Default DefaultMaxEntries.
	MaxEntries int
	// TouchInterval is how often pending TouchPassword calls are written to
	// the next store, at most one write per password each time. Default
	// DefaultTouchInterval.
	TouchInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives flush errors and resets. Default: discard.
	Log *slog.Logger
}

var _ store.Store = (*Cache)(nil)

// Cache is a store.Store that keeps GetPassword and GetUser hits in
// process memory in front of another store, which it owns: Close closes
// it. See the package documentation.
type Cache struct {
	next        store.Store
	ttl         time.Duration
	touchEvery  time.Duration
	maxPerShard int
	now         func() time.Time
	log         *slog.Logger
	seed        maphash.Seed
	shards      [numShards]shard

	mu       sync.Mutex
	flushing bool          // the flusher goroutine runs
	stop     chan struct{} // closed by Close
	stopped  chan struct{} // closed when the flusher returns
	closed   bool
}

// shard is one lock's worth of the cache.
type shard struct {
	mu      sync.RWMutex
	entries map[string]entry[store.Password] // by password id
	// gen counts invalidations of entries; a fetch that saw another gen
	// before it started must not fill the cache, since its result may
	// predate the invalidation.
	gen   uint64
	users map[string]entry[store.User] // by username
	// userGen is gen for users.
	userGen uint64
	// touches holds the latest pending TouchPassword time per id.
	touches map[string]time.Time
}

// entry is a cached record.
type entry[R any] struct {
	rec   R
	until time.Time // min(fetch time + TTL, the record's ExpiresAt)
}

// New returns a Cache in front of next. Call Start to follow next's
// invalidation events and flush touches, and Close when done.
func New(next store.Store, opts Options) *Cache {
	c := &Cache{
		next:       next,
		ttl:        opts.TTL,
		touchEvery: opts.TouchInterval,
		now:        opts.Now,
		log:        opts.Log,
		seed:       maphash.MakeSeed(),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.touchEvery <= 0 {
		c.touchEvery = DefaultTouchInterval
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	maxEntries := opts.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	c.maxPerShard = max(1, (maxEntries+numShards-1)/numShards)
	for i := range c.shards {
		c.shards[i].entries = make(map[string]entry[store.Password])
		c.shards[i].users = make(map[string]entry[store.User])
		c.shards[i].touches = make(map[string]time.Time)
	}
	return c
}

// Start subscribes to the next store's events, dropping a record when it
// changes elsewhere and everything on a Reset, and starts flushing touches
// every TouchInterval. Both stop when ctx ends or at Close. If the
// subscription fails Start returns the error; touches are flushed anyway,
// cached records still expire after TTL, and Start may be called again to
// retry.
func (c *Cache) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("cache: start: closed")
	}
	if !c.flushing {
		c.flushing = true
		go c.flushLoop(ctx)
	}
	c.mu.Unlock()
	if err := c.next.Watch(ctx, c.handle); err != nil {
		return fmt.Errorf("cache: start: %w", err)
	}
	return nil
}

// handle applies one event from the next store.
func (c *Cache) handle(e store.Event) {
	switch e.Kind {
	case store.PasswordChanged:
		c.invalidate(e.ID)
	case store.UserChanged:
		c.invalidateUser(e.ID)
	case store.Reset:
		c.log.Info("cache: dropping every cached password and user", "reason", "store reset")
		c.invalidateAll(func(store.Password) bool { return true })
		c.invalidateUsers()
	}
}

// GetPassword returns the cached record for id, or asks the next store and
// caches a hit until min(TTL, its ExpiresAt). Misses are not cached. The
// returned record shares its slices with the cache: callers must not
// modify Groups, Digest or RefreshDigest.
func (c *Cache) GetPassword(ctx context.Context, id string) (store.Password, error) {
	sh := c.shard(id)
	now := c.now()
	sh.mu.RLock()
	e, ok := sh.entries[id]
	gen := sh.gen
	sh.mu.RUnlock()
	if ok && now.Before(e.until) {
		return e.rec, nil
	}

	p, err := c.next.GetPassword(ctx, id)
	if err != nil {
		return p, err
	}
	p.Groups = slices.Clip(p.Groups)
	p.Digest = slices.Clip(p.Digest)
	p.RefreshDigest = slices.Clip(p.RefreshDigest)
	until := now.Add(c.ttl)
	if p.ExpiresAt.Before(until) {
		until = p.ExpiresAt
	}

	sh.mu.Lock()
	if sh.gen == gen {
		if t, ok := sh.touches[id]; ok && t.After(p.LastUsedAt) {
			p.LastUsedAt = t
		}
		if _, present := sh.entries[id]; !present && len(sh.entries) >= c.maxPerShard {
			evict(sh.entries, now)
		}
		sh.entries[id] = entry[store.Password]{rec: p, until: until}
	}
	sh.mu.Unlock()
	return p, nil
}

// evict makes room for one entry in a shard's map, whose lock the caller
// holds: it drops an expired one among the first few it sees, or else the
// first it sees (Go's map order is randomised).
func evict[R any](entries map[string]entry[R], now time.Time) {
	var victim string
	seen := 0
	for id, e := range entries {
		if !now.Before(e.until) {
			victim = id
			break
		}
		if seen == 0 {
			victim = id
		}
		if seen++; seen == evictProbe {
			break
		}
	}
	delete(entries, victim)
}

// TouchPassword records that id was used at t and returns at once; the
// cached record shows the new time immediately, and the next store gets at
// most one write per password per TouchInterval, with the latest time.
func (c *Cache) TouchPassword(_ context.Context, id string, t time.Time) error {
	sh := c.shard(id)
	sh.mu.Lock()
	if cur, ok := sh.touches[id]; !ok || t.After(cur) {
		sh.touches[id] = t
	}
	if e, ok := sh.entries[id]; ok && t.After(e.rec.LastUsedAt) {
		e.rec.LastUsedAt = t
		sh.entries[id] = e
	}
	sh.mu.Unlock()
	return nil
}

// DeletePassword deletes through the next store and drops the cached
// record at once, whatever the outcome.
func (c *Cache) DeletePassword(ctx context.Context, id string) error {
	err := c.next.DeletePassword(ctx, id)
	c.invalidate(id)
	return err
}

// DeleteUserPasswords deletes through the next store and drops the user's
// cached records at once, whatever the outcome.
func (c *Cache) DeleteUserPasswords(ctx context.Context, username string) (int, error) {
	n, err := c.next.DeleteUserPasswords(ctx, username)
	c.invalidateAll(func(p store.Password) bool { return p.Username == username })
	return n, err
}

// CreatePassword delegates to the next store.
func (c *Cache) CreatePassword(ctx context.Context, p store.Password) error {
	return c.next.CreatePassword(ctx, p)
}

// ListPasswords delegates to the next store; lists are not cached.
func (c *Cache) ListPasswords(ctx context.Context, username string) ([]store.Password, error) {
	return c.next.ListPasswords(ctx, username)
}

// GetUser returns the cached record for username, or asks the next store
// and caches a hit until min(TTL, its ExpiresAt). Misses are not cached.
// The returned record shares its slices with the cache: callers must not
// modify Groups or RefreshToken.
func (c *Cache) GetUser(ctx context.Context, username string) (store.User, error) {
	sh := c.shard(username)
	now := c.now()
	sh.mu.RLock()
	e, ok := sh.users[username]
	gen := sh.userGen
	sh.mu.RUnlock()
	if ok && now.Before(e.until) {
		return e.rec, nil
	}

	u, err := c.next.GetUser(ctx, username)
	if err != nil {
		return u, err
	}
	u.Groups = slices.Clip(u.Groups)
	u.RefreshToken = slices.Clip(u.RefreshToken)
	until := now.Add(c.ttl)
	if u.ExpiresAt.Before(until) {
		until = u.ExpiresAt
	}

	sh.mu.Lock()
	if sh.userGen == gen {
		if _, present := sh.users[username]; !present && len(sh.users) >= c.maxPerShard {
			evict(sh.users, now)
		}
		sh.users[username] = entry[store.User]{rec: u, until: until}
	}
	sh.mu.Unlock()
	return u, nil
}

// PutUser writes through the next store and drops the cached record at
// once, whatever the outcome.
func (c *Cache) PutUser(ctx context.Context, u store.User) error {
	err := c.next.PutUser(ctx, u)
	c.invalidateUser(u.Username)
	return err
}

// DeleteUser deletes through the next store and drops the cached record
// at once, whatever the outcome.
func (c *Cache) DeleteUser(ctx context.Context, username string) error {
	err := c.next.DeleteUser(ctx, username)
	c.invalidateUser(username)
	return err
}

// CreateSession delegates to the next store; sessions are not cached.
func (c *Cache) CreateSession(ctx context.Context, s store.Session) error {
	return c.next.CreateSession(ctx, s)
}

// GetSession delegates to the next store.
func (c *Cache) GetSession(ctx context.Context, id string) (store.Session, error) {
	return c.next.GetSession(ctx, id)
}

// TouchSession delegates to the next store.
func (c *Cache) TouchSession(ctx context.Context, id string, seen, expires time.Time) error {
	return c.next.TouchSession(ctx, id, seen, expires)
}

// DeleteSession delegates to the next store.
func (c *Cache) DeleteSession(ctx context.Context, id string) error {
	return c.next.DeleteSession(ctx, id)
}

// PutLoginState delegates to the next store.
func (c *Cache) PutLoginState(ctx context.Context, st store.LoginState) error {
	return c.next.PutLoginState(ctx, st)
}

// TakeLoginState delegates to the next store.
func (c *Cache) TakeLoginState(ctx context.Context, state string) (store.LoginState, error) {
	return c.next.TakeLoginState(ctx, state)
}

// TryLock delegates to the next store.
func (c *Cache) TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error) {
	return c.next.TryLock(ctx, name, ttl)
}

// Watch delegates to the next store.
func (c *Cache) Watch(ctx context.Context, fn func(store.Event)) error {
	return c.next.Watch(ctx, fn)
}

// Ping delegates to the next store.
func (c *Cache) Ping(ctx context.Context) error { return c.next.Ping(ctx) }

// Close stops the goroutines Start began, writes pending touches (for up
// to five seconds), and then closes the next store: the Cache owns it, so
// do not close that store yourself. It may be called more than once.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	flushing := c.flushing
	close(c.stop)
	c.mu.Unlock()
	if flushing {
		<-c.stopped
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	c.flush(ctx)
	return c.next.Close()
}

func (c *Cache) flushLoop(ctx context.Context) {
	defer close(c.stopped)
	tick := time.NewTicker(c.touchEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.flush(ctx)
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		}
	}
}

// flush writes every pending touch to the next store. Failures are logged:
// last-used times are informational.
func (c *Cache) flush(ctx context.Context) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		if len(sh.touches) == 0 {
			sh.mu.Unlock()
			continue
		}
		pending := sh.touches
		sh.touches = make(map[string]time.Time)
		sh.mu.Unlock()
		for id, t := range pending {
			if err := c.next.TouchPassword(ctx, id, t); err != nil {
				c.log.WarnContext(ctx, "cache: write last-used time", "password_id", id, "error", err)
			}
		}
	}
}

func (c *Cache) shard(id string) *shard {
	return &c.shards[maphash.String(c.seed, id)%numShards]
}

func (c *Cache) invalidate(id string) {
	sh := c.shard(id)
	sh.mu.Lock()
	delete(sh.entries, id)
	sh.gen++
	sh.mu.Unlock()
}

func (c *Cache) invalidateUser(username string) {
	sh := c.shard(username)
	sh.mu.Lock()
	delete(sh.users, username)
	sh.userGen++
	sh.mu.Unlock()
}

// invalidateUsers drops every cached user.
func (c *Cache) invalidateUsers() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.users)
		sh.userGen++
		sh.mu.Unlock()
	}
}

// invalidateAll drops every password entry for which match is true.
func (c *Cache) invalidateAll(match func(store.Password) bool) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for id, e := range sh.entries {
			if match(e.rec) {
				delete(sh.entries, id)
			}
		}
		sh.gen++
		sh.mu.Unlock()
	}
}
