package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// Defaults for zero Options fields.
const (
	DefaultTTL           = 30 * time.Second
	DefaultMaxEntries    = 100_000
	DefaultTouchInterval = time.Minute
	DefaultRetryMin      = 250 * time.Millisecond
	DefaultRetryMax      = 15 * time.Second
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
	// RetryMin and RetryMax bound the pause between attempts to subscribe
	// to the next store's events while it is unreachable: the pause
	// doubles from RetryMin up to RetryMax, and each is drawn at random
	// between half and all of that. Defaults DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives flush errors, resets and the store's reachability
	// changes. Default: discard.
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
	retryMin    time.Duration
	retryMax    time.Duration
	now         func() time.Time
	log         *slog.Logger
	seed        maphash.Seed
	shards      [numShards]shard

	// subscribed is set once the cache follows the next store's events;
	// until then nothing is cached.
	subscribed atomic.Bool

	healthMu  sync.Mutex
	health    health
	downSince time.Time

	mu      sync.Mutex
	started bool               // Start has run
	cancel  context.CancelFunc // ends the goroutines Start began
	wg      sync.WaitGroup     // the goroutines Start began
	closed  bool
}

// health is what the cache last saw of the next store.
type health int

const (
	healthUnknown health = iota
	healthUp
	healthDown
)

// shard is one lock's worth of the cache.
type shard struct {
	mu    sync.RWMutex
	pw    table[store.Password] // by password id
	users table[store.User]     // by username
	// touches holds the latest pending TouchPassword time per id.
	touches map[string]time.Time
}

// table is one kind of cached record in a shard. Its methods must be
// called with the shard's lock held: get with at least the read lock, the
// others with the write lock.
type table[R any] struct {
	m map[string]entry[R]
	// gen counts invalidations (drop, dropIf, clear). A fetch that saw
	// another gen before it started must not fill the table, since its
	// result may predate the invalidation.
	gen uint64
}

// entry is a cached record.
type entry[R any] struct {
	rec   R
	until time.Time // min(fetch time + TTL, the record's ExpiresAt)
}

// get returns key's record if it is cached and now is before its until,
// and in any case the table's generation, to hand to put after a fetch.
func (t *table[R]) get(key string, now time.Time) (rec R, gen uint64, ok bool) {
	e, ok := t.m[key]
	if ok && now.Before(e.until) {
		return e.rec, t.gen, true
	}
	return rec, t.gen, false
}

// put caches rec under key until until, unless the table has been
// invalidated since get returned gen. A new key in a table of maxEntries
// first evicts another entry.
func (t *table[R]) put(key string, gen uint64, rec R, until, now time.Time, maxEntries int) {
	if t.gen != gen {
		return
	}
	if t.m == nil {
		t.m = make(map[string]entry[R])
	}
	if _, present := t.m[key]; !present && len(t.m) >= maxEntries {
		t.evict(now)
	}
	t.m[key] = entry[R]{rec: rec, until: until}
}

// update applies f to key's cached record, if there is one, keeping its
// until. It is not an invalidation.
func (t *table[R]) update(key string, f func(*R)) {
	if e, ok := t.m[key]; ok {
		f(&e.rec)
		t.m[key] = e
	}
}

// drop removes key's record and invalidates fetches in flight.
func (t *table[R]) drop(key string) {
	delete(t.m, key)
	t.gen++
}

// dropIf removes every record for which match is true and invalidates
// fetches in flight.
func (t *table[R]) dropIf(match func(R) bool) {
	for key, e := range t.m {
		if match(e.rec) {
			delete(t.m, key)
		}
	}
	t.gen++
}

// clear removes every record and invalidates fetches in flight.
func (t *table[R]) clear() {
	clear(t.m)
	t.gen++
}

// evict makes room for one entry: it drops an expired one among the first
// few it sees, or else the first it sees (Go's map order is randomised).
func (t *table[R]) evict(now time.Time) {
	var victim string
	seen := 0
	for key, e := range t.m {
		if !now.Before(e.until) {
			victim = key
			break
		}
		if seen == 0 {
			victim = key
		}
		if seen++; seen == evictProbe {
			break
		}
	}
	delete(t.m, victim)
}

// keepUntil is when a record fetched at now stops being served from the
// cache: min(now + ttl, expires).
func keepUntil(now time.Time, ttl time.Duration, expires time.Time) time.Time {
	until := now.Add(ttl)
	if expires.Before(until) {
		return expires
	}
	return until
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
		retryMin:   opts.RetryMin,
		retryMax:   opts.RetryMax,
		seed:       maphash.MakeSeed(),
	}
	if c.retryMin <= 0 {
		c.retryMin = DefaultRetryMin
	}
	if c.retryMax <= 0 {
		c.retryMax = DefaultRetryMax
	}
	c.retryMax = max(c.retryMax, c.retryMin)
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
		c.shards[i].touches = make(map[string]time.Time)
	}
	return c
}

// Start subscribes to the next store's events, dropping a record when it
// changes elsewhere and everything on a Reset, and starts flushing touches
// every TouchInterval. Both stop when ctx ends or at Close.
//
// Start returns once its first attempt to subscribe is over: nil when
// the cache follows the store's events, else that attempt's error. Then
// the cache keeps trying in the background, with capped exponential
// back-off, and logs the failure once and the recovery once. Until it is
// subscribed nothing is cached: every lookup goes to the next store, so no
// record is served that a missed event should have dropped. Start may be
// called once; later calls do nothing.
func (c *Cache) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("cache: start: closed")
	}
	if c.started {
		c.mu.Unlock()
		return nil
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go c.flushLoop(ctx)
	c.mu.Unlock()

	err := c.subscribe(ctx)
	if err == nil {
		return nil
	}
	c.mu.Lock()
	if !c.closed {
		c.wg.Add(1)
		go c.retrySubscribe(ctx)
	}
	c.mu.Unlock()
	return fmt.Errorf("cache: start: %w", err)
}

// subscribe makes one attempt to follow the next store's events.
func (c *Cache) subscribe(ctx context.Context) error {
	if err := c.next.Watch(ctx, c.handle); err != nil {
		c.observe(ctx, err)
		return err
	}
	// Nothing is cached while unsubscribed; drop anything anyway, so
	// that no entry can predate the subscription.
	c.reset()
	c.subscribed.Store(true)
	c.observe(ctx, nil)
	return nil
}

// retrySubscribe calls subscribe until it succeeds, ctx ends or the cache
// closes, pausing between attempts by capped exponential back-off with
// jitter.
func (c *Cache) retrySubscribe(ctx context.Context) {
	defer c.wg.Done()
	pause := c.retryMin
	for {
		timer := time.NewTimer(jitter(pause))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if c.subscribe(ctx) == nil {
			return // subscribe logged the recovery, once
		}
		pause = min(2*pause, c.retryMax)
	}
}

// jitter returns a random duration between d/2 and d, so that replicas
// that lost the store together do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// Ready reports whether the cache is fit to serve: the next store answers
// Ping and the cache follows its events. Its error says which is missing;
// the store's own errors name where it was looked for.
func (c *Cache) Ready(ctx context.Context) error {
	subscribed := c.subscribed.Load()
	err := c.next.Ping(ctx)
	if subscribed {
		// Until then the subscription attempts tell whether the store
		// is reachable; two sources could make the log flap.
		c.observe(ctx, err)
	}
	if err != nil {
		return err
	}
	if !subscribed {
		return errors.New("cache: the store answers, but the subscription to its invalidation events is not established yet")
	}
	return nil
}

// observe records the outcome of a call to the next store and logs when
// the store becomes unreachable or reachable again: one line per change,
// not one per attempt.
func (c *Cache) observe(ctx context.Context, err error) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	switch {
	case err != nil && c.health != healthDown:
		c.health, c.downSince = healthDown, c.now()
		c.log.ErrorContext(ctx, "store unreachable; token requests with a password answer 503 until it is back, and retries are not logged",
			"error", err)
	case err == nil && c.health == healthDown:
		c.health = healthUp
		c.log.InfoContext(ctx, "store reachable again", "down_for", c.now().Sub(c.downSince).Round(time.Millisecond).String())
	case err == nil:
		c.health = healthUp
	}
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
		c.reset()
		// A Reset follows a re-subscription: the store is back.
		c.observe(context.Background(), nil)
	}
}

// GetPassword returns the cached record for id, or asks the next store and
// caches a hit until min(TTL, its ExpiresAt). Misses are not cached. The
// returned record shares its slices with the cache: callers must not
// modify Groups, Digest or RefreshDigest.
func (c *Cache) GetPassword(ctx context.Context, id string) (store.Password, error) {
	sh := c.shard(id)
	now := c.now()
	subscribed := c.subscribed.Load()
	sh.mu.RLock()
	p, gen, ok := sh.pw.get(id, now)
	sh.mu.RUnlock()
	if ok {
		return p, nil
	}

	p, err := c.next.GetPassword(ctx, id)
	if err != nil {
		return p, err
	}
	p.Groups = slices.Clip(p.Groups)
	p.Digest = slices.Clip(p.Digest)
	p.RefreshDigest = slices.Clip(p.RefreshDigest)

	sh.mu.Lock()
	// A touch not yet flushed is newer than what the next store has.
	if t, ok := sh.touches[id]; ok && t.After(p.LastUsedAt) {
		p.LastUsedAt = t
	}
	if subscribed {
		sh.pw.put(id, gen, p, keepUntil(now, c.ttl, p.ExpiresAt), now, c.maxPerShard)
	}
	sh.mu.Unlock()
	return p, nil
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
	sh.pw.update(id, func(p *store.Password) {
		if t.After(p.LastUsedAt) {
			p.LastUsedAt = t
		}
	})
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
	subscribed := c.subscribed.Load()
	sh.mu.RLock()
	u, gen, ok := sh.users.get(username, now)
	sh.mu.RUnlock()
	if ok {
		return u, nil
	}

	u, err := c.next.GetUser(ctx, username)
	if err != nil {
		return u, err
	}
	u.Groups = slices.Clip(u.Groups)
	u.RefreshToken = slices.Clip(u.RefreshToken)

	if subscribed {
		sh.mu.Lock()
		sh.users.put(username, gen, u, keepUntil(now, c.ttl, u.ExpiresAt), now, c.maxPerShard)
		sh.mu.Unlock()
	}
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
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	c.flush(ctx)
	return c.next.Close()
}

func (c *Cache) flushLoop(ctx context.Context) {
	defer c.wg.Done()
	tick := time.NewTicker(c.touchEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.flush(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// flush writes every pending touch to the next store. Failures are logged,
// one line per flush, and the touches dropped: last-used times are
// informational.
func (c *Cache) flush(ctx context.Context) {
	failed, written := 0, 0
	var firstErr error
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
				if failed++; firstErr == nil {
					firstErr = err
				}
				continue
			}
			written++
		}
	}
	if failed > 0 {
		c.log.WarnContext(ctx, "cache: write last-used times", "failed", failed, "written", written, "error", firstErr)
	}
}

func (c *Cache) shard(id string) *shard {
	return &c.shards[maphash.String(c.seed, id)%numShards]
}

// invalidate drops the cached password id.
func (c *Cache) invalidate(id string) {
	sh := c.shard(id)
	sh.mu.Lock()
	sh.pw.drop(id)
	sh.mu.Unlock()
}

// invalidateUser drops the cached user username.
func (c *Cache) invalidateUser(username string) {
	sh := c.shard(username)
	sh.mu.Lock()
	sh.users.drop(username)
	sh.mu.Unlock()
}

// invalidateAll drops every cached password for which match is true.
func (c *Cache) invalidateAll(match func(store.Password) bool) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.pw.dropIf(match)
		sh.mu.Unlock()
	}
}

// reset drops every cached password and user. Pending touches stay: they
// are writes, not cached reads.
func (c *Cache) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.pw.clear()
		sh.users.clear()
		sh.mu.Unlock()
	}
}
