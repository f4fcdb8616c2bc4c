package accounts

import (
	"context"
	"fmt"
	"time"
)

// CanMint reports whether owner could mint one more password now: the
// checks Mint makes of the owner (a person's standing, the live-password
// cap, the mint rate), without minting or spending anything. A later
// Mint may still be refused: the checks are not a reservation. Errors as
// Mint's.
func (a *Accounts) CanMint(ctx context.Context, owner Principal) error {
	switch owner.Kind {
	case Person:
		if _, err := a.Standing(ctx, owner); err != nil {
			return err
		}
	case Robot:
		if err := ValidUsername(owner.Username); err != nil {
			return err
		}
	default:
		return invalid("unknown kind of account %q", owner.Kind)
	}
	if limit := a.o.Limits.MaxLive; limit > 0 {
		own, err := a.Passwords(ctx, owner)
		if err != nil {
			return err
		}
		if len(own) >= limit {
			return fmt.Errorf("%w: %s has %d live passwords, the most allowed (passwords.max_per_user); revoke one first", ErrLimit, owner.Username, len(own))
		}
	}
	if wait := a.mints.wait(owner.Subject); wait > 0 {
		return &RateLimitError{RetryAfter: wait}
	}
	return nil
}

// wait returns how long until subject may mint, 0 if now; it spends
// nothing.
func (l *mintLimiter) wait(subject string) time.Duration {
	if l.perHour <= 0 {
		return 0
	}
	rate := float64(l.perHour) / float64(time.Hour)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[subject]
	if !ok {
		return 0
	}
	tokens := min(l.burst(), b.tokens+float64(l.now().Sub(b.at))*rate)
	if tokens < 1 {
		return time.Duration((1 - tokens) / rate)
	}
	return 0
}
