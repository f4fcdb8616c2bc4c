package cache

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/redis"
)

// lockedLines is a log sink safe for the cache's goroutines.
type lockedLines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// countingLog returns a logger and a function that counts the lines
// containing s so far.
func countingLog(t *testing.T) (*slog.Logger, func(s string) int) {
	t.Helper()
	w := &lockedLines{}
	return slog.New(slog.NewTextHandler(w, nil)), w.count
}

// TestNothingCachedUntilSubscribed: while the subscription fails the
// cache passes every lookup through, retries in the background, logs the
// failure and the recovery once each, and caches once subscribed.
func TestNothingCachedUntilSubscribed(t *testing.T) {
	log, count := countingLog(t)
	f := newUnstarted(t, Options{RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond, Log: log})
	f.spy.watchFails = 5
	f.spy.muted = true
	f.create(t, "a", "alice", time.Hour)
	if err := f.cache.PutUser(t.Context(), store.User{Username: "alice", ExpiresAt: f.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.cache.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded though Watch failed")
	}
	if err := f.cache.Ready(t.Context()); err == nil {
		t.Fatal("Ready before the subscription")
	}
	for range 3 {
		if _, err := f.get(t, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cache.GetUser(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
	}
	// Every lookup went through (the retries may have succeeded by the
	// last one, so at least two of three).
	if n := f.spy.getCount("a"); n < 2 {
		t.Fatalf("next store asked %d times for 3 lookups while unsubscribed", n)
	}

	deadline := time.Now().Add(10 * time.Second)
	for f.cache.Ready(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not subscribed after 10s and %d attempts", f.spy.watches)
		}
		time.Sleep(time.Millisecond) // polling the background retries
	}
	before, beforeUser := f.spy.getCount("a"), f.spy.userGetCount("alice")
	for range 3 {
		if _, err := f.get(t, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cache.GetUser(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.spy.getCount("a") - before; n != 1 {
		t.Errorf("subscribed: next store asked %d times for 3 lookups, want 1", n)
	}
	if n := f.spy.userGetCount("alice") - beforeUser; n != 1 {
		t.Errorf("subscribed: next store asked %d times for 3 user lookups, want 1", n)
	}
	if n := count("store unreachable"); n != 1 {
		t.Errorf("%d lines say the store is unreachable after %d failed attempts, want 1", n, 5)
	}
	if n := count("store reachable again"); n != 1 {
		t.Errorf("%d lines say the store is reachable again, want 1", n)
	}
}

// TestStartWithoutRedis: a cache over a Redis that is not there yet says
// where it looked and which key to check, serves nothing from memory,
// subscribes once Redis comes up, and keeps following events when Redis
// goes away and comes back empty.
func TestStartWithoutRedis(t *testing.T) {
	testenv.Require(t, "redis-server", testenv.RedisInstallHint)
	port := testenv.FreeServicePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	log, count := countingLog(t)
	open := func() *redis.Store {
		st, err := redis.New(redis.Config{URL: "redis://" + addr, KeyPrefix: "outage:"}, time.Now, log)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	c := New(open(), Options{TTL: time.Hour, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond, Log: log})
	t.Cleanup(func() { c.Close() })
	other := New(open(), Options{TTL: time.Hour}) // another replica, started once Redis is up
	t.Cleanup(func() { other.Close() })

	err := c.Start(t.Context())
	for _, want := range []string{addr + " unreachable", "check store.redis.url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Start = %v, want an error containing %q", err, want)
		}
	}
	if err := c.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "check store.redis.url") {
		t.Fatalf("Ready = %v, want the address and the key to check", err)
	}
	if _, err := c.GetPassword(t.Context(), "any"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPassword with Redis down = %v, want an outage error", err)
	}

	srv := testenv.StartRedisAtT(t, port)
	waitReady(t, c, 20*time.Second)
	if err := other.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	revokeReaches(t, other, c, "first")

	// Redis goes away and comes back empty: what c cached before must
	// not survive (the TTL is an hour, so only the re-subscription's
	// Reset can drop it), and events flow again.
	cached := createAndCache(t, other, c, "before-restart")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.StartRedisAtT(t, port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.GetPassword(t.Context(), cached)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still served (%v) 20s after Redis came back empty", cached, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the re-subscription
	}
	revokeReaches(t, other, c, "second")
	if n := count("store unreachable"); n != 1 {
		t.Errorf("%d lines say the store is unreachable, want 1", n)
	}
	if n := count("store reachable again"); n < 1 {
		t.Errorf("no line says the store is reachable again")
	}
}

// createAndCache creates a password through writer and caches it in c.
func createAndCache(t *testing.T, writer, c *Cache, id string) string {
	t.Helper()
	p := store.Password{ID: id, Username: "carol", Digest: []byte{1}, ExpiresAt: time.Now().Add(time.Hour)}
	if err := writer.CreatePassword(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPassword(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	return id
}

// revokeReaches checks that a password cached in c and revoked through
// writer is gone from c within a second: c's subscription is live.
func revokeReaches(t *testing.T, writer, c *Cache, id string) {
	t.Helper()
	createAndCache(t, writer, c, id)
	if err := writer.DeletePassword(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitNotFound(t, c, id, time.Second)
}

func waitReady(t *testing.T, c *Cache, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := c.Ready(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready %v after Redis came up: %v", within, err)
		}
		time.Sleep(10 * time.Millisecond) // polling the background retries
	}
}
