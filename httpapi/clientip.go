package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedFor bounds the X-Forwarded-For header the bridge reads:
// longer than that it is ignored and the peer's address counts.
const maxForwardedFor = 1024

// clientIP is the address a request came from: the peer (RemoteAddr),
// or, when the peer is one of the trusted proxies, the rightmost
// X-Forwarded-For hop that is not a trusted proxy. Hops left of it are
// whatever the client wrote and never count. A missing, oversized or
// malformed header counts as none. docs/operations.md ("In front of the
// bridge") describes server.trusted_proxies.
func (s *Server) clientIP(r *http.Request) string {
	if len(s.trustedProxies) == 0 {
		// No proxy to trust: the peer, as it is, with no parsing (the
		// token path logs it on every request).
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && !strings.Contains(host, ":") {
			return host // IPv4; IPv6 is parsed below, to unmap ::ffff:a.b.c.d
		}
	}
	peer, ok := remoteAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if len(s.trustedProxies) == 0 || !s.trustedProxy(peer) {
		return peer.String()
	}
	vals := r.Header.Values("X-Forwarded-For")
	n := 0
	for _, v := range vals {
		n += len(v) + 1
	}
	if len(vals) == 0 || n > maxForwardedFor {
		return peer.String()
	}
	hops := strings.Split(strings.Join(vals, ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := forwardedHop(hops[i])
		if !ok {
			return peer.String()
		}
		client = hop
		if !s.trustedProxy(hop) {
			break
		}
	}
	return client.String()
}

// remoteAddr reads an http.Request's RemoteAddr ("ip:port", or a bare ip).
func remoteAddr(v string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		host = v
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedHop reads one X-Forwarded-For element: an address, also with
// a port or in brackets.
func forwardedHop(v string) (netip.Addr, bool) {
	v = strings.TrimSpace(v)
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addressGroup is the key under which the per-address cap on device
// logins counts a client address: an IPv6 address by its /64 (one
// subscriber usually holds a whole /64), anything else as it is.
func addressGroup(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
