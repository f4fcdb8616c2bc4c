package store

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// The checks below are the contract's rules for writes; every backend
// applies them, so a record is refused the same way by all of them.

// Validate reports why p cannot be stored at now: an empty ID or
// Username, or an ExpiresAt that is not after now.
func (p Password) Validate(now time.Time) error {
	return errors.Join(required("id", p.ID), required("username", p.Username), checkExpiry(p.ExpiresAt, now))
}

// Validate reports why s cannot be stored at now.
func (s Session) Validate(now time.Time) error {
	return errors.Join(required("id", s.ID), checkExpiry(s.ExpiresAt, now))
}

// Validate reports why u cannot be stored at now.
func (u User) Validate(now time.Time) error {
	return errors.Join(required("username", u.Username), checkExpiry(u.ExpiresAt, now))
}

// Live reports whether p has not expired at now.
func (p Password) Live(now time.Time) bool { return now.Before(p.ExpiresAt) }

// ByAge orders passwords as ListPasswords returns them: oldest first, then
// by ID.
func ByAge(a, b Password) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

func required(field, value string) error {
	if value == "" {
		return fmt.Errorf("empty %s", field)
	}
	return nil
}

func checkExpiry(expires, now time.Time) error {
	if expires.After(now) {
		return nil
	}
	return fmt.Errorf("expiry %s is not after now (%s)", expires.Format(time.RFC3339), now.Format(time.RFC3339))
}
