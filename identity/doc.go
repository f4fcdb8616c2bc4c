// Package identity answers, for an app password being used, "which groups
// does its owner have now?" — and keeps that answer fresh by re-reading
// the owner's groups from the identity provider at most every
// passwords.revalidate_every. This is how group changes, and removal of a
// person at the provider, reach passwords already handed out.
//
// Passwords minted with the CLI (robot accounts) act with the groups given
// at minting. Passwords minted in the browser act with their owner's user
// record, which login writes and revalidation refreshes:
//
//   - fresh record: its groups, no I/O beyond the (cached) store read;
//   - stale record: one refresh-token grant at the provider per user at a
//     time (singleflight in the process, a store lock across replicas);
//     every password of that user sees the new groups at once;
//   - the provider rejects the refresh (user disabled or deleted, consent
//     revoked): the user is suspended — ErrSuspended — until they log in
//     again;
//   - the provider cannot be reached: the last groups stay valid for the
//     grace period, then ErrUnavailable (fail closed);
//   - no refresh token (the provider gave none): the login-time groups,
//     until the password expires.
//
// Usage:
//
//	r := identity.NewRevalidator(identity.Options{Users: cached, Store: st, Provider: prov, Sealer: sealer,
//		Every: 15 * time.Minute, Grace: time.Hour})
//	groups, err := r.Groups(ctx, passwordRecord)
package identity
