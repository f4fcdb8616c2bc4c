package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// E2EEnv is the environment variable that turns a missing component from a
// skipped test into a failed one. `make test` and CI set it to "1".
const E2EEnv = "BRIDGE_E2E"

// RedisInstallHint tells how to get redis-server on Debian.
const RedisInstallHint = "apt-get install -y redis-server"

// redisStartTimeout bounds how long StartRedis waits for the first PONG.
const redisStartTimeout = 10 * time.Second

// Require returns the path of binary. When it is not in PATH, Require fails
// the test with installHint if BRIDGE_E2E=1, and skips it otherwise.
func Require(t testing.TB, binary, installHint string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found in PATH; install it with: %s", binary, installHint)
	if os.Getenv(E2EEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set " + E2EEnv + "=1 to make this a failure)")
	return ""
}

// Redis starts a private redis-server on a free loopback port, with no
// persistence and its working directory in t.TempDir(), and returns its
// address ("127.0.0.1:PORT"). The server is killed when the test ends.
//
// A missing redis-server binary skips the test, or fails it when
// BRIDGE_E2E=1 (see Require). Tests sharing one server must keep their keys
// apart, for example with a key prefix per test.
func Redis(t testing.TB) (addr string) {
	t.Helper()
	return StartRedisT(t).Addr
}

// StartRedisT is Redis returning the server itself, for a test that needs
// more than its address, such as its process id.
func StartRedisT(t testing.TB) *RedisServer {
	t.Helper()
	return startRedisT(t, 0)
}

// StartRedisAtT is StartRedisT on a port the caller chose, for a test
// that brings Redis up, or back, where a bridge already looks for it. The
// port must be free; the test fails if redis-server cannot bind it.
func StartRedisAtT(t testing.TB, port int) *RedisServer {
	t.Helper()
	return startRedisT(t, port)
}

// startRedisT starts redis-server on port, or on a free one when port is
// 0, and stops it when the test ends.
func startRedisT(t testing.TB, port int) *RedisServer {
	t.Helper()
	bin := Require(t, "redis-server", RedisInstallHint)
	var srv *RedisServer
	var err error
	if port == 0 {
		srv, err = startRedis(bin, t.TempDir())
	} else {
		srv, err = startRedisOn(bin, t.TempDir(), port)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return srv
}

// RedisServer is a redis-server process started by StartRedis or
// StartRedisT.
type RedisServer struct {
	// Addr is the server's "127.0.0.1:PORT".
	Addr string

	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
	once   sync.Once
}

// StartRedis is Redis for a TestMain: it starts a redis-server with its
// working directory in dir, which must exist, and returns it once it answers
// PING. The caller must call Stop. It returns an error wrapping
// exec.ErrNotFound when redis-server is not installed.
func StartRedis(dir string) (*RedisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("testenv: redis-server (install with %q): %w", RedisInstallHint, err)
	}
	return startRedis(bin, dir)
}

// PID returns the redis-server's process id, e.g. to read its CPU time
// from /proc.
func (s *RedisServer) PID() int { return s.cmd.Process.Pid }

// Stop kills the server and waits for it to exit. It may be called more
// than once.
func (s *RedisServer) Stop() error {
	var err error
	s.once.Do(func() {
		if kerr := s.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = fmt.Errorf("stop redis-server: %w", kerr)
		}
		<-s.exited
	})
	return err
}

// startRedis tries a few free ports: another process may take the port
// between our probe and redis-server's bind.
func startRedis(bin, dir string) (*RedisServer, error) {
	var lastErr error
	for attempt := range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		srv, err := startRedisOn(bin, filepath.Join(dir, "redis-"+strconv.Itoa(attempt)), port)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRedisOn(bin, dir string, port int) (*RedisServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	log := &lockedBuffer{}
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", dir,
	)
	cmd.Dir = dir
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	srv := &RedisServer{Addr: addr, cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		close(srv.exited)
	}()

	deadline := time.Now().Add(redisStartTimeout)
	for {
		select {
		case <-srv.exited:
			return nil, fmt.Errorf("redis-server on %s exited at start:\n%s", addr, log.tail())
		default:
		}
		if ping(addr) == nil {
			return srv, nil
		}
		if time.Now().After(deadline) {
			_ = srv.Stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within %v:\n%s",
				addr, redisStartTimeout, log.tail())
		}
		time.Sleep(10 * time.Millisecond) // polling a child process; nothing to wait on
	}
}

// ping sends PING over a raw TCP connection and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects a child's output; exec writes it from its own
// goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last 2 KiB of output, for error messages.
func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 2048 {
		s = "…" + s[len(s)-2048:]
	}
	return s
}
