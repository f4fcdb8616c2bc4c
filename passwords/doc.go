// Package passwords implements the app-password format: generation from
// crypto/rand, parsing, the digest kept at rest, constant-time verification,
// and the refresh token derived from a password.
//
// An app password looks like
//
//	rbp_<id>_<secret>      e.g. rbp_3fkqav2c7mzaexyz_wk2…  (16 + 52 characters)
//
// The "rbp_" prefix lets secret scanners recognise a leaked password; the id
// names the store record; the secret is 256 bits from crypto/rand, of which
// only the SHA-256 digest is stored. A secret this strong needs no slow hash:
// nobody can guess a preimage, so a digest leak exposes nothing usable.
//
// The refresh token handed to `docker login` is
//
//	rbr_<id>_<HMAC-SHA256(key: secret, "registry-bridge refresh token v1")>
//
// so it names the same record, is only derivable by someone who holds the
// password, and dies with the password when it is revoked or expires.
//
// Usage:
//
//	m, err := passwords.Mint()          // show m.Password once; store m.Digest
//	c, err := passwords.Parse(input)    // from a Basic-auth password
//	rec, err := st.GetPassword(ctx, c.ID)
//	ok := c.Matches(rec.Digest, rec.RefreshDigest) // constant time
//
// Package passwords does no I/O.
package passwords
