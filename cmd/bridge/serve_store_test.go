package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/passwords"
)

// TestServeStartsWithoutRedis: `serve` comes up with Redis down, says so
// on /readyz and once in the log with the key to check, answers 503 (not
// 401) to a password, still serves anonymous pulls; once Redis is up it
// becomes ready, new passwords work and revokes reach its cache. Redis
// going away and coming back later works the same.
func TestServeStartsWithoutRedis(t *testing.T) {
	testenv.Require(t, "redis-server", testenv.RedisInstallHint)
	dir := t.TempDir()
	writeKeys(t, dir)
	port := testenv.FreeServicePort(t)
	redisAddr := fmt.Sprintf("127.0.0.1:%d", port)
	path := writeConfig(t, dir, `listen: `+freeAddr(t)+`
public_url: http://localhost:5001
token:
  issuer: registry-bridge
  service: registry.test
  signing_key_file: `+dir+`/signing.key
access:
  - anonymous: true
    repositories: ["public/**"]
    actions: [pull]
  - groups: [team-a]
    repositories: ["team-a/**"]
    actions: [pull, push]
store:
  redis:
    url: redis://`+redisAddr+`/0
`)
	base, logs := startServe(t, path)

	status, body := get(t, base+"/readyz", "", "")
	var ready struct{ Status, Store string }
	_ = json.Unmarshal([]byte(body), &ready)
	if status != http.StatusServiceUnavailable || ready.Status != "unavailable" ||
		!strings.Contains(ready.Store, redisAddr+" unreachable") || !strings.Contains(ready.Store, "check store.redis.url") {
		t.Fatalf("/readyz with Redis down = %d %s, want 503 naming %s and store.redis.url", status, body, redisAddr)
	}
	m, err := passwords.Mint()
	if err != nil {
		t.Fatal(err)
	}
	if status, body := token(t, base, "ci-bot", m.Password); status != http.StatusServiceUnavailable {
		t.Fatalf("/token with a password and Redis down = %d %s, want 503", status, body)
	}
	if got := anonymousGrant(t, base, "public/x"); len(got) != 1 {
		t.Fatalf("anonymous pull with Redis down got %v", got)
	}
	if n := strings.Count(logs.String(), "store unreachable"); n != 1 || !strings.Contains(logs.String(), "check store.redis.url") {
		t.Fatalf("log says %d times that the store is unreachable, want once with the key to check:\n%s", n, logs)
	}

	srv := testenv.StartRedisAtT(t, port)
	waitReady(t, base)
	if !strings.Contains(logs.String(), "store reachable again") {
		t.Errorf("no \"store reachable again\" in the log:\n%s", logs)
	}
	passwordWorksAndRevokeReaches(t, base, path)

	// Redis goes away and comes back (empty) while serve runs.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "/readyz to notice Redis is gone", func() bool {
		status, _ := get(t, base+"/readyz", "", "")
		return status == http.StatusServiceUnavailable
	})
	resubscribed := strings.Count(logs.String(), "subscription re-established")
	testenv.StartRedisAtT(t, port)
	waitReady(t, base)
	waitFor(t, 20*time.Second, "the invalidation subscription to come back", func() bool {
		return strings.Count(logs.String(), "subscription re-established") > resubscribed
	})
	passwordWorksAndRevokeReaches(t, base, path)
}

// passwordWorksAndRevokeReaches mints a password with the CLI, uses it,
// revokes it with the CLI (another process's write, arriving as an event)
// and expects serve to refuse it within two seconds, far less than the
// cache's TTL.
func passwordWorksAndRevokeReaches(t *testing.T, base, path string) {
	t.Helper()
	out, stderr, err := runCLI(t, "passwords", "create", "--config", path, "--user", "ci-bot", "--groups", "team-a")
	if err != nil {
		t.Fatalf("passwords create: %v\n%s", err, stderr)
	}
	pw := strings.TrimSpace(out)
	if status, body := token(t, base, "ci-bot", pw); status != http.StatusOK || !strings.Contains(body, `"token"`) {
		t.Fatalf("/token with a new password = %d %s", status, body)
	}
	if _, stderr, err := runCLI(t, "passwords", "revoke", "--config", path, pw); err != nil {
		t.Fatalf("passwords revoke: %v\n%s", err, stderr)
	}
	waitFor(t, 2*time.Second, "the revoke to reach serve's cache", func() bool {
		status, _ := token(t, base, "ci-bot", pw)
		return status == http.StatusUnauthorized
	})
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz to answer 200 once Redis is up", func() bool {
		status, _ := get(t, base+"/readyz", "", "")
		return status == http.StatusOK
	})
}

func token(t *testing.T, base, user, password string) (int, string) {
	t.Helper()
	return get(t, base+"/token?service=registry.test&scope=repository:team-a/app:pull", user, password)
}

func get(t *testing.T, url, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
