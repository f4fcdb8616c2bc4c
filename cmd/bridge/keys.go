package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/tokens"
)

func cmdKeysGenerate(args []string, stdout, stderr io.Writer) error {
	f := newFlags("keys generate")
	out := f.String("out", "", "directory to write signing.key and signing.crt into")
	alg := f.String("alg", "ES256", "ES256 or RS256")
	cn := f.String("cn", "registry-bridge token signer", "certificate common name")
	force := f.Bool("force", false, "overwrite existing files")
	owner := f.String("owner", "", "UID[:GID] to own the files (numeric; the image runs as 65532:65532)")
	group := f.String("group", "", "GID to own the files (numeric), keeping the owner")
	modeFlag := f.String("mode", "0600", "permissions of signing.key and encryption.key (octal); signing.crt gets them plus read for all")
	if _, err := parseFlags(f, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: keys generate needs --out DIR", errUsage)
	}
	own, err := parseOwnership(*owner, *group)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	mode, err := parseKeyMode(*modeFlag)
	if err != nil {
		return fmt.Errorf("%w: --mode: %v", errUsage, err)
	}
	explicit := false
	f.Visit(func(fl *flag.Flag) {
		explicit = explicit || fl.Name == "owner" || fl.Name == "group" || fl.Name == "mode"
	})

	keyPath, certPath := filepath.Join(*out, "signing.key"), filepath.Join(*out, "signing.crt")
	if !*force {
		for _, p := range []string{keyPath, certPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists; pass --force to overwrite (and keep the old public key in token.previous_keys while tokens signed by it live)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	keyPEM, certPEM, err := tokens.GenerateKey(*alg, *cn, time.Now())
	if err != nil {
		return err
	}
	_, statErr := os.Stat(*out)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A directory made here belongs to the files' owner too.
		if err := own.apply(*out, nil); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(keyPath, keyPEM, mode, own); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM, mode|0o444, own); err != nil {
		return err
	}
	// The encryption key protects stored refresh tokens; replacing it
	// would force every user to log in again, so it is never overwritten;
	// an explicit --owner, --group or --mode still applies to it.
	encPath := filepath.Join(*out, "encryption.key")
	switch _, err := os.Stat(encPath); {
	case errors.Is(err, fs.ErrNotExist):
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		if err := writeFileAtomic(encPath, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), mode, own); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s (oidc.encryption_key_file: encrypts refresh tokens at rest; keep it secret, keep it stable)\n", encPath)
	case err != nil:
		return err
	case explicit:
		if err := own.apply(encPath, &mode); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "kept %s; set its owner and mode as asked\n", encPath)
	}
	fmt.Fprintf(stdout, "%s\n%s\n", keyPath, certPath)
	fmt.Fprintf(stderr, "wrote %s key %s (keep it secret) and certificate %s (the registry's auth.token.rootcertbundle)\n", *alg, keyPath, certPath)
	return nil
}

// ownership is who is to own the written files; -1 keeps a value as the
// process writes it.
type ownership struct{ uid, gid int }

// parseOwnership reads --owner UID[:GID] and --group GID.
func parseOwnership(owner, group string) (ownership, error) {
	o := ownership{-1, -1}
	id := func(flag, s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: want a numeric id, got %q", flag, s)
		}
		return n, nil
	}
	var err error
	if owner != "" {
		u, g, hasGroup := strings.Cut(owner, ":")
		if o.uid, err = id("--owner", u); err != nil {
			return o, err
		}
		if hasGroup {
			if o.gid, err = id("--owner", g); err != nil {
				return o, err
			}
		}
	}
	if group != "" {
		g, err := id("--group", group)
		if err != nil {
			return o, err
		}
		if o.gid != -1 && o.gid != g {
			return o, fmt.Errorf("--owner %s and --group %s name different groups", owner, group)
		}
		o.gid = g
	}
	return o, nil
}

// apply sets path's owner (if any was asked for) and, when mode is not
// nil, its mode.
func (o ownership) apply(path string, mode *os.FileMode) error {
	if mode != nil {
		if err := os.Chmod(path, *mode); err != nil {
			return err
		}
	}
	if o.uid == -1 && o.gid == -1 {
		return nil
	}
	if err := os.Chown(path, o.uid, o.gid); err != nil {
		return fmt.Errorf("%w (giving files to another user needs root; --group needs membership of the group)", err)
	}
	return nil
}

// parseKeyMode reads --mode: octal permission bits, readable by the owner
// and by nobody beyond the group (the files hold private keys).
func parseKeyMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("want octal permission bits such as 0600 or 0640, got %q", s)
	}
	m := os.FileMode(n)
	if m&0o400 == 0 {
		return 0, fmt.Errorf("%04o: the owner must be able to read the keys", m)
	}
	if m&0o007 != 0 {
		return 0, fmt.Errorf("%04o: the keys must not be readable or writable by every user; grant a group instead (--group GID --mode 0640)", m)
	}
	return m, nil
}

func cmdKeysJWKS(args []string, stdout io.Writer) error {
	f := newFlags("keys jwks")
	path := configFlag(f)
	if _, err := parseFlags(f, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, useToken)
	if err != nil {
		return fmt.Errorf("%s: invalid configuration:\n%w", *path, err)
	}
	issuer, err := newIssuer(cfg, nil)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(issuer.JWKS())
}

// writeFileAtomic writes through a temporary file and a rename, so a
// reader never sees half a key; the file has perm and own before it
// appears under path.
func writeFileAtomic(path string, data []byte, perm os.FileMode, own ownership) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if own.uid != -1 || own.gid != -1 {
		if err := tmp.Chown(own.uid, own.gid); err != nil {
			tmp.Close()
			return fmt.Errorf("%s: %w (giving files to another user needs root; --group needs membership of the group)", path, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
