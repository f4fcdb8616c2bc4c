package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/passwords"
)

// oidcSectionBody is an oidc section that only serve needs: its client
// secret file does not exist.
const oidcSectionBody = `oidc:
  issuer: https://idp.example.com
  client_id: registry-bridge
  client_secret_file: /nonexistent/oidc-client-secret
`

func TestDeprecatedKeysStillWork(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir)+`oidc:
  issuer: https://idp.example.com
  client_id: registry-bridge
  client_secret: s3cret
  session_idle_timeout: 30m
  session_max_age: 8h
  revalidate_grace: 2h
passwords:
  revalidate_every: 5m
`)
	out, stderr, err := runCLI(t, "config", "check", "--config", path)
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("config check of a file with only the old keys: %v\n%s%s", err, out, stderr)
	}
	for old, new := range map[string]string{
		"oidc.session_idle_timeout":  "sessions.idle_timeout",
		"oidc.session_max_age":       "sessions.max_age",
		"oidc.revalidate_grace":      "revalidation.grace",
		"passwords.revalidate_every": "revalidation.every",
	} {
		if !strings.Contains(stderr, "warning: "+old+" is deprecated: use "+new) {
			t.Errorf("config check does not name %s's new key %s:\n%s", old, new, stderr)
		}
	}
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sessions.IdleTimeout != 30*time.Minute || cfg.Sessions.MaxAge != 8*time.Hour ||
		cfg.Revalidation.Grace != 2*time.Hour || cfg.Revalidation.Every != 5*time.Minute {
		t.Fatalf("old keys not copied to the new place: sessions %+v, revalidation %+v", cfg.Sessions, cfg.Revalidation)
	}
}

func TestNewKeysHaveNoWarning(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir)+`sessions:
  idle_timeout: 30m
  max_age: 8h
revalidation:
  every: 5m
  grace: 2h
`)
	out, stderr, err := runCLI(t, "config", "check", "--config", path)
	if err != nil || !strings.Contains(out, ": ok") || strings.Contains(stderr, "warning") {
		t.Fatalf("config check: %v\n%s%s", err, out, stderr)
	}
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sessions.IdleTimeout != 30*time.Minute || cfg.Revalidation.Every != 5*time.Minute {
		t.Fatalf("sessions %+v, revalidation %+v", cfg.Sessions, cfg.Revalidation)
	}
}

func TestOldAndNewKeyDisagree(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	for _, tt := range []struct {
		name, body string
		wantErr    []string // empty: accepted (same value twice)
	}{
		{"different values", "passwords:\n  revalidate_every: 5m\nrevalidation:\n  every: 10m\n",
			[]string{"passwords.revalidate_every", "revalidation.every"}},
		{"oidc and sessions", "oidc:\n  issuer: https://idp.example.com\n  client_id: c\n  client_secret: s\n  session_max_age: 8h\nsessions:\n  max_age: 9h\n",
			[]string{"oidc.session_max_age", "sessions.max_age"}},
		{"same value", "passwords:\n  revalidate_every: 5m\nrevalidation:\n  every: 5m\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, dir, validConfig(dir)+tt.body)
			_, stderr, err := runCLI(t, "config", "check", "--config", path)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("config check: %v\n%s", err, stderr)
				}
				return
			}
			if err == nil {
				t.Fatal("config check accepted an old and a new key with different values")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("the error does not name %s:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestServeLogsDeprecatedKeys(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body := strings.Replace(validConfig(dir), "listen: 127.0.0.1:0", "listen: "+freeAddr(t), 1)
	path := writeConfig(t, dir, body+"passwords:\n  revalidate_every: 5m\nlog:\n  flush_interval: -1s\n")
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, []string{"--config", path}, logs) }()
	waitFor(t, 10*time.Second, "serve to start", func() bool { return strings.Contains(logs.String(), `"msg":"serving"`) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), `"key":"passwords.revalidate_every","use":"revalidation.every"`) {
		t.Fatalf("serve did not log the deprecated key with its new name:\n%s", logs)
	}
}

// TestRelativePathsFollowTheConfigFile runs config check from another
// directory (the issue: `bridge config check --config /etc/bridge/bridge.yaml`
// run from / could not find keys/signing.key next to the file).
func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, filepath.Join(dir, "keys"))
	if err := os.WriteFile(filepath.Join(dir, "keys", "client-secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer(
		dir+"/signing.key", "keys/signing.key",
		dir+"/signing.crt", "./keys/signing.crt\n  previous_keys: [keys/signing.crt]",
	).Replace(validConfig(dir)) +
		"oidc:\n  issuer: https://idp.example.com\n  client_id: c\n  client_secret_file: keys/client-secret\n  encryption_key_file: keys/encryption.key\n"
	path := writeConfig(t, dir, body)
	t.Chdir("/")
	if out, stderr, err := runCLI(t, "config", "check", "--config", path); err != nil {
		t.Fatalf("config check from /: %v\n%s%s", err, out, stderr)
	}
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "keys", "signing.key"); cfg.Token.SigningKeyFile != want {
		t.Errorf("token.signing_key_file = %q, want %q", cfg.Token.SigningKeyFile, want)
	}
	if secret, err := cfg.OIDC.Secret(); err != nil || secret != "s3cret" {
		t.Errorf("client secret = %q, %v", secret, err)
	}
	// A relative --config: relative to where the file is, too.
	t.Chdir(filepath.Dir(dir))
	if _, stderr, err := runCLI(t, "config", "check", "--config", filepath.Join(filepath.Base(dir), "bridge.yaml")); err != nil {
		t.Fatalf("config check with a relative --config: %v\n%s", err, stderr)
	}
}

// TestEveryFileKeyIsResolved sets every `…_file` key (and the file lists)
// of the configuration to a relative name and checks that resolvePaths
// makes each absolute, so a file key added later cannot be forgotten.
func TestEveryFileKeyIsResolved(t *testing.T) {
	var c fileConfig
	var keys []string
	walkFileKeys(reflect.ValueOf(&c).Elem(), "", func(key string, v reflect.Value) {
		keys = append(keys, key)
		if v.Kind() == reflect.Slice {
			v.Set(reflect.ValueOf([]string{"rel/a", "/abs/b"}))
		} else {
			v.SetString("rel/a")
		}
	})
	if len(keys) < 8 {
		t.Fatalf("found only the file keys %v", keys)
	}
	c.resolvePaths("/etc/bridge")
	walkFileKeys(reflect.ValueOf(&c).Elem(), "", func(key string, v reflect.Value) {
		var got []string
		if v.Kind() == reflect.Slice {
			got = v.Interface().([]string)
		} else {
			got = []string{v.String()}
		}
		for _, p := range got {
			if p != "/etc/bridge/rel/a" && p != "/abs/b" {
				t.Errorf("%s: %q after resolvePaths, want /etc/bridge/rel/a (or an absolute path unchanged)", key, p)
			}
		}
	})
}

// walkFileKeys calls f for every string field whose YAML key ends in
// _file, and every []string field whose key ends in _files or _keys,
// allocating nil pointers on the way.
func walkFileKeys(v reflect.Value, path string, f func(key string, v reflect.Value)) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		key := path + "." + name
		if strings.Contains(opts, "inline") {
			key = path
		}
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.String && strings.HasSuffix(name, "_file"):
			f(strings.TrimPrefix(key, "."), fv)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String &&
			(strings.HasSuffix(name, "_files") || strings.HasSuffix(name, "_keys")):
			f(strings.TrimPrefix(key, "."), fv)
		default:
			walkFileKeys(fv, key, f)
		}
	}
}

// TestCommandsNeedOnlyTheirSections runs the passwords commands and policy
// explain against a file whose OIDC client secret file does not exist and
// which names no signing key: what a robot-minting operator holding only
// the Redis credentials has. serve's check still refuses the file.
func TestCommandsNeedOnlyTheirSections(t *testing.T) {
	addr := testenv.Redis(t)
	dir := t.TempDir()
	path := writeConfig(t, dir, `
public_url: http://localhost:5001
tls:
  cert_file: /nonexistent/tls.crt
  key_file: /nonexistent/tls.key
`+oidcSectionBody+`token:
  issuer: registry-bridge
  service: registry.test
store:
  redis:
    url: redis://`+addr+`/0
access:
  - groups: [ci]
    repositories: ["ci/**"]
    actions: [pull, push]
`)
	pw, stderr, err := runCLI(t, "passwords", "create", "--config", path, "--user", "ci-bot", "--groups", "ci")
	if err != nil {
		t.Fatalf("passwords create: %v\n%s", err, stderr)
	}
	c, err := passwords.Parse(strings.TrimSpace(pw))
	if err != nil {
		t.Fatalf("create printed %q: %v", pw, err)
	}
	if out, _, err := runCLI(t, "passwords", "list", "--config", path, "--user", "ci-bot"); err != nil || !strings.Contains(out, c.ID) {
		t.Fatalf("passwords list: %v\n%s", err, out)
	}
	if out, _, err := runCLI(t, "policy", "explain", "--config", path, "--user", "ci-bot", "--groups", "ci", "--scope", "repository:ci/app:push"); err != nil || !strings.Contains(out, "→ push") {
		t.Fatalf("policy explain: %v\n%s", err, out)
	}
	// A broken access rule does not stop an operator revoking.
	broken := filepath.Join(dir, "broken.yaml")
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte(strings.Replace(string(body), `actions: [pull, push]`, `actions: [fly]`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := runCLI(t, "passwords", "revoke", "--config", broken, c.ID); err != nil || !strings.Contains(out, c.ID) {
		t.Fatalf("passwords revoke with a broken access rule: %v\n%s%s", err, out, stderr)
	}
	_, stderr, err = runCLI(t, "config", "check", "--config", path)
	if err == nil {
		t.Fatal("config check accepted a file without a signing key, TLS files or client secret")
	}
	for _, want := range []string{"token.signing_key_file", "tls.cert_file", "oidc.client_secret_file"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("config check does not report %s:\n%s", want, stderr)
		}
	}
}

// TestCommandsStillCheckTheirSections: a command validates the sections it
// uses, and decoding stays strict for every section.
func TestCommandsStillCheckTheirSections(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body, want string
	}{
		{"bad rule", "access:\n  - groups: [a]\n    repositories: [\"a/***\"]\n    actions: [pull]\n", "access[0].repositories[0]"},
		{"unknown key in an unused section", "access: []\ntoken:\n  lifetme: 5m\n", "token.lifetme"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, dir, tt.body)
			_, _, err := runCLI(t, "policy", "explain", "--config", path, "--anonymous", "--scope", "repository:a/b:pull")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("policy explain: err %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir)+"server:\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\", \"::ffff:172.16.0.0/108\"]\n")
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Server.parseTrustedProxies("server")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("172.16.0.0/12")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("trusted proxies %v, want %v", got, want)
	}

	path = writeConfig(t, dir, validConfig(dir)+"server:\n  trusted_proxies: [10.0.0.0/8, ingress, 10.0.0.0/33]\n")
	_, err = loadConfig(path, useAll)
	if err == nil || !strings.Contains(err.Error(), "server.trusted_proxies[1]") || !strings.Contains(err.Error(), "server.trusted_proxies[2]") {
		t.Fatalf("bad entries: %v, want both named with their key paths", err)
	}
}
