package accounts

import (
	"errors"
	"testing"

	"github.com/registry-bridge/bridge/store"
)

func TestCanMint(t *testing.T) {
	e := newEnv(t)
	e.acc.o.Limits.MaxLive = 2
	e.acc.mints = newMintLimiter(3, e.acc.o.Now) // burst 3, one every 20 minutes
	mint := func() {
		t.Helper()
		if _, err := e.acc.Mint(t.Context(), MintRequest{Owner: alice, Name: "p", Via: store.CreatedByAPI}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // checking spends nothing
		if err := e.acc.CanMint(t.Context(), alice); err != nil {
			t.Fatalf("CanMint: %v", err)
		}
	}
	mint()
	mint()
	if err := e.acc.CanMint(t.Context(), alice); !errors.Is(err, ErrLimit) {
		t.Fatalf("at the live cap: %v, want ErrLimit", err)
	}
	list, _ := e.acc.Passwords(t.Context(), alice)
	if _, err := e.acc.Revoke(t.Context(), alice, list[0].ID); err != nil {
		t.Fatal(err)
	}
	mint() // the third of the burst
	if _, err := e.acc.Revoke(t.Context(), alice, list[1].ID); err != nil {
		t.Fatal(err)
	}
	var rl *RateLimitError
	if err := e.acc.CanMint(t.Context(), alice); !errors.As(err, &rl) {
		t.Fatalf("the mint rate spent: %v, want a RateLimitError", err)
	}
	e.advance(rl.RetryAfter)
	if err := e.acc.CanMint(t.Context(), alice); err != nil {
		t.Fatalf("after waiting: %v", err)
	}
	if err := e.acc.CanMint(t.Context(), PersonPrincipal("sub-mallory", "alice")); !errors.Is(err, ErrSuspended) {
		t.Fatalf("another person's username: %v, want ErrSuspended", err)
	}
}
