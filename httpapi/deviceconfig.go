package httpapi

import (
	"errors"
	"fmt"
	"time"
)

// DeviceConfig is the config file's `device:` section: the terminal login
// (RFC 8628 device authorization; docs/device-login.md). It is on
// whenever the browser login is.
type DeviceConfig struct {
	// Disabled turns the terminal login off.
	Disabled bool `yaml:"disabled" json:"disabled"`
	// Lifetime is the default lifetime of a password a device login
	// mints; the terminal may ask for another, up to
	// passwords.max_lifetime. Default 12h.
	Lifetime time.Duration `yaml:"lifetime" json:"lifetime"`
	// CodeLifetime is how long a code can be approved and redeemed.
	// Default 10m.
	CodeLifetime time.Duration `yaml:"code_lifetime" json:"code_lifetime"`
	// Interval is the least time between two polls of the token
	// endpoint. Default 5s.
	Interval time.Duration `yaml:"interval" json:"interval"`
	// MaxPending caps the device logins in flight (created within the
	// last code_lifetime) in the whole store. Default 1000.
	MaxPending int `yaml:"max_pending" json:"max_pending"`
	// MaxPendingPerAddress caps them per client address. Default 10.
	MaxPendingPerAddress int `yaml:"max_pending_per_address" json:"max_pending_per_address"`
}

// SetDefaults fills unset fields with their defaults.
func (c *DeviceConfig) SetDefaults() {
	if c.Lifetime == 0 {
		c.Lifetime = 12 * time.Hour
	}
	if c.CodeLifetime == 0 {
		c.CodeLifetime = 10 * time.Minute
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.MaxPending == 0 {
		c.MaxPending = 1000
	}
	if c.MaxPendingPerAddress == 0 {
		c.MaxPendingPerAddress = 10
	}
}

// Validate reports every problem at once, with key paths under prefix
// (normally "device"). That lifetime is within passwords.max_lifetime is
// checked where both sections are known.
func (c *DeviceConfig) Validate(prefix string) error {
	var errs []error
	if c.Lifetime < time.Minute {
		errs = append(errs, fmt.Errorf("%s.lifetime: must be at least 1m, got %v", prefix, c.Lifetime))
	}
	if c.CodeLifetime < time.Minute || c.CodeLifetime > 30*time.Minute {
		errs = append(errs, fmt.Errorf("%s.code_lifetime: must be between 1m and 30m, got %v", prefix, c.CodeLifetime))
	}
	if c.Interval < time.Second || c.Interval > 30*time.Second {
		errs = append(errs, fmt.Errorf("%s.interval: must be between 1s and 30s, got %v", prefix, c.Interval))
	}
	if c.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("%s.max_pending: must be at least 1, got %d", prefix, c.MaxPending))
	}
	if c.MaxPendingPerAddress < 1 || c.MaxPendingPerAddress > c.MaxPending {
		errs = append(errs, fmt.Errorf("%s.max_pending_per_address: must be between 1 and max_pending (%d), got %d", prefix, c.MaxPending, c.MaxPendingPerAddress))
	}
	return errors.Join(errs...)
}

// Options returns the section as the server's DeviceOptions, nil when
// disabled.
func (c *DeviceConfig) Options(st DeviceStore) *DeviceOptions {
	if c.Disabled {
		return nil
	}
	return &DeviceOptions{Store: st, Lifetime: c.Lifetime, CodeLifetime: c.CodeLifetime, Interval: c.Interval,
		MaxPending: c.MaxPending, MaxPendingPerAddress: c.MaxPendingPerAddress}
}
