package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/storetest"
)

// maxBytesPerPassword is the Redis memory budget of one password: its
// record plus its share of the user index.
const maxBytesPerPassword = 512

func open(t *testing.T, addr, prefix string, now func() time.Time) *Store {
	t.Helper()
	st, err := New(Config{URL: "redis://" + addr, KeyPrefix: prefix}, now, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	addr := testenv.Redis(t)
	var (
		prefixes sync.Map // *testing.T → key prefix: both handles of a subtest share it
		n        atomic.Int64
	)
	storetest.RunTests(t, func(t *testing.T, now func() time.Time) store.Store {
		prefix, _ := prefixes.LoadOrStore(t, fmt.Sprintf("conformance%d:", n.Add(1)))
		return open(t, addr, prefix.(string), now)
	})
}

func TestMemoryBudget(t *testing.T) {
	addr := testenv.Redis(t)
	st := open(t, addr, DefaultKeyPrefix, time.Now)
	ctx := t.Context()

	realistic := func(user string) store.Password {
		m, err := passwords.Mint()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		return store.Password{
			ID:            m.ID,
			Subject:       "f47ac10b-58cc-4372-a567-0e02b2c3d479", // a UUID, as Keycloak issues
			Username:      user,
			Groups:        []string{"registry-admins", "team-platform-eu", "team-data-science", "ci-runners-prod", "org:engineering"},
			Name:          "github-actions-deploy", // 20 characters
			Digest:        m.Digest,
			RefreshDigest: m.RefreshDigest,
			CreatedAt:     now,
			ExpiresAt:     now.Add(2160 * time.Hour),
			LastUsedAt:    now,
			CreatedBy:     store.CreatedByBrowser,
		}
	}
	usage := func(key string) int64 {
		t.Helper()
		n, err := st.client.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", key, err)
		}
		return n
	}

	tests := []struct {
		name  string
		user  string
		count int // passwords the user holds; the index is shared among them
	}{
		{"user with one password", "alice.longname-2026x", 1},
		{"user with ten passwords", "bob.longname-2026xyz", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var record int64
			for range tt.count {
				p := realistic(tt.user)
				if err := st.CreatePassword(ctx, p); err != nil {
					t.Fatal(err)
				}
				record = max(record, usage(st.keys.password(p.ID)))
			}
			index := usage(st.keys.user(tt.user))
			perPassword := record + index/int64(tt.count)
			t.Logf("MEMORY USAGE: record %d B, index %d B for %d passwords → %d B per password (budget %d)",
				record, index, tt.count, perPassword, maxBytesPerPassword)
			if perPassword > maxBytesPerPassword {
				t.Errorf("%d bytes per password, budget %d", perPassword, maxBytesPerPassword)
			}
		})
	}
}

func TestKeyExpiry(t *testing.T) {
	addr := testenv.Redis(t)
	st := open(t, addr, "expiry:", time.Now)
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)

	short := store.Password{ID: "short", Username: "alice", ExpiresAt: now.Add(time.Hour)}
	long := store.Password{ID: "long", Username: "alice", ExpiresAt: now.Add(48 * time.Hour)}
	for _, p := range []store.Password{long, short} {
		if err := st.CreatePassword(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	expireTime := func(key string) time.Time {
		t.Helper()
		ms, err := st.client.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return time.UnixMilli(ms.Milliseconds())
	}
	tests := []struct {
		key  string
		want time.Time
	}{
		{st.keys.password("short"), short.ExpiresAt},
		{st.keys.password("long"), long.ExpiresAt},
		{st.keys.user("alice"), long.ExpiresAt}, // the latest member's
	}
	check := func(when string) {
		t.Helper()
		for _, tt := range tests {
			if got := expireTime(tt.key); !got.Equal(tt.want) {
				t.Errorf("%s: %s expires at %v, want %v", when, tt.key, got, tt.want)
			}
		}
	}
	check("after create")
	if err := st.TouchPassword(ctx, "short", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("after touch")
}

func TestCorruptRecord(t *testing.T) {
	addr := testenv.Redis(t)
	st := open(t, addr, "corrupt:", time.Now)
	ctx := t.Context()
	if err := st.client.Set(ctx, st.keys.password("bad"), `{"user":"alice"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.client.ZAdd(ctx, st.keys.user("alice"), redisZ(time.Now().Add(time.Hour), "bad")).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := st.GetPassword(ctx, "bad")
	if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "redis store: get password bad:") {
		t.Fatalf("GetPassword(corrupt) = %v, want a wrapped decode error", err)
	}
	for _, user := range []string{"alice", ""} {
		ps, err := st.ListPasswords(ctx, user)
		if err != nil || len(ps) != 0 {
			t.Fatalf("ListPasswords(%q) = %v, %v; want the corrupt record skipped", user, ps, err)
		}
	}
	if err := st.DeletePassword(ctx, "bad"); err != nil {
		t.Fatalf("DeletePassword(corrupt) = %v", err)
	}
	if n, _ := st.client.Exists(ctx, st.keys.password("bad")).Result(); n != 0 {
		t.Fatal("corrupt record survived DeletePassword")
	}
}

func TestWatchResetsAfterReconnect(t *testing.T) {
	addr := testenv.Redis(t)
	writer := open(t, addr, "reset:", time.Now)
	watcher := open(t, addr, "reset:", time.Now)
	ctx := t.Context()

	events := storetest.NewEventLog()
	if err := watcher.Watch(ctx, events.Add); err != nil {
		t.Fatal(err)
	}
	deleteOne := func(id string) {
		t.Helper()
		p := store.Password{ID: id, Username: "alice", ExpiresAt: time.Now().Add(time.Hour)}
		if err := writer.CreatePassword(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := writer.DeletePassword(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	deleteOne("before")
	events.WaitFor(t, "the event before the kill", storetest.Changed("before"))
	if storetest.HasReset(events.Events()) {
		t.Fatalf("Reset before any reconnection: %+v", events.Events())
	}

	killed, err := writer.client.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub = %d, %v; want 1 connection killed", killed, err)
	}
	events.WaitFor(t, "Reset after the subscription reconnected", storetest.HasReset)

	// The new subscription delivers events of both kinds again.
	deleteOne("after")
	events.WaitFor(t, "the event after the reconnection", storetest.Changed("after"))
	if err := writer.PutUser(ctx, store.User{Username: "alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	events.WaitFor(t, "the user event after the reconnection", storetest.UsersChanged("alice"))
	// Both channels were confirmed again before these events; one Reset
	// covers them.
	resets := 0
	for _, e := range events.Events() {
		if e.Kind == store.Reset {
			resets++
		}
	}
	if resets != 1 {
		t.Fatalf("%d Resets for one reconnection, want 1: %+v", resets, events.Events())
	}
}

func TestUnreachable(t *testing.T) {
	// A port nothing listens on: reserve one from the OS and close it.
	addr := closedPort(t)
	st, err := New(Config{URL: "redis://" + addr, DialTimeout: time.Second}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded with no server")
	}
	if err := st.Watch(t.Context(), func(store.Event) {}); err == nil || !strings.HasPrefix(err.Error(), "redis store: watch:") {
		t.Errorf("Watch = %v, want a wrapped error", err)
	}
	if _, err := st.GetPassword(t.Context(), "x"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetPassword = %v, want a connection error, not ErrNotFound", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{URL: "http://h"}, time.Now, nil)
	if err == nil || !strings.Contains(err.Error(), "store.redis.url") {
		t.Fatalf("New = %v, want the validation error", err)
	}
}

func TestGlobEscape(t *testing.T) {
	if got, want := globEscape(`a*b?c[d]e\f`), `a\*b\?c\[d\]e\\f`; got != want {
		t.Fatalf("globEscape = %q, want %q", got, want)
	}
}

// TestUnreachableNamesServerAndKey: when Redis is not there, Ping and
// Watch say where they looked and which config keys to check, and never
// repeat the password.
func TestUnreachableNamesServerAndKey(t *testing.T) {
	a, b := closedPort(t), closedPort(t)
	tests := []struct {
		name      string
		cfg       Config
		wantWhere string
		wantCheck string
	}{
		{"one server", Config{URL: "redis://:hunter2@" + a + "/0"}, a + " unreachable", "check store.redis.url"},
		{"cluster", Config{URL: "redis://:hunter2@" + a, Addrs: []string{b}}, "cluster " + a + ", " + b + " unreachable",
			"check store.redis.url, store.redis.addrs"},
		{"sentinel", Config{Addrs: []string{a, b}, MasterName: "mymaster", Password: "hunter2"},
			`sentinel ` + a + `, ` + b + ` (master "mymaster") unreachable`, "check store.redis.addrs, store.redis.master_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DialTimeout, tt.cfg.ReadTimeout = 100*time.Millisecond, 100*time.Millisecond
			st, err := New(tt.cfg, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			for op, err := range map[string]error{
				"Ping":  st.Ping(t.Context()),
				"Watch": st.Watch(t.Context(), func(store.Event) {}),
			} {
				if err == nil {
					t.Fatalf("%s succeeded with nothing listening", op)
				}
				for _, want := range []string{tt.wantWhere, tt.wantCheck} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s = %q, want it to contain %q", op, err, want)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("%s error shows the password: %q", op, err)
				}
			}
		})
	}
}
