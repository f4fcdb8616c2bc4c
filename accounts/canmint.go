package accounts

import "context"

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
	return a.checkLimits(ctx, owner, false)
}
