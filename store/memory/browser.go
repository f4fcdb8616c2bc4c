package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// lock is a held TryLock.
type lock struct {
	owner   uint64 // which TryLock call took it; unlock checks it
	expires time.Time
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(_ context.Context, sess store.Session) error {
	now := s.now()
	if err := sess.Validate(now); err != nil {
		return fmt.Errorf("memory store: create session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.sweepLocked(now)
	if old, ok := s.sessions[sess.ID]; ok && now.Before(old.ExpiresAt) {
		return fmt.Errorf("memory store: create session: %w", store.ErrAlreadyExists)
	}
	s.sessions[sess.ID] = cloneSession(sess)
	return nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(_ context.Context, id string) (store.Session, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Session{}, errClosed
	}
	sess, ok := s.sessions[id]
	if !ok || !now.Before(sess.ExpiresAt) {
		return store.Session{}, fmt.Errorf("memory store: get session: %w", store.ErrNotFound)
	}
	return cloneSession(sess), nil
}

// TouchSession implements store.Store.
func (s *Store) TouchSession(_ context.Context, id string, seen, expires time.Time) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	sess, ok := s.sessions[id]
	if !ok || !now.Before(sess.ExpiresAt) {
		return fmt.Errorf("memory store: touch session: %w", store.ErrNotFound)
	}
	if seen.Before(sess.LastSeenAt) {
		return nil
	}
	sess.LastSeenAt, sess.ExpiresAt = seen, expires
	s.sessions[id] = sess
	return nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	delete(s.sessions, id)
	return nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(_ context.Context, username string) (store.User, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.User{}, errClosed
	}
	u, ok := s.users[username]
	if !ok || !now.Before(u.ExpiresAt) {
		return store.User{}, fmt.Errorf("memory store: get user %s: %w", username, store.ErrNotFound)
	}
	return cloneUser(u), nil
}

// PutUser implements store.Store.
func (s *Store) PutUser(_ context.Context, u store.User) error {
	now := s.now()
	if err := u.Validate(now); err != nil {
		return fmt.Errorf("memory store: put user %s: %w", u.Username, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.sweepLocked(now)
	s.users[u.Username] = cloneUser(u)
	s.publishLocked(store.Event{Kind: store.UserChanged, ID: u.Username})
	return nil
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(_ context.Context, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	delete(s.users, username)
	s.publishLocked(store.Event{Kind: store.UserChanged, ID: username})
	return nil
}

// TryLock implements store.Store. The lock expires by the clock given to
// New.
func (s *Store) TryLock(_ context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error) {
	if ttl < time.Millisecond {
		return func() {}, false, fmt.Errorf("memory store: lock %s: ttl %v is under a millisecond", name, ttl)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}, false, errClosed
	}
	s.sweepLocked(now)
	if held, ok := s.locks[name]; ok && now.Before(held.expires) {
		return func() {}, false, nil
	}
	s.lockSeq++
	mine := lock{owner: s.lockSeq, expires: now.Add(ttl)}
	s.locks[name] = mine
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.locks[name].owner == mine.owner {
			delete(s.locks, name)
		}
	}), true, nil
}

// cloneSession copies sess, so that callers cannot change stored records
// (a Session holds no slices or maps).
func cloneSession(sess store.Session) store.Session { return sess }

// cloneUser copies u's slices, so that callers cannot change stored
// records.
func cloneUser(u store.User) store.User {
	u.Groups = slices.Clone(u.Groups)
	u.RefreshToken = slices.Clone(u.RefreshToken)
	return u
}
