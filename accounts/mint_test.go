package accounts

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/store"
)

var alice = PersonPrincipal("sub-alice", "alice")

func TestMintValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  MintRequest
		want error
	}{
		{"ok", MintRequest{Owner: alice, Name: " laptop ", Via: store.CreatedByBrowser}, nil},
		{"empty name", MintRequest{Owner: alice, Name: "  ", Via: store.CreatedByBrowser}, ErrInvalid},
		{"long name counted in characters", MintRequest{Owner: alice, Name: strings.Repeat("é", MaxNameLength+1), Via: store.CreatedByAPI}, ErrInvalid},
		{"name of 100 characters", MintRequest{Owner: alice, Name: strings.Repeat("é", MaxNameLength), Via: store.CreatedByAPI}, nil},
		{"control character", MintRequest{Owner: alice, Name: "a\x1b[31m", Via: store.CreatedByAPI}, ErrInvalid},
		{"invalid UTF-8", MintRequest{Owner: alice, Name: "a\xff", Via: store.CreatedByAPI}, ErrInvalid},
		{"too long", MintRequest{Owner: alice, Name: "x", Lifetime: 25 * time.Hour, Via: store.CreatedByAPI}, ErrInvalid},
		{"too short", MintRequest{Owner: alice, Name: "x", Lifetime: time.Second, Via: store.CreatedByAPI}, ErrInvalid},
		{"a person through the CLI", MintRequest{Owner: alice, Name: "x", Via: store.CreatedByCLI}, ErrInvalid},
		{"another person's username", MintRequest{Owner: PersonPrincipal("sub-mallory", "alice"), Name: "x", Via: store.CreatedByAPI}, ErrSuspended},
		{"robot over a person", MintRequest{Owner: RobotPrincipal("alice"), Name: "x", Via: store.CreatedByCLI}, ErrUsernameTaken},
		{"robot with a slash", MintRequest{Owner: RobotPrincipal("ci/bot"), Name: "x", Via: store.CreatedByCLI}, ErrBadUsername},
		{"robot with a forged subject", MintRequest{Owner: Principal{Kind: Robot, Subject: "sub-alice", Username: "bot"}, Name: "x", Via: store.CreatedByCLI}, ErrInvalid},
		{"robot", MintRequest{Owner: RobotPrincipal("bot"), Groups: []string{"ci"}, Name: "cli", Via: store.CreatedByCLI}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m, err := e.acc.Mint(t.Context(), tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil {
				if list, _ := e.st.ListPasswords(t.Context(), ""); len(list) != 0 {
					t.Fatalf("a refused mint stored %d passwords", len(list))
				}
				return
			}
			got, err := e.st.GetPassword(t.Context(), m.Record.ID)
			if err != nil || got.Name != strings.TrimSpace(tc.req.Name) || got.Subject != tc.req.Owner.Subject {
				t.Fatalf("stored %+v, %v", got, err)
			}
			if !got.ExpiresAt.Equal(got.CreatedAt.Add(time.Hour)) {
				t.Errorf("default lifetime not applied: %v → %v", got.CreatedAt, got.ExpiresAt)
			}
		})
	}
}

func TestMintLimits(t *testing.T) {
	t.Run("live cap", func(t *testing.T) {
		e := newEnv(t)
		e.acc.o.Limits.MaxLive = 3
		for i := range 3 {
			if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI}); err != nil {
				t.Fatalf("mint %d: %v", i, err)
			}
		}
		_, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI})
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "passwords.max_per_user") {
			t.Fatalf("fourth mint: %v, want ErrLimit naming the key", err)
		}
		// A robot counts too, and an operator may mint past the cap.
		for i := range 3 {
			_, _ = e.acc.Mint(t.Context(), MintRequest{Owner: RobotPrincipal("bot"), Name: "r", Via: store.CreatedByCLI, Lifetime: time.Duration(i+1) * time.Hour})
		}
		if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: RobotPrincipal("bot"), Name: "r", Via: store.CreatedByCLI}); !errors.Is(err, ErrLimit) {
			t.Fatalf("robot past the cap: %v", err)
		}
		if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: RobotPrincipal("bot"), Name: "r", Via: store.CreatedByCLI, IgnoreLimit: true}); err != nil {
			t.Fatalf("operator override: %v", err)
		}
		// Revoking makes room.
		list, _ := e.acc.Passwords(t.Context(), alice)
		if _, err := e.acc.Revoke(t.Context(), alice, list[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI}); err != nil {
			t.Fatalf("after a revoke: %v", err)
		}
	})
	t.Run("rate", func(t *testing.T) {
		e := newEnv(t)
		e.acc.mints = newMintLimiter(6, e.acc.o.Now) // burst 6, one every 10 minutes
		for i := range 6 {
			if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI}); err != nil {
				t.Fatalf("mint %d: %v", i, err)
			}
		}
		_, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI})
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > 10*time.Minute {
			t.Fatalf("seventh mint: %v, want a RateLimitError within 10m", err)
		}
		if list, _ := e.acc.Passwords(t.Context(), alice); len(list) != 6 {
			t.Fatalf("%d passwords after a refused mint, want 6", len(list))
		}
		// Another owner has a budget of their own.
		if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: RobotPrincipal("bot"), Name: "r", Via: store.CreatedByCLI}); err != nil {
			t.Fatalf("another owner: %v", err)
		}
		e.advance(rl.RetryAfter)
		if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI}); err != nil {
			t.Fatalf("after waiting: %v", err)
		}
	})
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newMintLimiter(10, func() time.Time { return now })
	for i := range maxBuckets + 10 {
		l.take(fmt.Sprint("sub-", i), true)
	}
	if len(l.buckets) > maxBuckets {
		t.Fatalf("%d buckets, want at most %d", len(l.buckets), maxBuckets)
	}
}

func TestUsernameHasOneOwner(t *testing.T) {
	e := newEnv(t)
	// A robot's name cannot be taken by a person's login, nor a person's
	// by a robot.
	if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: RobotPrincipal("ci"), Name: "x", Via: store.CreatedByCLI}); err != nil {
		t.Fatal(err)
	}
	_, err := e.acc.Login(t.Context(), oidc.Identity{Subject: "sub-ci", Username: "ci"}, oidc.Tokens{})
	if !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("login over a robot: %v", err)
	}
	if _, err := e.acc.Login(t.Context(), oidc.Identity{Subject: "sub-bob", Username: "alice"}, oidc.Tokens{}); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("login over another person: %v", err)
	}
	if _, err := e.acc.Login(t.Context(), oidc.Identity{Subject: "sub-eve", Username: "eve/../alice"}, oidc.Tokens{}); !errors.Is(err, ErrBadUsername) {
		t.Fatalf("login with a slash: %v", err)
	}
	if u, _ := e.st.GetUser(t.Context(), "alice"); u.Subject != "sub-alice" {
		t.Fatalf("alice's record changed: %+v", u)
	}
}

func TestLoginKeepsRefreshTokenWhenNoneIsGiven(t *testing.T) {
	e := newEnv(t)
	before, _ := e.st.GetUser(t.Context(), "alice")
	if _, err := e.acc.Login(t.Context(), oidc.Identity{Subject: "sub-alice", Username: "alice", Groups: []string{"x"}}, oidc.Tokens{}); err != nil {
		t.Fatal(err)
	}
	after, _ := e.st.GetUser(t.Context(), "alice")
	if string(after.RefreshToken) != string(before.RefreshToken) || len(after.RefreshToken) == 0 {
		t.Fatal("the refresh token of the earlier login was dropped")
	}
}

func TestRevokeOnlyOwn(t *testing.T) {
	e := newEnv(t)
	m, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "laptop", Via: store.CreatedByBrowser})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.acc.Revoke(t.Context(), RobotPrincipal("alice"), m.Record.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another owner's revoke: %v", err)
	}
	if _, err := e.st.GetPassword(t.Context(), m.Record.ID); err != nil {
		t.Fatalf("the password went: %v", err)
	}
	if _, err := e.acc.Revoke(t.Context(), alice, m.Record.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetPassword(t.Context(), m.Record.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("still there: %v", err)
	}
}
