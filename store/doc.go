// Package store defines the records the bridge keeps — app passwords today,
// browser sessions and login state as the browser flow needs them — and the
// Store interface every backend implements.
//
// Two backends exist: store/redis (shared by any number of bridge replicas)
// and store/memory (one process; everything is lost on restart). Both pass
// the same conformance suite, store/storetest.
//
// The contract, which storetest enforces:
//
//   - Records expire at their ExpiresAt. An expired record is never returned:
//     Get answers ErrNotFound for it, List leaves it out, whether or not the
//     backend has physically removed it yet.
//   - CreatePassword fails with ErrAlreadyExists if the id is taken, and
//     changes nothing.
//   - DeletePassword and DeleteUserPasswords take effect at once for every
//     process sharing the backend, and publish an Event to every Watch so
//     that caches in other processes drop the record.
//   - TouchPassword only ever moves LastUsedAt forward.
//   - The per-user index makes ListPasswords(user) and
//     DeleteUserPasswords(user) cost one operation per password of that
//     user, not a scan of the store.
//
// Usage:
//
//	st := memory.New(time.Now)
//	err := st.CreatePassword(ctx, store.Password{ID: id, Username: "alice", ...})
//	p, err := st.GetPassword(ctx, id)
//	if errors.Is(err, store.ErrNotFound) { ... }
package store
