package credhelper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileName is the credential file in Options.Dir.
const FileName = "credentials.json"

// Entry is what the helper keeps for one registry.
type Entry struct {
	// Bridge is the bridge's base URL (the realm without /token).
	Bridge string `json:"bridge,omitempty"`
	// RevocationEndpoint revokes Password or RefreshToken (RFC 7009).
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	Username           string `json:"username"`
	// Password is the app password; RefreshToken its refresh token, the
	// identity token Docker and containerd trade at the token endpoint.
	Password     string `json:"password"`
	RefreshToken string `json:"refresh_token,omitempty"`
	PasswordID   string `json:"password_id,omitempty"`
	// ExpiresAt is when the bridge stops accepting the password; zero
	// when unknown (stored by a client's `store`).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// file is the credential file: registry host[:port] → entry.
type file struct {
	Registries map[string]Entry `json:"registries"`
}

// load reads the file; a missing one is empty.
func load(path string) (file, error) {
	f := file{Registries: map[string]Entry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("read %s: %w", path, err)
	}
	if f.Registries == nil {
		f.Registries = map[string]Entry{}
	}
	return f, nil
}

// save writes the file atomically, readable by its owner only.
func save(path string, f file) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
