// Package redis is the store.Store that bridge replicas share: it keeps app
// passwords, browser sessions, users and locks in Redis
// (a single server, Sentinel or Cluster, through one go-redis
// UniversalClient). It is the only package that imports go-redis.
//
// Usage:
//
//	cfg := redis.Config{URL: "redis://127.0.0.1:6379/0"} // the config file's store.redis section
//	if err := cfg.Validate("store.redis"); err != nil { ... } // every problem, with its key path
//	st, err := redis.New(cfg, time.Now, logger)
//	defer st.Close()
//	err = st.Ping(ctx)
//
// # Key schema
//
// Every key starts with Config.KeyPrefix (P, "rb:" by default):
//
//	P + "pw:" + id          string: the record in a compact binary encoding
//	                        (version byte, LastUsedAt at a fixed offset, then
//	                        varint-framed fields; see encode); the key
//	                        expires at the record's ExpiresAt (SET … PXAT … NX)
//	P + "user:" + username  sorted set: the user's password ids, scored by
//	                        their ExpiresAt in Unix ms; the key expires with
//	                        its latest member
//	P + "sess:" + id        hash: a browser session; field v is the session
//	                        as created (JSON), fields seen and exp its
//	                        LastSeenAt and ExpiresAt in Unix ms, which
//	                        override v's; the key expires at exp
//	P + "account:" + name   string: a user record (JSON); the key expires at
//	                        its ExpiresAt. ("user:" is the password index.)
//	P + "lock:" + name      string: a TryLock's random token; the key
//	                        expires after the lock's ttl (SET … NX PX)
//	P + "events"            pub/sub channel: a password id is PUBLISHed when
//	                        it is deleted
//	P + "events:user"       pub/sub channel: a username is PUBLISHed when
//	                        its user record is written or deleted
//	P + "{dev}:…"           device authorizations, their user codes and cap
//	                        sets (device.go); the one group of keys a script
//	                        spans, kept on one Cluster slot by the hash tag
//
// Sessions and users are JSON: they are read once per
// browser request or per cache miss, not per token, and are not under the
// password records' memory budget.
//
// Expiry is decided by the clock given to New: a record whose ExpiresAt has
// passed is treated as gone even before Redis's own TTL removes it. Locks
// are the exception: their ttl runs on the Redis server's clock. Listing
// a user removes expired ids (ZREMRANGEBYSCORE) and ids whose record is
// missing from the index. Listing everyone SCANs the "pw:" keys of every
// node; it is meant for administrators, not for request paths.
//
// # Atomicity
//
// No command spans two keys, so everything works on Cluster; pipelines
// batch round trips. Writes are ordered so that a failure halfway never
// leaves a usable password its owner cannot see or revoke:
//
//   - CreatePassword: SET NX the record, then add it to the index (a Lua
//     script on the index key); if that fails the record is deleted again,
//     and its secret was never shown to anyone.
//   - DeletePassword: GETDEL the record (the password stops working here),
//     PUBLISH its id (tried twice), then remove it from the index.
//   - DeleteUserPasswords: read the index, GETDEL each record, PUBLISH
//     every id read (tried twice, even when a GETDEL failed), then remove
//     exactly those ids from the index.
//   - TouchPassword: one Lua script on the record raises LastUsedAt in
//     place (SETRANGE), keeping the TTL; it never moves backwards and never
//     creates a key.
//   - CreateSession and TouchSession: one Lua script each on the session's
//     hash. Create refuses a live session (by the Store's clock); touch
//     writes seen and exp together and moves the key's expiry, unless the
//     new seen is earlier; it never creates a key.
//   - PutUser and DeleteUser: SET (or DEL), then PUBLISH once the write
//     is acknowledged, so that no cache re-reads the old record after the
//     event.
//   - TryLock: SET NX PX with a random token; unlock runs a Lua script that
//     deletes the key only if it still holds that token, so a holder whose
//     ttl ran out cannot release the next holder's lock.
//
// # Watch
//
// Watch SUBSCRIBEs to both event channels and returns once Redis confirms
// both, or fails after the dial plus read timeout. go-redis reconnects and
// re-subscribes on its own after a lost connection; because events
// published meanwhile are lost, every re-subscription is delivered as one
// store.Reset. A Watch that failed is not retried here: store/cache retries
// with back-off.
//
// Errors from Ping and Watch name the server and the config keys that
// point at it ("redis store: ping: 127.0.0.1:6379 unreachable: dial tcp
// …: connection refused; check store.redis.url"), never a password.
//
// # Memory
//
// A realistic password (20-character name and username, a 36-character
// subject, five groups) takes 328 bytes of MEMORY USAGE for its record
// (250 bytes of value) plus its share of the user index: 120 bytes when it
// is the user's only password, 39 when the user has ten. TestMemoryBudget
// holds this under 512 bytes per password.
//
// Redis 6.2 or later is required (GETDEL, SET PXAT).
package redis
