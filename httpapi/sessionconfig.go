package httpapi

import (
	"errors"
	"fmt"
	"time"
)

// SessionConfig is the config file's `sessions:` section: how long a
// browser session on the bridge's pages lasts. (Before it had a section of
// its own it was oidc.session_idle_timeout and oidc.session_max_age.)
type SessionConfig struct {
	// IdleTimeout ends a session not used for that long. Default 1h.
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxAge ends any session that long after the login. Default 12h.
	MaxAge time.Duration `yaml:"max_age" json:"max_age"`
}

// SetDefaults fills unset fields with their defaults.
func (c *SessionConfig) SetDefaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Hour
	}
	if c.MaxAge == 0 {
		c.MaxAge = 12 * time.Hour
	}
}

// Validate reports every problem at once, with key paths under prefix
// (normally "sessions").
func (c *SessionConfig) Validate(prefix string) error {
	var errs []error
	if c.IdleTimeout < time.Minute {
		errs = append(errs, fmt.Errorf("%s.idle_timeout: must be at least 1m, got %v", prefix, c.IdleTimeout))
	}
	if c.MaxAge < c.IdleTimeout {
		errs = append(errs, fmt.Errorf("%s.max_age: %v is shorter than idle_timeout %v", prefix, c.MaxAge, c.IdleTimeout))
	}
	return errors.Join(errs...)
}
