package credhelper

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// The helper believes the registry's challenge about where the bridge
// is, but nothing it is told may move the login elsewhere: the realm is
// https (plain http only to loopback hosts and Options.Insecure ones),
// and every endpoint and link the bridge names is on the realm's origin,
// under the same rule. docs/device-login.md, "Which bridge".

// secureURL parses raw and requires an https URL, or http to a host that
// may be reached in clear, without user info.
func (h *Helper) secureURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("%s %q is not an absolute http(s) URL", what, clean(raw))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !h.mayBeInsecure(u) {
			return nil, fmt.Errorf("%s %q is plain http to a host that is not loopback; list %s in DOCKER_CREDENTIAL_BRIDGE_INSECURE to allow it", what, clean(raw), clean(u.Host))
		}
	default:
		return nil, fmt.Errorf("%s %q is not an http(s) URL", what, clean(raw))
	}
	return u, nil
}

// mayBeInsecure reports whether u's host may be reached over plain http.
func (h *Helper) mayBeInsecure(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	return isLoopback(host) || h.o.Insecure[strings.ToLower(u.Host)] || h.o.Insecure[host]
}

// sameOrigin requires raw to be a secureURL on base's scheme and host.
func (h *Helper) sameOrigin(what, base, raw string) error {
	b, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("bridge %q: %w", clean(base), err)
	}
	u, err := h.secureURL(what, raw)
	if err != nil {
		return err
	}
	if u.Scheme != b.Scheme || !strings.EqualFold(u.Host, b.Host) {
		return fmt.Errorf("%s %q is not on the bridge %s://%s named by the registry", what, clean(raw), b.Scheme, clean(b.Host))
	}
	return nil
}

// clean makes a server-supplied string safe to print on a terminal: ANSI
// escape sequences and every other control or bidirectional formatting
// character are removed.
func clean(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == 0x1b || r == 0x9b: // ESC, CSI: skip the sequence
			if r == 0x1b && i+1 < len(rs) && rs[i+1] == ']' { // OSC … BEL or ST
				for i++; i < len(rs) && rs[i] != 0x07 && !(rs[i] == '\\' && rs[i-1] == 0x1b); i++ {
				}
				continue
			}
			if r == 0x1b && i+1 < len(rs) && rs[i+1] == '[' {
				i++
			}
			if r == 0x9b || rs[i] == '[' {
				for i++; i < len(rs) && (rs[i] < 0x40 || rs[i] > 0x7e); i++ {
				}
				continue
			}
			if i+1 < len(rs) { // a two-character escape
				i++
			}
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Cf):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
