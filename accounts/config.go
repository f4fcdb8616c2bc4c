package accounts

import (
	"errors"
	"fmt"
	"time"
)

// PasswordsConfig is the config file's `passwords:` section: the minting
// limits of every account.
type PasswordsConfig struct {
	// DefaultLifetime applies when a password is minted without one.
	// Default 720h (30 days).
	DefaultLifetime time.Duration `yaml:"default_lifetime" json:"default_lifetime"`
	// MaxLifetime caps every password's lifetime. Default 2160h (90 days).
	MaxLifetime time.Duration `yaml:"max_lifetime" json:"max_lifetime"`
	// MaxPerUser caps the live passwords of one owner, person or robot
	// (`bridge passwords create --ignore-limits` may pass it). Default
	// 50; -1 means no cap.
	MaxPerUser int `yaml:"max_per_user" json:"max_per_user"`
	// MintsPerHour limits how many passwords one person may mint per hour
	// on each replica, in bursts of up to 10. Default 30; -1 means no
	// limit.
	MintsPerHour int `yaml:"mints_per_hour" json:"mints_per_hour"`
}

// SetDefaults fills unset fields with their defaults.
func (c *PasswordsConfig) SetDefaults() {
	if c.DefaultLifetime == 0 {
		c.DefaultLifetime = 720 * time.Hour
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 2160 * time.Hour
	}
	if c.MaxPerUser == 0 {
		c.MaxPerUser = 50
	}
	if c.MintsPerHour == 0 {
		c.MintsPerHour = 30
	}
}

// Validate reports every problem at once, with key paths under prefix.
func (c *PasswordsConfig) Validate(prefix string) error {
	var errs []error
	if c.DefaultLifetime < time.Minute {
		errs = append(errs, fmt.Errorf("%s.default_lifetime: must be at least 1m, got %v", prefix, c.DefaultLifetime))
	}
	if c.MaxLifetime < time.Minute {
		errs = append(errs, fmt.Errorf("%s.max_lifetime: must be at least 1m, got %v", prefix, c.MaxLifetime))
	}
	if c.DefaultLifetime > c.MaxLifetime {
		errs = append(errs, fmt.Errorf("%s.default_lifetime: %v is longer than max_lifetime %v", prefix, c.DefaultLifetime, c.MaxLifetime))
	}
	if c.MaxPerUser < -1 {
		errs = append(errs, fmt.Errorf("%s.max_per_user: want a positive number, or -1 for no cap, got %d", prefix, c.MaxPerUser))
	}
	if c.MintsPerHour < -1 {
		errs = append(errs, fmt.Errorf("%s.mints_per_hour: want a positive number, or -1 for no limit, got %d", prefix, c.MintsPerHour))
	}
	return errors.Join(errs...)
}

// Limits returns the section as the limits Mint applies.
func (c *PasswordsConfig) Limits() Limits {
	return Limits{DefaultLifetime: c.DefaultLifetime, MaxLifetime: c.MaxLifetime,
		MaxLive: max(c.MaxPerUser, 0), MintsPerHour: max(c.MintsPerHour, 0)}
}

// RevalidationConfig is the config file's `revalidation:` section: how
// often a browser-minted password's owner is checked again at the identity
// provider, and how long the last known groups stand while it cannot be
// reached. (Before, these were passwords.revalidate_every and
// oidc.revalidate_grace.) It belongs with the code that revalidates; it
// lives here until that code has its package.
type RevalidationConfig struct {
	// Every is how often an owner's groups are re-read from the identity
	// provider. Default 15m.
	Every time.Duration `yaml:"every" json:"every"`
	// Grace is how long the last known groups stay valid while the
	// provider cannot be reached. Default 1h.
	Grace time.Duration `yaml:"grace" json:"grace"`
	// Wait bounds how long a token request waits for the identity
	// provider when its owner's groups were last confirmed longer than
	// every + grace ago (an idle person, or an outage). Requests within
	// every + grace never wait: their refresh runs in the background.
	// Default 2s; -1s never waits.
	Wait time.Duration `yaml:"wait" json:"wait"`
}

// SetDefaults fills unset fields with their defaults.
func (c *RevalidationConfig) SetDefaults() {
	if c.Every == 0 {
		c.Every = 15 * time.Minute
	}
	if c.Grace == 0 {
		c.Grace = time.Hour
	}
	if c.Wait == 0 {
		c.Wait = 2 * time.Second
	}
}

// Validate reports every problem at once, with key paths under prefix
// (normally "revalidation").
func (c *RevalidationConfig) Validate(prefix string) error {
	var errs []error
	if c.Every < time.Second {
		errs = append(errs, fmt.Errorf("%s.every: must be at least 1s, got %v", prefix, c.Every))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("%s.grace: must not be negative", prefix))
	}
	if c.Wait > 30*time.Second {
		errs = append(errs, fmt.Errorf("%s.wait: at most 30s (clients time out), got %v", prefix, c.Wait))
	}
	return errors.Join(errs...)
}

// Revalidation returns the section as the settings Accounts applies.
func (c *RevalidationConfig) Revalidation() Revalidation {
	return Revalidation{Every: c.Every, Grace: c.Grace, Wait: max(c.Wait, 0)}
}
