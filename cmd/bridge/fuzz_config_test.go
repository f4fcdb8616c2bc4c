package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// specialPath matches paths whose reading could block or never end
// (/dev/zero, /proc/self/fd/0, a FIFO under /sys): the fuzzer must not
// steer the loader there. The config file is the operator's, so this is a
// limit of the fuzz harness, not of the loader.
var specialPath = regexp.MustCompile(`(?i)(dev|proc|sys|fd)\s*/`)

// FuzzConfigCheck runs `bridge config check` on arbitrary files: the YAML
// decoder, every section's validation, key loading and rule compiling.
// "@dir@" in the input stands for a directory holding valid keys, so the
// fuzzer reaches past the key files. A check either says ok or fails with
// the problems on stderr; it never panics or fails otherwise.
func FuzzConfigCheck(f *testing.F) {
	dir := f.TempDir()
	var out, errb bytes.Buffer
	if err := run(f.Context(), []string{"keys", "generate", "--out", dir}, &out, &errb); err != nil {
		f.Fatalf("keys generate: %v\n%s", err, errb.String())
	}
	f.Add(validConfig("@dir@"))
	f.Add("listen: 127.0.0.1:0\npublic_url: https://bridge.example.com\ntoken: {issuer: i, service: s, signing_key_file: '@dir@/signing.key', kid: libtrust}\n" +
		"store: {redis: {url: 'redis://127.0.0.1:1/0'}}\noidc: {issuer: 'https://idp.example.com', client_id: c, client_secret: '${env:NOPE}'}\n" +
		"access: [{groups: ['team-*'], repositories: ['${group}/**'], actions: [pull], catalog: true}]\n")
	f.Add("listen: nope\npublic_url: ftp://x/y\ntokn: {}\naccess: [{repositories: ['a/***'], actions: [fly]}]\nlog: {level: loud, flush_interval: 1h}\n")
	f.Add("passwords: {default_lifetime: 9000h, max_lifetime: -1s}\nserver: {shutdown_timeout: -1s}\ntls: {cert_file: '@dir@/signing.crt'}\n")
	f.Add("&a [*a, *a]\n")
	f.Fuzz(func(t *testing.T, body string) {
		if specialPath.MatchString(body) {
			t.Skip("names a special file")
		}
		// One file per worker process, rewritten for every input (a worker
		// runs one input at a time): cheaper than a directory each.
		path := filepath.Join(dir, "bridge.yaml")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(body, "@dir@", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"config", "check", "--config", path}, &stdout, &stderr)
		switch {
		case err == nil:
			if !strings.HasSuffix(stdout.String(), ": ok\n") {
				t.Fatalf("passed without saying ok: %q", stdout.String())
			}
		case errors.Is(err, errSilent):
			if !strings.Contains(stderr.String(), "invalid configuration") || stdout.Len() != 0 {
				t.Fatalf("failed without the problems on stderr: stdout %q stderr %q", stdout.String(), stderr.String())
			}
		default:
			t.Fatalf("config check: %v (want ok or a reported failure)", err)
		}
	})
}
