package memory

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// devices is the store's device authorizations, made on first use.
type devices struct {
	byID   map[string]store.DeviceAuth
	byCode map[string]string // user code digest → id
}

// devicesLocked returns the table, sweeping expired records; s.mu is held.
func (s *Store) devicesLocked(now time.Time) *devices {
	if s.device == nil {
		s.device = &devices{byID: map[string]store.DeviceAuth{}, byCode: map[string]string{}}
	}
	d := s.device
	maps.DeleteFunc(d.byID, func(_ string, v store.DeviceAuth) bool { return !now.Before(v.ExpiresAt) })
	maps.DeleteFunc(d.byCode, func(_ string, id string) bool { _, ok := d.byID[id]; return !ok })
	return d
}

// CreateDeviceAuth implements store.Store.
func (s *Store) CreateDeviceAuth(_ context.Context, a store.DeviceAuth, lim store.DeviceLimits) error {
	now := s.now()
	if err := a.Validate(now); err != nil {
		return fmt.Errorf("memory store: create device authorization: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	d := s.devicesLocked(now)
	if lim.MaxPending > 0 && len(d.byID) >= lim.MaxPending {
		return fmt.Errorf("memory store: create device authorization: %w", store.ErrTooManyPending)
	}
	if lim.MaxPerClient > 0 {
		n := 0
		for _, v := range d.byID {
			if v.CapKey() == a.CapKey() {
				n++
			}
		}
		if n >= lim.MaxPerClient {
			return fmt.Errorf("memory store: create device authorization: %w", store.ErrTooManyFromClient)
		}
	}
	if _, ok := d.byID[a.ID]; ok {
		return fmt.Errorf("memory store: create device authorization: %w", store.ErrAlreadyExists)
	}
	if _, ok := d.byCode[a.UserCode]; ok {
		return fmt.Errorf("memory store: create device authorization: user code: %w", store.ErrAlreadyExists)
	}
	d.byID[a.ID] = a
	d.byCode[a.UserCode] = a.ID
	return nil
}

// GetDeviceAuth implements store.Store.
func (s *Store) GetDeviceAuth(_ context.Context, id string) (store.DeviceAuth, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.DeviceAuth{}, errClosed
	}
	a, ok := s.devicesLocked(now).byID[id]
	if !ok {
		return store.DeviceAuth{}, fmt.Errorf("memory store: get device authorization: %w", store.ErrNotFound)
	}
	return a, nil
}

// GetDeviceAuthByUserCode implements store.Store.
func (s *Store) GetDeviceAuthByUserCode(_ context.Context, userCode string) (store.DeviceAuth, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.DeviceAuth{}, errClosed
	}
	d := s.devicesLocked(now)
	a, ok := d.byID[d.byCode[userCode]]
	if !ok {
		return store.DeviceAuth{}, fmt.Errorf("memory store: get device authorization by user code: %w", store.ErrNotFound)
	}
	return a, nil
}

// DecideDeviceAuth implements store.Store.
func (s *Store) DecideDeviceAuth(_ context.Context, id string, approve bool, subject, username string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	d := s.devicesLocked(now)
	a, ok := d.byID[id]
	switch {
	case !ok:
		return fmt.Errorf("memory store: decide device authorization: %w", store.ErrNotFound)
	case a.State != store.DevicePending:
		return fmt.Errorf("memory store: decide device authorization: %w", store.ErrNotPending)
	}
	a.State = store.DeviceDenied
	if approve {
		a.State = store.DeviceApproved
	}
	a.Subject, a.Username = subject, username
	d.byID[id] = a
	return nil
}

// PollDeviceAuth implements store.Store.
func (s *Store) PollDeviceAuth(_ context.Context, id string) (store.DeviceAuth, store.PollOutcome, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.DeviceAuth{}, 0, errClosed
	}
	d := s.devicesLocked(now)
	a, ok := d.byID[id]
	if !ok {
		return store.DeviceAuth{}, 0, fmt.Errorf("memory store: poll device authorization: %w", store.ErrNotFound)
	}
	last := a.LastPollAt
	a.LastPollAt = now
	outcome := store.PollRecorded
	switch {
	case !last.IsZero() && now.Sub(last) < a.Interval:
		a.Interval = min(a.Interval+store.DeviceSlowDownStep, store.DeviceMaxInterval)
		outcome = store.PollTooFast
	case a.State == store.DeviceApproved:
		a.State = store.DeviceConsumed
		outcome = store.PollRedeemed
	}
	d.byID[id] = a
	return a, outcome, nil
}

// ReleaseDeviceAuth implements store.Store.
func (s *Store) ReleaseDeviceAuth(_ context.Context, id string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	d := s.devicesLocked(now)
	a, ok := d.byID[id]
	switch {
	case !ok:
		return fmt.Errorf("memory store: release device authorization: %w", store.ErrNotFound)
	case a.State != store.DeviceConsumed:
		return fmt.Errorf("memory store: release device authorization: %w", store.ErrNotConsumed)
	}
	a.State = store.DeviceApproved
	d.byID[id] = a
	return nil
}
