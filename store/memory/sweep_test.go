package memory

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/storetest"
)

func TestWritesSweepExpiredRecords(t *testing.T) {
	clock := storetest.NewClock(time.Unix(1_700_000_000, 0))
	st := New(clock.Now)
	create := func(id, user string, ttl time.Duration) {
		t.Helper()
		err := st.CreatePassword(t.Context(), store.Password{ID: id, Username: user, ExpiresAt: clock.Now().Add(ttl)})
		if err != nil {
			t.Fatal(err)
		}
	}
	create("short1", "alice", time.Second)
	create("short2", "bob", time.Second)
	create("long", "alice", time.Hour)

	clock.Advance(sweepEvery)
	create("trigger", "carol", time.Hour)

	st.mu.Lock()
	defer st.mu.Unlock()
	for _, id := range []string{"short1", "short2"} {
		if _, ok := st.passwords[id]; ok {
			t.Errorf("expired %s still held after a write %v later", id, sweepEvery)
		}
	}
	if _, ok := st.byUser["bob"]; ok {
		t.Error("bob's empty index still held")
	}
	if len(st.passwords) != 2 || len(st.byUser["alice"]) != 1 {
		t.Errorf("live records lost: passwords=%v alice=%v", st.passwords, st.byUser["alice"])
	}
}

func TestWritesSweepEveryKind(t *testing.T) {
	clock := storetest.NewClock(time.Unix(1_700_000_000, 0))
	st := New(clock.Now)
	ctx := t.Context()
	soon, later := clock.Now().Add(time.Second), clock.Now().Add(time.Hour)
	for _, err := range []error{
		st.CreateSession(ctx, store.Session{ID: "short", ExpiresAt: soon}),
		st.CreateSession(ctx, store.Session{ID: "long", ExpiresAt: later}),
		st.PutUser(ctx, store.User{Username: "short", ExpiresAt: soon}),
		st.PutUser(ctx, store.User{Username: "long", ExpiresAt: later}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := st.TryLock(ctx, "short", time.Second); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if _, ok, err := st.TryLock(ctx, "long", time.Hour); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}

	clock.Advance(sweepEvery)
	if err := st.PutUser(ctx, store.User{Username: "trigger", ExpiresAt: later}); err != nil {
		t.Fatal(err)
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	tests := []struct {
		kind string
		keys []string
	}{
		{"sessions", slices.Sorted(maps.Keys(st.sessions))},
		{"users", slices.Sorted(maps.Keys(st.users))},
		{"locks", slices.Sorted(maps.Keys(st.locks))},
	}
	for _, tt := range tests {
		want := []string{"long"}
		if tt.kind == "users" {
			want = []string{"long", "trigger"}
		}
		if !slices.Equal(tt.keys, want) {
			t.Errorf("%s held after a sweep: %v, want %v", tt.kind, tt.keys, want)
		}
	}
}
