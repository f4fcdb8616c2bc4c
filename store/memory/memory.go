package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// sweepEvery is how often, by the store's clock, a write also removes
// expired records.
const sweepEvery = time.Minute

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	passwords map[string]store.Password
	byUser    map[string]map[string]struct{}
	sessions  map[string]store.Session
	users     map[string]store.User
	locks     map[string]lock
	lockSeq   uint64 // the last lock.owner handed out
	watchers  map[*watcher]struct{}
	lastSweep time.Time
	closed    bool

	device *devices // device authorizations (device.go)
}

// New returns an empty store that reads the time from now.
func New(now func() time.Time) *Store {
	return &Store{
		now:       now,
		passwords: make(map[string]store.Password),
		byUser:    make(map[string]map[string]struct{}),
		sessions:  make(map[string]store.Session),
		users:     make(map[string]store.User),
		locks:     make(map[string]lock),
		watchers:  make(map[*watcher]struct{}),
	}
}

// errClosed is returned by every method after Close.
var errClosed = errors.New("memory store: closed")

// CreatePassword implements store.Store.
func (s *Store) CreatePassword(_ context.Context, p store.Password) error {
	now := s.now()
	if err := p.Validate(now); err != nil {
		return fmt.Errorf("memory store: create password %s: %w", p.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.sweepLocked(now)
	if old, ok := s.passwords[p.ID]; ok {
		if old.Live(now) {
			return fmt.Errorf("memory store: create password %s: %w", p.ID, store.ErrAlreadyExists)
		}
		s.removeLocked(old)
	}
	s.passwords[p.ID] = clone(p)
	ids := s.byUser[p.Username]
	if ids == nil {
		ids = make(map[string]struct{})
		s.byUser[p.Username] = ids
	}
	ids[p.ID] = struct{}{}
	return nil
}

// GetPassword implements store.Store.
func (s *Store) GetPassword(_ context.Context, id string) (store.Password, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Password{}, errClosed
	}
	p, ok := s.passwords[id]
	if !ok || !p.Live(now) {
		return store.Password{}, fmt.Errorf("memory store: get password %s: %w", id, store.ErrNotFound)
	}
	return clone(p), nil
}

// ListPasswords implements store.Store.
func (s *Store) ListPasswords(_ context.Context, username string) ([]store.Password, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	var out []store.Password
	add := func(p store.Password) {
		if p.Live(now) {
			out = append(out, clone(p))
		}
	}
	if username == "" {
		for _, p := range s.passwords {
			add(p)
		}
	} else {
		for id := range s.byUser[username] {
			add(s.passwords[id])
		}
	}
	slices.SortFunc(out, store.ByAge)
	return out, nil
}

// TouchPassword implements store.Store.
func (s *Store) TouchPassword(_ context.Context, id string, t time.Time) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	p, ok := s.passwords[id]
	if !ok || !p.Live(now) || !t.After(p.LastUsedAt) {
		return nil
	}
	p.LastUsedAt = t
	s.passwords[id] = p
	return nil
}

// DeletePassword implements store.Store.
func (s *Store) DeletePassword(_ context.Context, id string) error {
	now := s.now()
	s.mu.Lock()
	p, ok := s.passwords[id]
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if ok {
		s.removeLocked(p)
		s.publishLocked(store.Event{Kind: store.PasswordChanged, ID: id})
	}
	s.mu.Unlock()
	if !ok || !p.Live(now) {
		return fmt.Errorf("memory store: delete password %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteUserPasswords implements store.Store. It counts only the passwords
// that had not expired.
func (s *Store) DeleteUserPasswords(_ context.Context, username string) (int, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	n := 0
	for id := range s.byUser[username] {
		p := s.passwords[id]
		if p.Live(now) {
			n++
		}
		s.removeLocked(p)
		s.publishLocked(store.Event{Kind: store.PasswordChanged, ID: id})
	}
	return n, nil
}

// Watch implements store.Store. Events come from the deletes and user
// writes made through this Store; fn is called from one goroutine, in
// order.
func (s *Store) Watch(ctx context.Context, fn func(store.Event)) error {
	w := &watcher{fn: fn, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()

	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.watchers, w)
			s.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				for _, e := range w.take() {
					fn(e)
				}
			}
		}
	}()
	return nil
}

// Ping implements store.Store; it fails only after Close.
func (s *Store) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return nil
}

// Close drops every record. Later calls fail; watchers stop when their
// context ends. Close may be called more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	clear(s.passwords)
	clear(s.byUser)
	clear(s.sessions)
	clear(s.users)
	clear(s.locks)
	s.device = nil
	return nil
}

// removeLocked deletes p and its index entry.
func (s *Store) removeLocked(p store.Password) {
	delete(s.passwords, p.ID)
	if ids := s.byUser[p.Username]; ids != nil {
		delete(ids, p.ID)
		if len(ids) == 0 {
			delete(s.byUser, p.Username)
		}
	}
}

// sweepLocked removes expired records, at most once per sweepEvery.
func (s *Store) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	for _, p := range s.passwords {
		if !p.Live(now) {
			s.removeLocked(p)
		}
	}
	maps.DeleteFunc(s.sessions, func(_ string, v store.Session) bool { return !now.Before(v.ExpiresAt) })
	maps.DeleteFunc(s.users, func(_ string, v store.User) bool { return !now.Before(v.ExpiresAt) })
	maps.DeleteFunc(s.locks, func(_ string, v lock) bool { return !now.Before(v.expires) })
}

// publishLocked queues e for every watcher.
func (s *Store) publishLocked(e store.Event) {
	for w := range s.watchers {
		w.push(e)
	}
}

// watcher is one Watch call's queue. It is unbounded so that deletes never
// wait for a slow fn.
type watcher struct {
	fn   func(store.Event)
	wake chan struct{}

	mu      sync.Mutex
	pending []store.Event
}

func (w *watcher) push(e store.Event) {
	w.mu.Lock()
	w.pending = append(w.pending, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []store.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	events := w.pending
	w.pending = nil
	return events
}

// clone copies p's slices, so that callers cannot change stored records.
func clone(p store.Password) store.Password {
	p.Groups = slices.Clone(p.Groups)
	p.Digest = slices.Clone(p.Digest)
	p.RefreshDigest = slices.Clone(p.RefreshDigest)
	return p
}
