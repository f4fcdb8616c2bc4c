package cache

import (
	"context"

	"github.com/registry-bridge/bridge/store"
)

// Device authorizations are not cached: each is read a few times in its
// short life, and every change must be atomic in the next store.

// CreateDeviceAuth implements store.Store.
func (c *Cache) CreateDeviceAuth(ctx context.Context, d store.DeviceAuth, lim store.DeviceLimits) error {
	return c.next.CreateDeviceAuth(ctx, d, lim)
}

// GetDeviceAuth implements store.Store.
func (c *Cache) GetDeviceAuth(ctx context.Context, id string) (store.DeviceAuth, error) {
	return c.next.GetDeviceAuth(ctx, id)
}

// GetDeviceAuthByUserCode implements store.Store.
func (c *Cache) GetDeviceAuthByUserCode(ctx context.Context, userCode string) (store.DeviceAuth, error) {
	return c.next.GetDeviceAuthByUserCode(ctx, userCode)
}

// DecideDeviceAuth implements store.Store.
func (c *Cache) DecideDeviceAuth(ctx context.Context, id string, approve bool, subject, username string) error {
	return c.next.DecideDeviceAuth(ctx, id, approve, subject, username)
}

// PollDeviceAuth implements store.Store.
func (c *Cache) PollDeviceAuth(ctx context.Context, id string) (store.DeviceAuth, store.PollOutcome, error) {
	return c.next.PollDeviceAuth(ctx, id)
}

// ReleaseDeviceAuth implements store.Store.
func (c *Cache) ReleaseDeviceAuth(ctx context.Context, id string) error {
	return c.next.ReleaseDeviceAuth(ctx, id)
}
