package testenv_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// TestHarness pushes the OCI layout with every client to both registries
// without authentication and pulls it back: it proves the harness (process
// runner, registry configs, layout, client flags) before any bridge is
// involved.
func TestHarness(t *testing.T) {
	testenv.SkipUnlessE2E(t)
	img := testenv.OCILayout(t, t.TempDir())
	registries := []struct {
		name  string
		start func(testing.TB, testenv.TokenAuth) string
	}{
		{"v3", testenv.RegistryV3},
		{"2.8", testenv.Registry28},
	}
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t, testenv.TokenAuth{})
			for _, c := range testenv.Clients(t) {
				t.Run(c.Name, func(t *testing.T) {
					ref := host + "/harness/" + c.Name + ":v1"
					if out, err := c.Push(t.Context(), img, ref); err != nil {
						t.Fatalf("push %s: %v\n%s", ref, err, out)
					}
					dir := filepath.Join(t.TempDir(), "pulled")
					if out, err := c.Pull(t.Context(), ref, dir); err != nil {
						t.Fatalf("pull %s: %v\n%s", ref, err, out)
					}
					got, err := testenv.LayoutManifests(dir)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Contains(got, img.ManifestDigest) {
						t.Errorf("pulled layout lists manifests %v, want %s", got, img.ManifestDigest)
					}
				})
			}
		})
	}
}
