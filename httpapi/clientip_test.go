package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	s, err := New(Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}})
	if err != nil {
		t.Fatal(err)
	}
	untrusting, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no header", "10.0.0.1:1", nil, "10.0.0.1"},
		{"through a trusted proxy", "10.0.0.1:1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"untrusted peer's header ignored", "192.0.2.1:1", []string{"198.51.100.7"}, "192.0.2.1"},
		{"spoofed hops left of the proxy's", "10.0.0.1:1", []string{"203.0.113.9, 198.51.100.7"}, "198.51.100.7"},
		{"spoofed trusted hop", "10.0.0.1:1", []string{"10.9.9.9, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.1:1", []string{"198.51.100.7, 10.0.0.2", "10.0.0.3"}, "198.51.100.7"},
		{"all hops trusted", "10.0.0.1:1", []string{"10.0.0.2"}, "10.0.0.2"},
		{"ipv6 client", "[2001:db8:ffff::1]:1", []string{"2001:db8:1:2::3"}, "2001:db8:1:2::3"},
		{"hop with port", "10.0.0.1:1", []string{"198.51.100.7:4711"}, "198.51.100.7"},
		{"bracketed ipv6 hop", "10.0.0.1:1", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"mapped peer", "[::ffff:10.0.0.1]:1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"malformed", "10.0.0.1:1", []string{"198.51.100.7, not-an-ip"}, "10.0.0.1"},
		{"empty hop", "10.0.0.1:1", []string{"198.51.100.7,"}, "10.0.0.1"},
		{"too long", "10.0.0.1:1", []string{strings.Repeat("198.51.100.7, ", 100) + "198.51.100.8"}, "10.0.0.1"},
		{"odd RemoteAddr", "pipe", []string{"198.51.100.7"}, "pipe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientIP(r); got != tt.want {
				t.Errorf("clientIP = %q, want %q", got, tt.want)
			}
			if peer, ok := remoteAddr(tt.remote); ok {
				if got := untrusting.clientIP(r); got != peer.String() {
					t.Errorf("without trusted proxies clientIP = %q, want the peer %q", got, peer)
				}
			}
		})
	}
}

func TestAddressGroup(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1": "192.0.2.1", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "2001:db8:1:2::1": "2001:db8:1:2::/64",
		"::ffff:192.0.2.1": "::ffff:192.0.2.1", "pipe": "pipe",
	} {
		if got := addressGroup(in); got != want {
			t.Errorf("addressGroup(%q) = %q, want %q", in, got, want)
		}
	}
}

// Behind a trusted proxy the device caps count the client's address,
// from X-Forwarded-For; the page shows it.
func TestDeviceCapsBehindProxy(t *testing.T) {
	s := newSite(t)
	s.srv.trustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	viaProxy := func(xff string) oauthAnswer {
		req := deviceRequest("/device/code", "10.1.2.3:4000", deviceForm("laptop"))
		req.Header.Set("X-Forwarded-For", xff)
		return s.serve(req)
	}
	// One client behind the proxy fills its own cap, spoofed prefixes
	// or not; the others behind the same proxy still get codes.
	for i := range testMaxPendingPerAddr {
		if a := viaProxy(fmt.Sprintf("203.0.113.%d, 198.51.100.7", i)); a.status != http.StatusOK {
			t.Fatalf("code %d: %d %s", i, a.status, a.raw)
		}
	}
	if a := viaProxy("203.0.113.99, 198.51.100.7"); a.status != http.StatusTooManyRequests {
		t.Fatalf("over the client's cap: %d %s", a.status, a.raw)
	}
	a := viaProxy("198.51.100.8")
	if a.status != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d %s", a.status, a.raw)
	}
	alice := s.browser()
	alice.login("alice", "alice-pw")
	alice.get(a.str("verification_uri_complete"))
	if !strings.Contains(alice.body, "198.51.100.8") || strings.Contains(alice.body, "10.1.2.3") {
		t.Fatalf("the page does not show the client's address:\n%s", alice.body)
	}
	// An untrusted peer's X-Forwarded-For counts for nothing.
	s.clock.Advance(testCodeLifetime) // the codes above expire
	for i := range testMaxPendingPerAddr {
		req := deviceRequest("/device/code", "192.0.2.50:1", deviceForm("x"))
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 20+i))
		if a := s.serve(req); a.status != http.StatusOK {
			t.Fatalf("untrusted %d: %d %s", i, a.status, a.raw)
		}
	}
	req := deviceRequest("/device/code", "192.0.2.50:1", deviceForm("x"))
	req.Header.Set("X-Forwarded-For", "198.51.100.40")
	if a := s.serve(req); a.status != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer escaped its cap with X-Forwarded-For: %d %s", a.status, a.raw)
	}
}

// An IPv6 client counts by its /64: new addresses in it do not help.
func TestDeviceCapsIPv6Prefix(t *testing.T) {
	s := newSite(t)
	for i := range testMaxPendingPerAddr {
		s.startDevice(fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1), deviceForm("a"))
	}
	if a := s.deviceCall("/device/code", "[2001:db8:1:2:ffff::1]:1", deviceForm("a")); a.status != http.StatusTooManyRequests {
		t.Fatalf("a new address in a full /64: %d %s", a.status, a.raw)
	}
	s.startDevice("[2001:db8:1:3::1]:1", deviceForm("a"))
}
