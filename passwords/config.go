package passwords

import (
	"errors"
	"fmt"
	"time"
)

// Config is the config file's `passwords:` section.
type Config struct {
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
	// RevalidateEvery is how often a password owner's groups are re-read
	// from the identity provider. Default 15m.
	RevalidateEvery time.Duration `yaml:"revalidate_every" json:"revalidate_every"`
}

// SetDefaults fills unset fields with their defaults.
func (c *Config) SetDefaults() {
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
	if c.RevalidateEvery == 0 {
		c.RevalidateEvery = 15 * time.Minute
	}
}

// Validate reports every problem at once, with key paths under prefix.
func (c *Config) Validate(prefix string) error {
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
	if c.RevalidateEvery < time.Second {
		errs = append(errs, fmt.Errorf("%s.revalidate_every: must be at least 1s, got %v", prefix, c.RevalidateEvery))
	}
	return errors.Join(errs...)
}
