package accounts

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

func TestWorkloadNamespace(t *testing.T) {
	e := newEnv(t)
	e.acc.o.WorkloadPrefixes = map[string]string{"github": "gha-", "k8s": "k8s-"}
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		p    Principal
		want error
	}{
		{"in its namespace", WorkloadPrincipal("github", "gha-repo-42"), nil},
		{"outside its namespace", WorkloadPrincipal("github", "alice"), ErrBadUsername},
		{"another issuer's namespace", WorkloadPrincipal("github", "k8s-default.builder"), ErrBadUsername},
		{"a slash", WorkloadPrincipal("github", "gha-org/repo"), ErrBadUsername},
		{"not a workload", RobotPrincipal("gha-x"), ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.acc.AdmitWorkload(ctx, tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("AdmitWorkload(%+v) = %v, want %v", tc.p, err, tc.want)
			}
		})
	}
	// People and robots cannot enter a workload namespace.
	if _, err := e.acc.Mint(ctx, MintRequest{Owner: RobotPrincipal("gha-repo-42"), Name: "x", Via: store.CreatedByCLI}); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("robot in a workload namespace: %v", err)
	}
	if _, err := e.acc.Login(ctx, oidc.Identity{Subject: "sub-x", Username: "k8s-admin"}, oidc.Tokens{}); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("person in a workload namespace: %v", err)
	}
	// A person holding a name inside the namespace from before the
	// issuer was configured keeps it: the workload is refused.
	if err := e.st.PutUser(ctx, store.User{Username: "gha-old", Subject: "sub-old", ExpiresAt: e.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := e.acc.AdmitWorkload(ctx, WorkloadPrincipal("github", "gha-old")); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("workload over a person: %v", err)
	}
	if _, err := e.acc.Login(ctx, oidc.Identity{Subject: "sub-old", Username: "gha-old"}, oidc.Tokens{}); err != nil {
		t.Fatalf("the person who held the name before logs in again: %v", err)
	}
}

func TestWorkloadRefreshToken(t *testing.T) {
	e := newEnv(t)
	e.acc.o.WorkloadPrefixes = map[string]string{"github": "gha-"}
	ctx := t.Context()
	p := WorkloadPrincipal("github", "gha-repo-42")
	rt, err := e.acc.MintWorkloadRefresh(ctx, p, []string{"ci"}, 15*time.Minute, "workload github repo:o/r", 0)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := passwords.Parse(rt)
	if err != nil || cred.Kind != passwords.KindRefresh {
		t.Fatalf("refresh token %q: %v", passwords.Redact(rt), err)
	}
	rec, err := e.st.GetPassword(ctx, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cred.Matches(rec.Digest, rec.RefreshDigest) || rec.CreatedBy != store.CreatedByWorkload || !rec.ExpiresAt.Equal(rec.CreatedAt.Add(15*time.Minute)) {
		t.Fatalf("record %+v", rec)
	}
	// The app password the refresh token derives from is never shown and
	// could not be used: its digest is the dummy.
	if string(rec.Digest) != string(passwords.DummyDigest) {
		t.Fatal("a usable password digest was stored")
	}
	if OwnerOf(rec) != p {
		t.Fatalf("owner %+v, want %+v", OwnerOf(rec), p)
	}
	gs, err := e.acc.Groups(ctx, rec)
	if err != nil || len(gs) != 1 || gs[0] != "ci" {
		t.Fatalf("groups %v, %v", gs, err)
	}
	// The same username is now the workload's: no robot may take it even
	// without the namespace rule.
	e.acc.o.WorkloadPrefixes = nil
	if _, err := e.acc.Mint(ctx, MintRequest{Owner: RobotPrincipal("gha-repo-42"), Name: "x", Via: store.CreatedByCLI}); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("robot over a workload's refresh token: %v", err)
	}
}

// TestWorkloadRefreshCap: one workload has at most maxLive live refresh
// tokens, however many distinct tokens ask; an expired one frees a place.
func TestWorkloadRefreshCap(t *testing.T) {
	e := newEnv(t)
	e.acc.o.WorkloadPrefixes = map[string]string{"github": "gha-"}
	ctx := t.Context()
	p := WorkloadPrincipal("github", "gha-repo-42")
	const maxLive = 3
	for i := range maxLive + 1 {
		_, err := e.acc.MintWorkloadRefresh(ctx, p, []string{"ci"}, 15*time.Minute, "workload github", maxLive)
		switch {
		case i < maxLive && err != nil:
			t.Fatalf("mint %d: %v", i, err)
		case i == maxLive && (!errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "workloads.max_refresh_tokens_per_workload")):
			t.Fatalf("mint past the cap: %v, want ErrLimit naming the setting", err)
		}
	}
	if list, _ := e.st.ListPasswords(ctx, p.Username); len(list) != maxLive {
		t.Fatalf("%d live records, want %d", len(list), maxLive)
	}
	e.advance(16 * time.Minute)
	if _, err := e.acc.MintWorkloadRefresh(ctx, p, []string{"ci"}, 15*time.Minute, "workload github", maxLive); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
}

// listCounter counts ListPasswords calls.
type listCounter struct {
	Store
	lists atomic.Int32
}

func (c *listCounter) ListPasswords(ctx context.Context, username string) ([]store.Password, error) {
	c.lists.Add(1)
	return c.Store.ListPasswords(ctx, username)
}

// TestWorkloadAdmissionIsRemembered: only a workload's first token reads
// its username's records; a refused one is read again each time.
func TestWorkloadAdmissionIsRemembered(t *testing.T) {
	e := newEnv(t)
	st := &listCounter{Store: e.st}
	acc := New(Options{Store: st, Now: e.acc.o.Now, WorkloadPrefixes: map[string]string{"github": "gha-"}})
	t.Cleanup(acc.Close)
	ctx := t.Context()
	p := WorkloadPrincipal("github", "gha-repo-42")
	for range 5 {
		if err := acc.AdmitWorkload(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.lists.Load(); n != 1 {
		t.Fatalf("%d ListPasswords for 5 admissions, want 1", n)
	}
	if err := e.st.PutUser(ctx, store.User{Username: "gha-old", Subject: "sub-old", ExpiresAt: e.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := acc.AdmitWorkload(ctx, WorkloadPrincipal("github", "gha-old")); !errors.Is(err, ErrUsernameTaken) {
			t.Fatalf("workload over a person: %v", err)
		}
	}
}
