// Package store defines the records the bridge keeps — app passwords,
// browser sessions and the users behind browser-minted
// passwords — and the Store interface every backend implements.
//
// Two backends exist: store/redis (shared by any number of bridge replicas)
// and store/memory (one process; everything is lost on restart). Both pass
// the same conformance suite, store/storetest. store/cache sits in front of
// either on the token path.
//
// The contract, which storetest enforces:
//
//   - Records expire at their ExpiresAt. An expired record is never returned:
//     Get answers ErrNotFound for it, List leaves it out, whether or not the
//     backend has physically removed it yet.
//   - CreatePassword and CreateSession fail with
//     ErrAlreadyExists if the id is taken, and change nothing. PutUser
//     replaces.
//   - DeletePassword and DeleteUserPasswords take effect at once for every
//     process sharing the backend, and publish an Event to every Watch so
//     that caches in other processes drop the record. PutUser and
//     DeleteUser do the same for users (UserChanged).
//   - TouchPassword only ever moves LastUsedAt forward; TouchSession only
//     ever moves LastSeenAt forward, and sets ExpiresAt with it.
//   - TryLock is exclusive across every process sharing the backend, until
//     its ttl passes or its holder unlocks; a late unlock never releases
//     someone else's lock.
//   - The per-user index makes ListPasswords(user) and
//     DeleteUserPasswords(user) cost one operation per password of that
//     user, not a scan of the store.
//   - Device authorizations (device.go): CreateDeviceAuth enforces its caps
//     and the uniqueness of id and user code atomically and stores nothing
//     it refuses; DecideDeviceAuth succeeds once per authorization;
//     PollDeviceAuth redeems an approved one once; ReleaseDeviceAuth
//     puts it back when the redemption failed for a passing reason.
//
// Usage:
//
//	st := memory.New(time.Now)
//	err := st.CreatePassword(ctx, store.Password{ID: id, Username: "alice", ...})
//	p, err := st.GetPassword(ctx, id)
//	if errors.Is(err, store.ErrNotFound) { ... }
//
//	unlock, ok, err := st.TryLock(ctx, "revalidate:alice", 15*time.Second)
//	if err == nil && ok {
//		defer unlock()
//		...
//	}
package store
