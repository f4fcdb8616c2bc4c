package memory

import (
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
