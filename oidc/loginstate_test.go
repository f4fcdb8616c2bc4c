package oidc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSealLogin(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	replica, _ := NewSealer(key)
	st, err := NewLoginState()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	expires := now.Add(10 * time.Minute)
	sealed, err := s.SealLogin(st, expires)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > 300 || len(sealed) > MaxSealedLogin {
		t.Errorf("sealed login is %d characters", len(sealed))
	}
	for _, secret := range []string{st.State, st.Nonce, st.Verifier} {
		if strings.Contains(sealed, secret) {
			t.Fatal("a field is visible in the sealed login")
		}
	}
	got, gotExpires, err := replica.OpenLogin(sealed, now)
	if err != nil || got != st || !gotExpires.Equal(expires) {
		t.Fatalf("another replica with the same key: %+v %v %v", got, gotExpires, err)
	}
	if again, _ := s.SealLogin(st, expires); again == sealed {
		t.Error("two seals of one login are equal: the nonce is not random")
	}

	raw, _ := base64.RawURLEncoding.DecodeString(sealed)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 1
	other, _ := RandomSealer()
	refreshSealed, _ := s.Seal(string(raw), loginAD) // the refresh-token key, same key material
	tests := []struct {
		name   string
		sealed string
		now    time.Time
		want   error
	}{
		{"expired", sealed, expires, ErrLoginExpired},
		{"long expired", sealed, expires.Add(time.Hour), ErrLoginExpired},
		{"another key", sealed, now, nil},
		{"a changed byte", base64.RawURLEncoding.EncodeToString(flipped), now, ErrLoginInvalid},
		{"truncated", sealed[:len(sealed)-4], now, ErrLoginInvalid},
		{"empty", "", now, ErrLoginInvalid},
		{"not base64", "!!!" + sealed, now, ErrLoginInvalid},
		{"too long", strings.Repeat("A", MaxSealedLogin+1), now, ErrLoginInvalid},
		{"sealed for refresh tokens", base64.RawURLEncoding.EncodeToString(refreshSealed), now, ErrLoginInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opener := s
			if tt.name == "another key" {
				opener, tt.want = other, ErrLoginInvalid
			}
			if got, _, err := opener.OpenLogin(tt.sealed, tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("OpenLogin = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := s.SealLogin(LoginState{State: "s", Nonce: "n"}, expires); err == nil {
		t.Error("sealed a login without a verifier")
	}
	if _, err := s.SealLogin(LoginState{State: strings.Repeat("s", maxLoginField+1), Nonce: "n", Verifier: "v"}, expires); err == nil {
		t.Error("sealed an over-long state")
	}
}

func FuzzDecodeLogin(f *testing.F) {
	st, _ := NewLoginState()
	good, _ := encodeLogin(st, time.UnixMilli(1_700_000_000_000))
	f.Add(good)
	f.Add([]byte{loginVersion})
	f.Add(append(bytes.Clone(good), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, expires, err := decodeLogin(b)
		if err != nil {
			return
		}
		again, err := encodeLogin(st, expires)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decode(%x) = %+v %v, which encodes to %x, %v", b, st, expires, again, err)
		}
	})
}

func TestOriginOf(t *testing.T) {
	for raw, want := range map[string]string{
		"https://idp.example.com/logout?x=1":  "https://idp.example.com",
		"https://IdP.Example.com:443/a":       "https://idp.example.com",
		"http://127.0.0.1:8080/end":           "http://127.0.0.1:8080",
		"http://[::1]:80/end":                 "http://[::1]",
		"https://idp.example.com:8443":        "https://idp.example.com:8443",
		"HTTPS://idp.example.com/":            "https://idp.example.com",
		"javascript:alert(1)":                 "",
		"/relative/logout":                    "",
		"https://user@idp.example.com/logout": "",
		"https://idp.example.com;script-src/": "",
		"https://idp.example.com%20*/":        "",
		"ftp://idp.example.com/":              "",
		"":                                    "",
	} {
		if got := originOf(raw); got != want {
			t.Errorf("originOf(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestLogoutOrigin(t *testing.T) {
	ti, p := newTestIdP(t, false, nil)
	if got, want := p.LogoutOrigin(t.Context()), ti.ts.URL; got != want {
		t.Fatalf("LogoutOrigin = %q, want the provider's %q", got, want)
	}
	if l := p.LogoutURL(t.Context(), "", ""); !strings.HasPrefix(l, p.LogoutOrigin(t.Context())+"/") {
		t.Fatalf("LogoutURL %q is not at LogoutOrigin", l)
	}

	cfg := Config{Issuer: "http://127.0.0.1:1", ClientID: "c"}
	cfg.SetDefaults()
	down, err := New(Options{Config: cfg, HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if got := down.LogoutOrigin(t.Context()); got != "" {
		t.Fatalf("LogoutOrigin of an unreachable provider = %q, want \"\"", got)
	}
}
