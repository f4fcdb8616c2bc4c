// Package cache is the token endpoint's in-process cache in front of a
// store.Store. Every `docker pull` asks for a token, and every token request
// looks up an app password; the cache answers repeated lookups from memory
// and turns a last-used write per request into at most one per password per
// TouchInterval.
//
// Cache is itself a store.Store:
//
//   - GetPassword hits are cached until min(TTL, the record's ExpiresAt).
//     Misses are not cached, so a password works as soon as it is created.
//   - GetUser hits (the groups of a browser-minted password's owner, read
//     on every token request for it) are cached the same way. PutUser and
//     DeleteUser go to the next store and drop the cached user at once;
//     other processes' writes arrive as UserChanged events.
//   - DeletePassword and DeleteUserPasswords go to the next store and drop
//     the cached records at once. Deletes made by other processes arrive as
//     Watch events (Start subscribes) and drop the record within the
//     event's delivery time; a Reset drops everything. TTL is the safety
//     net if an event is lost anyway.
//   - A lookup that races with an invalidation never caches its (possibly
//     stale) result.
//   - Nothing is cached until the cache follows the next store's events:
//     Start subscribes, and if the store is unreachable keeps retrying in
//     the background with capped exponential back-off and jitter, every
//     lookup going to the store meanwhile. Once subscribed it stays so:
//     the store re-subscribes by itself after a lost connection and sends
//     a Reset, which drops everything, so no cached entry outlives a
//     period without subscription.
//   - The store becoming unreachable and reachable again is logged once
//     each, not per retry; Ready (for /readyz) says whether the store
//     answers and the subscription is established.
//   - TouchPassword never blocks on I/O: it records the latest time per
//     password, and a background goroutine writes them every TouchInterval.
//     Close writes what is pending. The cache's own lookups show a touch
//     at once; other processes see it after the write (the store contract
//     allows this: see store.Store's TouchPassword).
//   - Everything else — sessions, locks, lists — is passed
//     through.
//   - Close closes the next store too: the Cache owns it.
//
// The map is split into 64 independently locked shards, so lookups on
// different passwords rarely contend.
//
// Usage:
//
//	c := cache.New(redisStore, cache.Options{Log: logger})
//	_ = c.Start(ctx) // subscribe (retried in the background if it failed) + flush touches
//	defer c.Close()  // flushes, then closes redisStore
//	ready := c.Ready // for /readyz
//	p, err := c.GetPassword(ctx, id)
//	_ = c.TouchPassword(ctx, id, time.Now())
package cache
