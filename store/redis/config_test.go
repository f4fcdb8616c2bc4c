package redis

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error, one per problem; none when valid
	}{
		{"plain", Config{URL: "redis://127.0.0.1:6379/0"}, nil},
		{"tls with auth", Config{URL: "rediss://user:secret@redis.internal/2"}, nil},
		{"unix", Config{URL: "unix:///run/redis.sock?db=3"}, nil},
		{"sentinel", Config{URL: "redis://s1:26379", Addrs: []string{"s2:26379"}, MasterName: "mymaster"}, nil},
		{"sentinel without url", Config{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "m"}, nil},
		{"cluster", Config{Addrs: []string{"n1:6379", "n2:6379"}, PasswordFile: "/run/secrets/redis"}, nil},
		{"cluster one seed", Config{URL: "redis://n1:6379", Cluster: true}, nil},
		{"timeouts", Config{URL: "redis://h:1", DialTimeout: time.Second, ReadTimeout: time.Second}, nil},

		{"nothing", Config{}, []string{"store.redis.url: required"}},
		{"bad scheme", Config{URL: "http://h:6379"}, []string{"store.redis.url: scheme must be"}},
		{"no host", Config{URL: "redis:///0"}, []string{"store.redis.url: needs a host"}},
		{"bad port", Config{URL: "redis://h:99999"}, []string{"store.redis.url:"}},
		{"bad db path", Config{URL: "redis://h/zero"}, []string{"store.redis.url: path must be a database number"}},
		{"query", Config{URL: "rediss://h?skip_verify=true"}, []string{"store.redis.url: query parameters are not supported"}},
		{"unix no path", Config{URL: "unix://"}, []string{"store.redis.url: needs a socket path"}},
		{"unix with addrs", Config{URL: "unix:///s", Addrs: []string{"h:1"}}, []string{"store.redis.url: a unix socket"}},
		{"bad addr", Config{Addrs: []string{"h:1", "nohost"}}, []string{"store.redis.addrs[1]:"}},
		{"sentinel and cluster", Config{Addrs: []string{"h:1"}, MasterName: "m", Cluster: true}, []string{"store.redis.cluster:"}},
		{"two usernames", Config{URL: "redis://u@h", Username: "v"}, []string{"store.redis.username:"}},
		{"two passwords", Config{URL: "redis://:p@h", PasswordFile: "/f"}, []string{"store.redis.password:"}},
		{"password and file", Config{URL: "redis://h", Password: "p", PasswordFile: "/f"}, []string{"store.redis.password:"}},
		{"two dbs", Config{URL: "redis://h/1", DB: 2}, []string{"store.redis.db: url selects database 1"}},
		{"negative db", Config{URL: "redis://h", DB: -1}, []string{"store.redis.db: must not be negative"}},
		{"cluster db", Config{Addrs: []string{"a:1", "b:1"}, DB: 1}, []string{"store.redis.db: Redis Cluster"}},
		{"negative timeouts", Config{URL: "redis://h", DialTimeout: -1, WriteTimeout: -1}, []string{
			"store.redis.dial_timeout: must not be negative", "store.redis.write_timeout: must not be negative",
		}},
		{"all at once", Config{URL: "ftp://x", DB: -1, ReadTimeout: -time.Second}, []string{
			"store.redis.url:", "store.redis.db:", "store.redis.read_timeout:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate(KeyPath)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Validate() reported %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigValidateHidesURLPassword(t *testing.T) {
	for _, raw := range []string{"redis://u:hunter2@h:bad", "redis://:hunter2@h/x", "redis://:hunter2@h\x7f"} {
		err := Config{URL: raw}.Validate(KeyPath)
		if err == nil {
			t.Fatalf("Validate(%q) = nil", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Validate(%q) leaks the password: %v", raw, err)
		}
	}
}

func TestConfigOptions(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, c Config)
	}{
		{"single with defaults", Config{URL: "redis://u:p@h:7000/4"}, func(t *testing.T, c Config) {
			o, _ := c.options()
			if len(o.Addrs) != 1 || o.Addrs[0] != "h:7000" || o.DB != 4 || o.Username != "u" || o.Password != "p" {
				t.Errorf("options = addrs %v db %d user %q password %q", o.Addrs, o.DB, o.Username, o.Password)
			}
			if o.IsClusterMode || o.MasterName != "" || o.TLSConfig != nil {
				t.Error("plain URL selected cluster, sentinel or TLS")
			}
			if o.DialTimeout != DefaultDialTimeout || o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout {
				t.Errorf("timeouts %v %v %v, want defaults", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
			}
		}},
		{"default port", Config{URL: "redis://h"}, func(t *testing.T, c Config) {
			if o, _ := c.options(); o.Addrs[0] != "h:6379" {
				t.Errorf("addrs %v, want h:6379", o.Addrs)
			}
		}},
		{"tls single", Config{URL: "rediss://redis.internal:6380"}, func(t *testing.T, c Config) {
			o, _ := c.options()
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" || o.TLSConfig.InsecureSkipVerify {
				t.Errorf("TLSConfig = %+v", o.TLSConfig)
			}
		}},
		{"tls cluster verifies each node's name", Config{URL: "rediss://n1:6379", Addrs: []string{"n2:6379"}}, func(t *testing.T, c Config) {
			o, _ := c.options()
			if !o.IsClusterMode || o.TLSConfig == nil || o.TLSConfig.ServerName != "" {
				t.Errorf("cluster %v TLSConfig %+v", o.IsClusterMode, o.TLSConfig)
			}
			if len(o.Addrs) != 2 || o.Addrs[0] != "n1:6379" || o.Addrs[1] != "n2:6379" {
				t.Errorf("addrs %v", o.Addrs)
			}
		}},
		{"sentinel", Config{Addrs: []string{"s1:26379"}, MasterName: "m", PasswordFile: pwFile, DB: 2}, func(t *testing.T, c Config) {
			o, err := c.options()
			if err != nil {
				t.Fatal(err)
			}
			if o.IsClusterMode || o.MasterName != "m" || o.Password != "s3cret" || o.DB != 2 {
				t.Errorf("cluster %v master %q password %q db %d", o.IsClusterMode, o.MasterName, o.Password, o.DB)
			}
		}},
		{"missing password file", Config{URL: "redis://h", PasswordFile: filepath.Join(dir, "nope")}, func(t *testing.T, c Config) {
			if _, err := c.options(); err == nil {
				t.Error("options() read a missing password_file")
			}
		}},
		{"unix", Config{URL: "unix:///run/redis.sock?db=1"}, func(t *testing.T, c Config) {
			o, _ := c.options()
			if o.Addrs[0] != "/run/redis.sock" || o.DB != 1 || o.Dialer == nil {
				t.Errorf("addrs %v db %d dialer set %v", o.Addrs, o.DB, o.Dialer != nil)
			}
			if _, err := o.Dialer(context.Background(), "tcp", filepath.Join(dir, "no.sock")); err == nil ||
				!strings.Contains(err.Error(), "unix") {
				t.Errorf("dialer did not dial a unix socket: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(KeyPath); err != nil {
				t.Fatal(err)
			}
			tt.check(t, tt.cfg)
		})
	}
}
