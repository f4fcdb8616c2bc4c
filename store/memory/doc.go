// Package memory is the embedded, single-process store.Store: maps behind a
// mutex. It is what the bridge uses when the configuration has no store
// section. Everything is lost when the process exits, and nothing is shared
// with other processes, so it must not back more than one bridge replica.
//
// Records and TryLock's locks expire by the clock given to New. Reads
// never return an expired record; writes sweep expired records (of every
// kind) out at most once a minute (by that clock), so memory does not grow
// with records nobody deletes.
//
// Watch delivers the events of this Store's password deletes and user
// writes, to each watcher in order from a goroutine of its own.
//
// Usage:
//
//	st := memory.New(time.Now)
//	defer st.Close()
//	err := st.CreatePassword(ctx, p)
package memory
