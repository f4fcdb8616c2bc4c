package main

import (
	"errors"
	"fmt"
	"time"
)

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
}

// SetDefaults fills unset fields with their defaults.
func (c *RevalidationConfig) SetDefaults() {
	if c.Every == 0 {
		c.Every = 15 * time.Minute
	}
	if c.Grace == 0 {
		c.Grace = time.Hour
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
	return errors.Join(errs...)
}
