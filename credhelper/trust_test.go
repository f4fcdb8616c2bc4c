package credhelper

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBridge is a registry and a bridge on one loopback server, whose
// answers a test bends.
type fakeBridge struct {
	srv       *httptest.Server
	realm     string            // the challenge's realm; default the server's /token
	metadata  map[string]string // overrides of the metadata's fields
	start     map[string]any    // overrides of the device authorization answer
	codePosts atomic.Int32
}

func newFakeBridge(t *testing.T) *fakeBridge {
	t.Helper()
	f := &fakeBridge{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := f.srv.URL
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v2/":
			realm := f.realm
			if realm == "" {
				realm = base + "/token"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="registry.test"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/.well-known/oauth-authorization-server":
			md := map[string]string{"issuer": base, "token_endpoint": base + "/token",
				"device_authorization_endpoint": base + "/device/code", "revocation_endpoint": base + "/revoke"}
			for k, v := range f.metadata {
				md[k] = v
			}
			_ = json.NewEncoder(w).Encode(md)
		case "/device/code":
			f.codePosts.Add(1)
			a := map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": base + "/device",
				"verification_uri_complete": base + "/device?user_code=BCDF-GHJK", "expires_in": 60, "interval": 1}
			for k, v := range f.start {
				a[k] = v
			}
			_ = json.NewEncoder(w).Encode(a)
		case "/token":
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "rbp_x", "refresh_token": "rbr_x", "username": "alice\x1b[31m",
				"expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBridge) registry() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// login runs a device login against f and returns its error, what it
// printed and the URLs it would have opened.
func (f *fakeBridge) login(t *testing.T) (error, string, []string) {
	t.Helper()
	var stderr bytes.Buffer
	var opened []string
	h, err := New(Options{Dir: t.TempDir(), Stderr: &stderr, Interactive: true, Hostname: "laptop",
		OpenBrowser: func(u string) error { opened = append(opened, u); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Login(t.Context(), f.registry())
	return err, stderr.String(), opened
}

func TestDeviceLoginTrustsOnlyTheRealmsOrigin(t *testing.T) {
	for _, tt := range []struct {
		name     string
		bend     func(f *fakeBridge)
		want     string
		postCode bool // the refusal comes after the device authorization request
	}{
		{"http realm on another host", func(f *fakeBridge) { f.realm = "http://bridge.invalid/token" }, "DOCKER_CREDENTIAL_BRIDGE_INSECURE", false},
		{"realm of another scheme", func(f *fakeBridge) { f.realm = "file:///token" }, "http(s) URL", false},
		{"token endpoint elsewhere", func(f *fakeBridge) { f.metadata = map[string]string{"token_endpoint": "https://127.0.0.1:1/token"} }, "token_endpoint", false},
		{"device endpoint in clear elsewhere", func(f *fakeBridge) {
			f.metadata = map[string]string{"device_authorization_endpoint": "http://bridge.invalid/device/code"}
		}, "device_authorization_endpoint", false},
		{"revocation endpoint on another port", func(f *fakeBridge) {
			f.metadata = map[string]string{"revocation_endpoint": "http://127.0.0.1:1/revoke"}
		}, "revocation_endpoint", false},
		{"verification link of another scheme", func(f *fakeBridge) { f.start = map[string]any{"verification_uri_complete": "file:///etc/passwd"} }, "verification_uri_complete", true},
		{"verification link elsewhere", func(f *fakeBridge) {
			f.start = map[string]any{"verification_uri_complete": "https://bridge.invalid/device?user_code=BCDF-GHJK"}
		}, "verification_uri_complete", true},
		{"verification uri elsewhere", func(f *fakeBridge) { f.start = map[string]any{"verification_uri": "smb://bridge.invalid/share"} }, "verification_uri", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBridge(t)
			tt.bend(f)
			err, stderr, opened := f.login(t)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("login: %v, want a refusal naming %s", err, tt.want)
			}
			if len(opened) > 0 || strings.Contains(stderr, "open\n") {
				t.Fatalf("a refused login opened %v / printed %q", opened, stderr)
			}
			if got := f.codePosts.Load() > 0; got != tt.postCode {
				t.Fatalf("device authorization requested: %v, want %v", got, tt.postCode)
			}
		})
	}
}

// What the server sends is printed without control characters: no
// escape sequence can hide or rewrite the link or the code.
func TestDeviceLoginPrintsNoControlCharacters(t *testing.T) {
	f := newFakeBridge(t)
	f.start = map[string]any{"user_code": "BCDF-\x1b]8;;https://evil.example\x07GHJK\x1b[2K\r"}
	err, stderr, opened := f.login(t)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(stderr, "\x1b\r\x07") || !strings.Contains(stderr, "the code BCDF-GHJK.") || !strings.Contains(stderr, "as alice (") {
		t.Fatalf("printed %q", stderr)
	}
	if len(opened) != 1 || opened[0] != f.srv.URL+"/device?user_code=BCDF-GHJK" {
		t.Fatalf("opened %v", opened)
	}
}

func TestSecureURL(t *testing.T) {
	h, err := New(Options{Dir: t.TempDir(), Insecure: map[string]bool{"registry.lan:5000": true, "bridge.lan": true}})
	if err != nil {
		t.Fatal(err)
	}
	for raw, ok := range map[string]bool{
		"https://bridge.example/token": true, "http://bridge.example/token": false, "http://localhost:5001/token": true,
		"http://127.0.0.1:5001/token": true, "http://[::1]:5001/token": true, "http://registry.lan:5000/token": true,
		"http://registry.lan:5001/token": false, "http://bridge.lan:8080/token": true, "file:///etc/passwd": false,
		"javascript:alert(1)": false, "https://user:pw@bridge.example/token": false, "/token": false, "ftp://bridge.example/": false,
	} {
		if _, err := h.secureURL("realm", raw); (err == nil) != ok {
			t.Errorf("secureURL(%q): %v, want ok %v", raw, err, ok)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain https://b.example/device?user_code=BCDF-GHJK":   "plain https://b.example/device?user_code=BCDF-GHJK",
		"a\x1b[31mred\x1b[0m":                                  "ared",
		"x\x1b]8;;https://evil.example\x07link\x1b]8;;\x1b\\y": "xlinky",
		"line\rover\nnext\ttab":                                "lineovernexttab",
		"\u202eevil\u2066":                                     "evil",
		"csi\u009b2Kdone":                                      "csidone",
		"esc\x1bcreset":                                        "escreset",
		"trailing\x1b":                                         "trailing",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestXDGOpenOnlyWebLinks(t *testing.T) {
	for _, u := range []string{"file:///etc/passwd", "smb://evil.example/share", "x-custom:run"} {
		if err := XDGOpen(u); err == nil {
			t.Errorf("XDGOpen(%q) accepted it", u)
		}
	}
}
