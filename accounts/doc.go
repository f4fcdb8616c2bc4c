// Package accounts is the one home of account rules: who a person or
// robot is, what they may mint, and whether they still count.
//
// A newcomer looking for a rule finds exactly one function:
//
//   - who owns a username: (*Accounts).claim, used by Login for people
//     and by Mint for robots — the user record's subject, else the
//     subject of the username's live passwords, else nobody;
//   - what a mint may ask for: (*Accounts).Mint, for the CLI, the page
//     and the JSON API alike (name, lifetime, read-only, the owner's
//     standing, the live-password cap and the mint rate). The cap is a
//     count, then a create, without a lock: concurrent mints of one
//     owner can pass Limits.MaxLive by as many as are in flight (at most
//     the rate limit's burst per replica); MintWorkloadRefresh's cap
//     likewise;
//   - which groups count right now: (*Accounts).Standing for a person
//     (sessions and the token path) and (*Accounts).Groups for a password.
//
// Principals are of a Kind. A Person logs in at the identity provider;
// Login stores their user record (groups, sealed refresh token) and their
// groups are re-read from the provider at most every revalidate_every:
//
//   - fresh record: its groups, no I/O beyond the (cached) store read;
//   - due: the last confirmed groups are served at once and a refresh is
//     started in the background (one per user per replica, a store lock
//     across replicas), so the identity provider is never on the token
//     path while the last confirmation is within revalidate_every +
//     revalidate_grace;
//   - older than that (the person was idle, or the provider is down): a
//     request waits for the refresh it started at most Revalidation.Wait,
//     then gets ErrUnavailable (fail closed);
//   - the provider refuses the refresh (user disabled or deleted, consent
//     revoked) or renamed the person: ErrSuspended, for every password
//     and session of theirs, until they log in again;
//   - no refresh token (the provider gave none): the login's groups.
//
// The trade-off: a person removed at the provider keeps their old groups
// until the refresh started by their first request after
// revalidate_every finishes (usually well under a second); while the
// provider cannot answer, for up to revalidate_grace more.
//
// A Robot is minted by an operator with `bridge passwords create`; its
// groups are fixed in its passwords. Its subject is "cli:" + username, so
// the ownership rule keeps robots and people apart.
//
// A Workload is a CI job or pod presenting its own OIDC token (package
// workload). Its subject is "workload:" + the issuer's name and its
// username starts with the issuer's prefix (Options.WorkloadPrefixes):
// AdmitWorkload applies the ownership rule to it, and people and robots
// cannot take usernames inside a workload namespace. Its only record is
// the short-lived refresh token of MintWorkloadRefresh.
//
// Usage:
//
//	a := accounts.New(accounts.Options{Store: st, Users: cached, Provider: prov, Sealer: sealer,
//		Limits: accounts.Limits{DefaultLifetime: 720 * time.Hour, MaxLifetime: 2160 * time.Hour, MaxLive: 50, MintsPerHour: 30},
//		Revalidation: accounts.Revalidation{Every: 15 * time.Minute, Grace: time.Hour, Wait: 2 * time.Second}})
//	defer a.Close()
//	person, err := a.Login(ctx, identity, idpTokens)
//	m, err := a.Mint(ctx, accounts.MintRequest{Owner: person, Name: "laptop", Via: store.CreatedByBrowser})
//	groups, err := a.Groups(ctx, passwordRecord) // on the token path
package accounts
