package credhelper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
)

func TestBearerRealm(t *testing.T) {
	for in, want := range map[string]string{
		`Bearer realm="http://localhost:5001/token",service="registry.test"`: "http://localhost:5001/token",
		`Bearer service="a,b",realm="https://b.example/token"`:               "https://b.example/token",
		`bearer realm=https://c.example/token,service=x`:                     "https://c.example/token",
		`Basic realm="x"`:            "",
		`Bearer realm="unterminated`: "",
		`Bearer error="invalid_token", realm="https://d.example/token", scope="x:y:z"`: "https://d.example/token",
	} {
		if got := bearerRealm(in); got != want {
			t.Errorf("bearerRealm(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegistryKey(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:5000": "localhost:5000", "https://Registry.Example.com": "registry.example.com",
		"http://localhost:5000/v2/": "localhost:5000", " registry.example.com:443 ": "registry.example.com:443",
	} {
		if got, err := registryKey(in); err != nil || got != want {
			t.Errorf("registryKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// The file is the owner's only, and what a client stores comes back.
func TestFileStoreGetEraseList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry-bridge")
	h, err := New(Options{Dir: dir, Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Get("registry.test"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("Get with nothing stored, not interactive: %v", err)
	}
	if err := h.Add(&credentials.Credentials{ServerURL: "https://registry.test", Username: "robot", Secret: "rbp_x"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file mode %v, want 0600", fi.Mode().Perm())
	}
	if d, _ := os.Stat(dir); d.Mode().Perm() != 0o700 {
		t.Fatalf("credential directory mode %v, want 0700", d.Mode().Perm())
	}
	if u, s, err := h.Get("registry.test"); err != nil || u != "robot" || s != "rbp_x" {
		t.Fatalf("Get = %q %q %v", u, s, err)
	}
	if l, err := h.List(); err != nil || l["registry.test"] != "robot" || len(l) != 1 {
		t.Fatalf("List = %v %v", l, err)
	}
	// Erase forgets the credential even when the bridge cannot be reached
	// to revoke it (here nothing listens on 127.0.0.1:1), and says so.
	if err := h.Add(&credentials.Credentials{ServerURL: "https://127.0.0.1:1", Username: "robot2", Secret: "rbp_y"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete("https://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "revoke") {
		t.Fatalf("Delete with the bridge unreachable: %v, want the revocation's failure", err)
	}
	if _, _, err := h.Get("127.0.0.1:1"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if l, err := h.List(); err != nil || len(l) != 1 || l["registry.test"] != "robot" {
		t.Fatalf("List after Delete = %v %v", l, err)
	}
}

func FuzzBearerRealm(f *testing.F) {
	for _, s := range []string{`Bearer realm="http://localhost:5001/token",service="x"`, `Bearer realm=`, `Bearer a="`, `Bearer ,,,`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = bearerRealm(s) // must not panic or loop
	})
}

// A credential about to expire is not handed out: get logs in again (here,
// not interactive, it answers "not found").
func TestGetSkipsExpiring(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	h, err := New(Options{Dir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		expires time.Time
		ok      bool
	}{
		"valid": {now.Add(time.Hour), true}, "expiring": {now.Add(renewBefore - time.Second), false}, "expired": {now.Add(-time.Second), false},
	} {
		err := save(filepath.Join(dir, FileName), file{Registries: map[string]Entry{"registry.test": {
			Username: "alice", Password: "rbp_x", RefreshToken: "rbr_x", ExpiresAt: tt.expires,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		user, secret, err := h.Get("registry.test")
		switch {
		case tt.ok && (err != nil || user != "<token>" || secret != "rbr_x"):
			t.Errorf("%s: Get = %q %q %v, want the identity token", name, user, secret, err)
		case !tt.ok && !credentials.IsErrCredentialsNotFound(err):
			t.Errorf("%s: Get = %q %q %v, want not found", name, user, secret, err)
		}
	}
}
