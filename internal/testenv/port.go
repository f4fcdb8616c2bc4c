package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: the
// kernel picks it for a listener that is closed again at once. Another
// process may take it before the caller binds it; start-up failures of the
// process given the port are therefore reported with its logs (see Start).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("testenv: free port: close listener: %v", err)
	}
	return port
}

// FreeServicePort is FreePort outside the kernel's ephemeral port range,
// for a server that a client keeps redialling while it is down (Redis
// before StartRedisAtT): a dial to a loopback port in that range with
// nothing listening can connect the socket to itself and so take the port.
func FreeServicePort(t testing.TB) int {
	t.Helper()
	lo := 32768 // Linux's default ephemeral range starts here
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	for range 100 {
		port := 10000 + rand.N(max(lo-10000, 1))
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			t.Fatalf("testenv: free service port: close listener: %v", err)
		}
		return port
	}
	t.Fatalf("testenv: no free port between 10000 and %d", lo)
	return 0
}
