// Package storetest is the conformance suite every store.Store backend
// passes. It is imported by tests only.
//
// A backend's test hands RunTests a constructor. Called twice with the same
// *testing.T, the constructor must return two handles to the same, initially
// empty, backend — as two bridge processes sharing one Redis would hold — so
// that the suite can check that deletes made through one handle reach the
// other's Watch. Each new *testing.T gets a fresh backend (or a fresh key
// prefix). The constructor registers its own cleanup.
//
// Usage (store/memory's whole test):
//
//	func TestConformance(t *testing.T) {
//		var stores sync.Map // *testing.T → *memory.Store
//		storetest.RunTests(t, func(t *testing.T, now func() time.Time) store.Store {
//			st, _ := stores.LoadOrStore(t, memory.New(now))
//			return st.(store.Store)
//		})
//	}
//
// The suite decides expiry with the clock it passes to the constructor
// (a *Clock starting at the current second of real time), never by
// sleeping: a backend must treat a record as expired once now() ≥ ExpiresAt
// even if its own TTL has not fired yet. TryLock's ttl is the exception,
// since a shared backend keeps it on its server's clock: the suite
// advances its clock past a 200ms ttl and then polls, in real time, until
// the lock is free.
//
// A backend that takes a liberty the store contract allows declares it
// with RunTestsWith and Options; the suite then checks the weaker promise
// and nothing less. store/cache, which writes touches in the background,
// runs:
//
//	storetest.RunTestsWith(t, newCache, storetest.Options{TouchVisibleWithin: 5 * time.Second})
package storetest
