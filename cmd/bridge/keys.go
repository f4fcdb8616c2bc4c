package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/registry-bridge/bridge/tokens"
)

func cmdKeysGenerate(args []string, stdout, stderr io.Writer) error {
	f := newFlags("keys generate")
	out := f.String("out", "", "directory to write signing.key and signing.crt into")
	alg := f.String("alg", "ES256", "ES256 or RS256")
	cn := f.String("cn", "registry-bridge token signer", "certificate common name")
	force := f.Bool("force", false, "overwrite existing files")
	if _, err := parseFlags(f, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: keys generate needs --out DIR", errUsage)
	}
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
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	// The encryption key protects stored refresh tokens; replacing it
	// would force every user to log in again, so it is never overwritten.
	encPath := filepath.Join(*out, "encryption.key")
	if _, err := os.Stat(encPath); errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		if err := writeFileAtomic(encPath, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s (oidc.encryption_key_file: encrypts refresh tokens at rest; keep it secret, keep it stable)\n", encPath)
	}
	fmt.Fprintf(stdout, "%s\n%s\n", keyPath, certPath)
	fmt.Fprintf(stderr, "wrote %s key %s (keep it secret) and certificate %s (the registry's auth.token.rootcertbundle)\n", *alg, keyPath, certPath)
	return nil
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
// reader never sees half a key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
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
