package devidp_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/devidp"
)

func TestLoadConfigExample(t *testing.T) {
	cfg, err := devidp.LoadConfig("testdata/users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{}
	for _, u := range cfg.Users {
		if u.Password == "" {
			t.Errorf("%s has no password", u.Username)
		}
		groups[u.Username] = u.Groups
	}
	if !slices.Equal(groups["alice"], []string{"team-a"}) || !slices.Equal(groups["bob"], []string{"team-b", "registry-admins"}) {
		t.Errorf("groups = %v", groups)
	}
	if len(cfg.Clients) != 1 || cfg.Clients[0].ID != "registry-bridge" || cfg.Clients[0].Secret == "" ||
		!slices.Equal(cfg.Clients[0].RedirectURIs, []string{"http://localhost:5001/callback"}) {
		t.Errorf("clients = %+v", cfg.Clients)
	}
	if !cfg.GroupsInIDToken || cfg.AccessTokenLifetime != 5*time.Minute {
		t.Errorf("settings = %+v", cfg)
	}
	cfg.Issuer = "http://localhost:5556"
	if err := cfg.Validate(); err != nil {
		t.Errorf("example with an issuer does not validate: %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "issuer: http://x\nuser: []\n", "user"},
		{"misspelt user key", "users:\n  - username: a\n    pasword: b\n", "users[0].pasword"},
		{"unset env", "users:\n  - username: a\n    password: ${env:DEVIDP_TEST_UNSET_VARIABLE}\n", "DEVIDP_TEST_UNSET_VARIABLE"},
		{"bad duration", "access_token_lifetime: soon\n", "access_token_lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := devidp.LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := func() devidp.Config {
		return devidp.Config{
			Issuer:  "http://127.0.0.1:5556",
			Users:   []devidp.User{{Username: "alice", Password: "pw"}},
			Clients: []devidp.Client{{ID: "c", Secret: "s", RedirectURIs: []string{"http://localhost:5001/callback"}}},
		}
	}
	for _, tc := range []struct {
		name   string
		modify func(*devidp.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"valid", func(*devidp.Config) {}, nil},
		{"https redirect anywhere", func(c *devidp.Config) { c.Clients[0].RedirectURIs = []string{"https://bridge.example/callback"} }, nil},
		{"ipv6 loopback", func(c *devidp.Config) { c.Clients[0].RedirectURIs = []string{"http://[::1]:5001/callback"} }, nil},
		{"no issuer", func(c *devidp.Config) { c.Issuer = "" }, []string{"issuer: required"}},
		{"issuer with query", func(c *devidp.Config) { c.Issuer = "http://x/?a=b" }, []string{"issuer: want"}},
		{"http redirect off loopback", func(c *devidp.Config) { c.Clients[0].RedirectURIs = []string{"http://bridge.example/callback"} }, []string{"clients[0].redirect_uris[0]: http is allowed only on loopback"}},
		{"bad post-logout URI", func(c *devidp.Config) { c.Clients[0].PostLogoutRedirectURIs = []string{"/relative"} }, []string{"clients[0].post_logout_redirect_uris[0]"}},
		{"every problem at once", func(c *devidp.Config) {
			c.Users = append(c.Users, devidp.User{Username: "alice"}, devidp.User{Password: "x"})
			c.Clients = append(c.Clients, devidp.Client{ID: "c"})
			c.AccessTokenLifetime = -time.Second
		}, []string{
			`users[1].username: duplicate "alice"`, "users[1].password: required", "users[1].subject: duplicate",
			"users[2].username: required", `clients[1].id: duplicate "c"`, "clients[1].secret: required",
			"clients[1].redirect_uris: at least one", "access_token_lifetime: must not be negative",
		}},
		{"duplicate explicit subject", func(c *devidp.Config) {
			c.Users = append(c.Users, devidp.User{Username: "bob", Password: "pw", Subject: devidp.SubjectFor("alice")})
		}, []string{"users[1].subject: duplicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.modify(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSubjectForIsStableAndNotTheUsername(t *testing.T) {
	a, b := devidp.SubjectFor("alice"), devidp.SubjectFor("alice")
	if a != b || a == "alice" || len(a) != 20 || devidp.SubjectFor("bob") == a {
		t.Errorf("SubjectFor(alice) = %q, %q; bob = %q", a, b, devidp.SubjectFor("bob"))
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := devidp.New(devidp.Config{}); err == nil || !strings.Contains(err.Error(), "issuer: required") {
		t.Errorf("New(empty) = %v", err)
	}
}
