package workload

import (
	"sync"
	"time"
)

// entry is a verified token, kept until its exp.
type entry struct {
	id      Identity
	oneShot bool // used already: a second presentation is a replay

	key [32]byte // its key in the cache

	mu      sync.Mutex
	refresh string // the refresh token minted for this token, if any
	// release removes a one-shot token's used-marker (Verifier.Release).
	release func()
}

type cached struct {
	e       *entry
	expires time.Time
}

// cache holds verified tokens by the SHA-256 of their text, at most size
// of them: a hit costs one digest and a map read, what an app password
// costs. Only verified tokens enter, so an attacker fills it only with
// valid tokens of trusted issuers.
type cache struct {
	size int
	now  func() time.Time
	mu   sync.RWMutex
	m    map[[32]byte]cached
}

func newCache(size int, now func() time.Time) *cache {
	return &cache{size: size, now: now, m: make(map[[32]byte]cached)}
}

func (c *cache) get(key [32]byte, now time.Time) *entry {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(v.expires) {
		return nil
	}
	return v.e
}

func (c *cache) put(key [32]byte, e *entry, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		c.evict()
	}
	c.m[key] = cached{e: e, expires: expires}
}

// remove drops key if it still holds e.
func (c *cache) remove(key [32]byte, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok && v.e == e {
		delete(c.m, key)
	}
}

// evict drops expired entries, then, if that freed nothing, an arbitrary
// half: a dropped token is only verified again (one-shot tokens keep
// their marker in the store).
func (c *cache) evict() {
	now := c.now()
	for k, v := range c.m {
		if !now.Before(v.expires) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < c.size/2+1 {
			break
		}
		delete(c.m, k)
	}
}
