package redis

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for the optional Config fields.
const (
	DefaultKeyPrefix    = "rb:"
	DefaultDialTimeout  = 5 * time.Second
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
)

// Config is the configuration file's `store.redis:` section.
//
// One server:
//
//	url: redis://user:secret@redis.internal:6379/0   # or rediss://…, or unix:///run/redis.sock?db=0
//
// Sentinel (url names one sentinel, addrs the others; password is the
// data nodes' password):
//
//	url: redis://sentinel-1:26379/0
//	addrs: [sentinel-2:26379, sentinel-3:26379]
//	master_name: mymaster
//
// Cluster (url and addrs name seed nodes; cluster: true when there is only
// one seed):
//
//	url: rediss://node-1:6379
//	addrs: [node-2:6379]
//
// A rediss:// URL turns on TLS (verified against the system roots) for
// every node.
type Config struct {
	// URL is the Redis server: redis://[user[:password]@]host[:port][/db],
	// rediss:// for TLS, or unix:///path/to/socket[?db=N]. Required unless
	// Addrs is set. Query parameters other than unix's db are rejected.
	URL string `yaml:"url" json:"url"`
	// Addrs are more host:port seed addresses: Sentinel nodes when
	// MasterName is set, Cluster nodes otherwise.
	Addrs []string `yaml:"addrs,omitempty" json:"addrs,omitempty"`
	// Cluster selects Redis Cluster even with a single seed address.
	Cluster bool `yaml:"cluster,omitempty" json:"cluster,omitempty"`
	// MasterName is the Sentinel master set's name; setting it selects
	// Sentinel.
	MasterName string `yaml:"master_name,omitempty" json:"master_name,omitempty"`
	// Username is the ACL user; it may instead be in the URL.
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password authenticates to the data nodes; it may instead be in the
	// URL or in PasswordFile, but only in one of the three.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordFile is a file holding the password; a trailing newline is
	// ignored.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// DB is the database number; it may instead be the URL's path. Cluster
	// has only database 0.
	DB int `yaml:"db,omitempty" json:"db,omitempty"`
	// KeyPrefix starts every key the store writes; DefaultKeyPrefix when
	// empty. Give each bridge deployment sharing a Redis its own.
	KeyPrefix string `yaml:"key_prefix,omitempty" json:"key_prefix,omitempty"`
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt, reply and write; the Default… constants when zero.
	DialTimeout  time.Duration `yaml:"dial_timeout,omitempty" json:"dial_timeout,omitempty"`
	ReadTimeout  time.Duration `yaml:"read_timeout,omitempty" json:"read_timeout,omitempty"`
	WriteTimeout time.Duration `yaml:"write_timeout,omitempty" json:"write_timeout,omitempty"`
}

// target is what the URL says, once parsed.
type target struct {
	network    string // "tcp" or "unix"
	addr       string // host:port or socket path; "" when URL is empty
	host       string // for TLS ServerName
	tls        bool
	username   string
	password   string
	hasPass    bool
	db         int
	hasDB      bool
	hasUser    bool
	hasTarget  bool   // the URL names a server
	errMessage string // why the URL is invalid; "" when it is not
}

// KeyPath is the section's key path in the bridge's configuration file,
// the prefix New validates with.
const KeyPath = "store.redis"

// Validate reports every problem with c at once, each prefixed with its
// key path under prefix (normally KeyPath, giving "store.redis.url: …").
// It does no I/O: New reports an unreadable PasswordFile.
func (c Config) Validate(prefix string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}

	t := parseURL(c.URL)
	switch {
	case t.errMessage != "":
		bad("url", "%s", t.errMessage)
	case !t.hasTarget && len(c.Addrs) == 0:
		bad("url", "required (or set addrs)")
	}
	for i, a := range c.Addrs {
		if err := checkHostPort(a); err != nil {
			bad(fmt.Sprintf("addrs[%d]", i), "%v", err)
		}
	}

	sentinel := c.MasterName != ""
	cluster := !sentinel && (c.Cluster || len(c.Addrs) > 0)
	if sentinel && c.Cluster {
		bad("cluster", "cannot be combined with master_name (Sentinel)")
	}
	if t.network == "unix" && (len(c.Addrs) > 0 || c.Cluster || sentinel) {
		bad("url", "a unix socket serves one server only; drop addrs, cluster and master_name")
	}

	if t.hasUser && c.Username != "" {
		bad("username", "also given in url; set it in one place")
	}
	set := 0
	for _, b := range []bool{t.hasPass, c.Password != "", c.PasswordFile != ""} {
		if b {
			set++
		}
	}
	if set > 1 {
		bad("password", "set only one of url's password, password and password_file")
	}

	if c.DB < 0 {
		bad("db", "must not be negative")
	}
	if t.hasDB && c.DB != 0 && t.db != c.DB {
		bad("db", "url selects database %d; set it in one place", t.db)
	}
	if cluster && (c.DB != 0 || t.db != 0) {
		bad("db", "Redis Cluster has only database 0")
	}

	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.d < 0 {
			bad(d.key, "must not be negative")
		}
	}
	return errors.Join(errs...)
}

// options turns a valid Config into go-redis options, reading PasswordFile.
func (c Config) options() (*goredis.UniversalOptions, error) {
	t := parseURL(c.URL)
	o := &goredis.UniversalOptions{
		ClientName:            "registry-bridge",
		Username:              cmp.Or(c.Username, t.username),
		Password:              cmp.Or(c.Password, t.password),
		DB:                    max(c.DB, t.db),
		MasterName:            c.MasterName,
		IsClusterMode:         c.MasterName == "" && (c.Cluster || len(c.Addrs) > 0),
		DialTimeout:           durationOr(c.DialTimeout, DefaultDialTimeout),
		ReadTimeout:           durationOr(c.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:          durationOr(c.WriteTimeout, DefaultWriteTimeout),
		ContextTimeoutEnabled: true,
		// Maintenance notifications are a Redis Enterprise feature; keep
		// the handshake plain for every server.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if t.hasTarget {
		o.Addrs = append(o.Addrs, t.addr)
	}
	o.Addrs = append(o.Addrs, c.Addrs...)
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read password_file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if t.tls {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if len(o.Addrs) == 1 && !o.IsClusterMode && o.MasterName == "" {
			o.TLSConfig.ServerName = t.host
		} // otherwise each connection verifies the name it dialled
	}
	if t.network == "unix" {
		o.Dialer = func(ctx context.Context, _, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
	}
	return o, nil
}

// describe names, for error messages, the server(s) that addrs (from
// options) point at, and the config keys that set them. Nothing it
// returns holds a password.
func (c Config) describe(addrs []string) (where, check string) {
	// The section's place in the bridge's configuration file, where New
	// is always called from.
	const keyPath = "store.redis."
	var keys []string
	if c.URL != "" {
		keys = append(keys, keyPath+"url")
	}
	if len(c.Addrs) > 0 {
		keys = append(keys, keyPath+"addrs")
	}
	switch {
	case c.MasterName != "":
		where = fmt.Sprintf("sentinel %s (master %q)", strings.Join(addrs, ", "), c.MasterName)
		keys = append(keys, keyPath+"master_name")
	case c.Cluster || len(c.Addrs) > 0:
		where = "cluster " + strings.Join(addrs, ", ")
	default:
		where = strings.Join(addrs, ", ")
	}
	return where, strings.Join(keys, ", ")
}

// parseURL parses the url key. Its error messages never repeat the URL,
// which may hold a password.
func parseURL(raw string) target {
	var t target
	if raw == "" {
		return t
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.errMessage = "not a valid URL"
		return t
	}
	t.hasTarget = true
	if u.User != nil {
		t.username = u.User.Username()
		t.hasUser = t.username != ""
		t.password, t.hasPass = u.User.Password()
	}
	if u.Fragment != "" {
		t.errMessage = "must not have a #fragment"
		return t
	}
	query := u.Query()
	switch u.Scheme {
	case "redis", "rediss":
		t.network = "tcp"
		t.tls = u.Scheme == "rediss"
		if u.Opaque != "" || u.Hostname() == "" {
			t.errMessage = "needs a host: " + u.Scheme + "://host:port"
			return t
		}
		t.host = u.Hostname()
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		t.addr = net.JoinHostPort(t.host, port)
		if err := checkHostPort(t.addr); err != nil {
			t.errMessage = err.Error()
			return t
		}
		if p := strings.Trim(u.Path, "/"); p != "" {
			db, err := strconv.Atoi(p)
			if err != nil || db < 0 {
				t.errMessage = "path must be a database number, as in /0"
				return t
			}
			t.db, t.hasDB = db, true
		}
		if len(query) > 0 {
			t.errMessage = "query parameters are not supported; use the store.redis keys"
			return t
		}
	case "unix":
		t.network = "unix"
		t.addr = u.Path
		if t.addr == "" {
			t.errMessage = "needs a socket path: unix:///path/to/redis.sock"
			return t
		}
		if db := query.Get("db"); db != "" {
			n, err := strconv.Atoi(db)
			if err != nil || n < 0 {
				t.errMessage = "db parameter must be a database number"
				return t
			}
			t.db, t.hasDB = n, true
		}
		query.Del("db")
		if len(query) > 0 {
			t.errMessage = "query parameters other than db are not supported"
			return t
		}
	default:
		t.errMessage = "scheme must be redis, rediss or unix"
	}
	return t
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	return nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
