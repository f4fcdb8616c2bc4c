package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fileOwner returns a file's mode bits, uid and gid.
func fileOwner(t *testing.T, path string) (os.FileMode, int, int) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	return info.Mode().Perm(), int(st.Uid), int(st.Gid)
}

func TestKeysGenerateOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to uid 65532 needs root")
	}
	for _, tt := range []struct {
		name     string
		args     []string
		uid, gid int
		secret   os.FileMode
	}{
		{"default", nil, 0, 0, 0o600},
		{"owner", []string{"--owner", "65532:65532"}, 65532, 65532, 0o600},
		{"owner without group", []string{"--owner", "65532"}, 65532, 0, 0o600},
		{"group and mode", []string{"--group", "65532", "--mode", "0640"}, 0, 65532, 0o640},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if _, stderr, err := runCLI(t, append([]string{"keys", "generate", "--out", dir}, tt.args...)...); err != nil {
				t.Fatalf("keys generate: %v\n%s", err, stderr)
			}
			for name, want := range map[string]os.FileMode{
				"signing.key": tt.secret, "encryption.key": tt.secret, "signing.crt": tt.secret | 0o444,
			} {
				mode, uid, gid := fileOwner(t, filepath.Join(dir, name))
				if mode != want || uid != tt.uid || gid != tt.gid {
					t.Errorf("%s: %04o %d:%d, want %04o %d:%d", name, mode, uid, gid, want, tt.uid, tt.gid)
				}
			}
			if _, uid, gid := fileOwner(t, dir); uid != tt.uid || gid != tt.gid {
				t.Errorf("the directory made for the keys is owned by %d:%d, want %d:%d", uid, gid, tt.uid, tt.gid)
			}
		})
	}
}

// TestKeysGenerateKeepsEncryptionKey: --force regenerates the signing key,
// keeps the encryption key, and still applies an explicit owner to it.
func TestKeysGenerateKeepsEncryptionKey(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to uid 65532 needs root")
	}
	dir := t.TempDir()
	writeKeys(t, dir)
	before, err := os.ReadFile(filepath.Join(dir, "encryption.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI(t, "keys", "generate", "--out", dir, "--force", "--owner", "65532:65532"); err != nil {
		t.Fatalf("keys generate --force: %v\n%s", err, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "encryption.key"))
	if string(before) != string(after) {
		t.Fatal("encryption.key was replaced")
	}
	if mode, uid, gid := fileOwner(t, filepath.Join(dir, "encryption.key")); mode != 0o600 || uid != 65532 || gid != 65532 {
		t.Errorf("kept encryption.key: %04o %d:%d, want 0600 65532:65532", mode, uid, gid)
	}
}

func TestKeysGenerateRefusesBadOwnerOrMode(t *testing.T) {
	for _, args := range [][]string{
		{"--owner", "nonroot"},
		{"--owner", "1:2", "--group", "3"},
		{"--mode", "0644"},
		{"--mode", "0200"},
		{"--mode", "rw"},
	} {
		dir := filepath.Join(t.TempDir(), "keys")
		_, _, err := runCLI(t, append([]string{"keys", "generate", "--out", dir}, args...)...)
		if !errors.Is(err, errUsage) {
			t.Errorf("%s: err %v, want a usage error", strings.Join(args, " "), err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s: wrote %s anyway", strings.Join(args, " "), dir)
		}
	}
}
