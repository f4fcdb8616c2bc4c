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
}

// SetDefaults fills unset fields with their defaults.
func (c *Config) SetDefaults() {
	if c.DefaultLifetime == 0 {
		c.DefaultLifetime = 720 * time.Hour
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 2160 * time.Hour
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
	return errors.Join(errs...)
}

// ErrLifetime: a requested lifetime is out of range.
var ErrLifetime = errors.New("lifetime out of range")

// Lifetime returns the lifetime to mint with: requested, or the default
// when requested is 0. It rejects a negative or too long request.
func (c *Config) Lifetime(requested time.Duration) (time.Duration, error) {
	switch {
	case requested == 0:
		return c.DefaultLifetime, nil
	case requested < time.Minute:
		return 0, fmt.Errorf("%w: %v is shorter than 1m", ErrLifetime, requested)
	case requested > c.MaxLifetime:
		return 0, fmt.Errorf("%w: %v is longer than the maximum %v", ErrLifetime, requested, c.MaxLifetime)
	}
	return requested, nil
}
