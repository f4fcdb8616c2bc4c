package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `serve` in-process and waits until it answers.
func startServe(t *testing.T, path string) (base string, logs *syncBuffer) {
	t.Helper()
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, cfg, slog.New(slog.NewJSONHandler(logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	base = "http://" + cfg.Listen
	waitFor(t, 10*time.Second, "the server to answer /healthz", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base, logs
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// anonymousGrant returns the actions an anonymous request gets on repo.
func anonymousGrant(t *testing.T, base, repo string) []string {
	t.Helper()
	resp, err := http.Get(base + "/token?service=registry.test&scope=repository:" + repo + ":pull")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	claims := decodeClaims(t, body.Token)
	var access []struct{ Actions []string }
	_ = json.Unmarshal(claims["access"], &access)
	if len(access) == 0 {
		return nil
	}
	return access[0].Actions
}

func decodeClaims(t *testing.T, token string) map[string]json.RawMessage {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(mustB64(t, parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func configWithAnonymous(dir, listen string, repos ...string) string {
	var rules strings.Builder
	for _, r := range repos {
		fmt.Fprintf(&rules, "  - anonymous: true\n    repositories: [%q]\n    actions: [pull]\n", r)
	}
	return `listen: ` + listen + `
public_url: http://localhost:5001
token:
  issuer: registry-bridge
  service: registry.test
  signing_key_file: ` + dir + `/signing.key
access:
` + rules.String()
}

// TestServeReloadsAccessRules: a changed file takes effect without a
// restart; a broken one keeps the running rules; SIGHUP reloads too.
func TestServeReloadsAccessRules(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	listen := freeAddr(t)
	path := writeConfig(t, dir, configWithAnonymous(dir, listen, "public/**"))
	base, logs := startServe(t, path)

	if got := anonymousGrant(t, base, "open/x"); got != nil {
		t.Fatalf("open/x granted %v before the change", got)
	}
	writeConfig(t, dir, configWithAnonymous(dir, listen, "public/**", "open/**"))
	waitFor(t, 10*time.Second, "the new rule to apply", func() bool { return anonymousGrant(t, base, "open/x") != nil })

	// A broken file: logged, and the running rules stay.
	writeConfig(t, dir, configWithAnonymous(dir, listen, "open/***"))
	waitFor(t, 10*time.Second, "the failed reload to be logged", func() bool {
		return strings.Contains(logs.String(), "config reload failed")
	})
	if got := anonymousGrant(t, base, "open/x"); len(got) != 1 {
		t.Fatalf("after a bad reload open/x = %v, want the old rules", got)
	}

	// SIGHUP reloads the (fixed) file.
	if err := os.WriteFile(path, []byte(configWithAnonymous(dir, listen, "sig/**")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the SIGHUP reload", func() bool { return anonymousGrant(t, base, "sig/x") != nil })
	if got := anonymousGrant(t, base, "open/x"); got != nil {
		t.Fatalf("open/x still granted after reload: %v", got)
	}
}

// TestServeReloadsConfigMapSwap mimics how the kubelet updates a mounted
// ConfigMap: the file is a symlink through "..data", which is swapped to a
// new timestamped directory with one rename; the file itself never changes.
func TestServeReloadsConfigMapSwap(t *testing.T) {
	keys := t.TempDir()
	writeKeys(t, keys)
	mount := t.TempDir()
	listen := freeAddr(t)
	version := func(name string, repos ...string) {
		dir := filepath.Join(mount, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bridge.yaml"), []byte(configWithAnonymous(keys, listen, repos...)), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(mount, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_11_29_01", "public/**")
	path := filepath.Join(mount, "bridge.yaml")
	if err := os.Symlink(filepath.Join("..data", "bridge.yaml"), path); err != nil {
		t.Fatal(err)
	}
	base, _ := startServe(t, path)
	if got := anonymousGrant(t, base, "cm/x"); got != nil {
		t.Fatalf("cm/x granted %v before the swap", got)
	}
	version("..2026_11_29_02", "public/**", "cm/**")
	waitFor(t, 10*time.Second, "the swapped ConfigMap to apply", func() bool { return anonymousGrant(t, base, "cm/x") != nil })
}
