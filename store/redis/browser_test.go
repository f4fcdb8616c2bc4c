package redis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/store"
)

func TestBrowserKeyExpiry(t *testing.T) {
	addr := testenv.Redis(t)
	st := open(t, addr, "expiry:", time.Now)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)

	sess := store.Session{ID: "s1", Username: "alice", LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	user := store.User{Username: "alice", ExpiresAt: now.Add(24 * time.Hour)}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	touched := now.Add(3 * time.Hour)

	expireTime := func(key string) time.Time {
		t.Helper()
		ms, err := st.client.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return time.UnixMilli(ms.Milliseconds())
	}
	tests := []struct {
		name string
		key  string
		act  func() error
		want time.Time
	}{
		{"session", st.keys.session("s1"), nil, sess.ExpiresAt},
		{"user", st.keys.account("alice"), nil, user.ExpiresAt},
		{"touched session", st.keys.session("s1"), func() error {
			return st.TouchSession(ctx, "s1", now.Add(time.Minute), touched)
		}, touched},
		{"replaced user", st.keys.account("alice"), func() error {
			user.ExpiresAt = now.Add(time.Hour)
			return st.PutUser(ctx, user)
		}, now.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.act != nil {
				if err := tt.act(); err != nil {
					t.Fatal(err)
				}
			}
			if got := expireTime(tt.key); !got.Equal(tt.want) {
				t.Errorf("%s expires at %v, want %v", tt.key, got, tt.want)
			}
		})
	}

	t.Run("lock", func(t *testing.T) {
		const ttl = time.Minute
		unlock, ok, err := st.TryLock(ctx, "l", ttl)
		if err != nil || !ok {
			t.Fatalf("TryLock = %v, %v", ok, err)
		}
		pttl, err := st.client.PTTL(ctx, st.keys.lock("l")).Result()
		if err != nil || pttl <= 0 || pttl > ttl {
			t.Fatalf("lock PTTL = %v, %v; want within (0, %v]", pttl, err, ttl)
		}
		unlock()
		if n, _ := st.client.Exists(ctx, st.keys.lock("l")).Result(); n != 0 {
			t.Fatal("lock key survived unlock")
		}
	})
}

func TestCorruptBrowserRecords(t *testing.T) {
	addr := testenv.Redis(t)
	st := open(t, addr, "corrupt:", time.Now)
	ctx := t.Context()
	later := time.Now().Add(time.Hour).UnixMilli()

	tests := []struct {
		name  string
		plant func() error
		read  func() error
		op    string
	}{
		{"user", func() error {
			return st.client.Set(ctx, st.keys.account("alice"), "{not json", 0).Err()
		}, func() error {
			_, err := st.GetUser(ctx, "alice")
			return err
		}, "redis store: get user alice:"},
		{"session value", func() error {
			return st.client.HSet(ctx, st.keys.session("s"), sessionValue, "[", sessionSeen, "0", sessionExpires, later).Err()
		}, func() error {
			_, err := st.GetSession(ctx, "s")
			return err
		}, "redis store: get session:"},
		{"session times", func() error {
			return st.client.HSet(ctx, st.keys.session("s2"), sessionValue, "{}", sessionSeen, "soon", sessionExpires, later).Err()
		}, func() error {
			_, err := st.GetSession(ctx, "s2")
			return err
		}, "redis store: get session:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.plant(); err != nil {
				t.Fatal(err)
			}
			err := tt.read()
			if !errors.Is(err, errCorrupt) || errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), tt.op) {
				t.Fatalf("read = %v, want a wrapped corrupt-record error starting %q", err, tt.op)
			}
		})
	}
}
