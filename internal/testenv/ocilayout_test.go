package testenv_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

func TestOCILayout(t *testing.T) {
	dir := t.TempDir()
	img := testenv.OCILayout(t, dir)
	if img.Dir != dir || img.Tag != "v1" {
		t.Fatalf("OCILayout = %+v, want Dir %s and Tag v1", img, dir)
	}

	// Every blob is stored under its own digest, and every referenced blob
	// exists with its size.
	digests, err := testenv.VerifyLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 || digests[0] != img.ManifestDigest {
		t.Errorf("VerifyLayout = %v, want [%s]", digests, img.ManifestDigest)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 3 {
		t.Errorf("%d blobs, want 3 (layer, config, manifest)", len(blobs))
	}

	var index struct {
		SchemaVersion int `json:"schemaVersion"`
		Manifests     []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Size        int64             `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index = %+v, want schemaVersion 2 and one manifest", index)
	}
	m := index.Manifests[0]
	if m.Digest != img.ManifestDigest || m.Annotations["org.opencontainers.image.ref.name"] != "v1" {
		t.Errorf("index manifest = %+v, want digest %s named v1", m, img.ManifestDigest)
	}

	var manifest struct {
		Config struct{ Digest string } `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	readJSON(t, blobPath(dir, img.ManifestDigest), &manifest)
	if len(manifest.Layers) != 1 || !strings.HasSuffix(manifest.Layers[0].MediaType, "tar+gzip") {
		t.Fatalf("manifest layers = %+v, want one gzip layer", manifest.Layers)
	}
	info, err := os.Stat(blobPath(dir, manifest.Layers[0].Digest))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != manifest.Layers[0].Size {
		t.Errorf("layer size %d, manifest says %d", info.Size(), manifest.Layers[0].Size)
	}
	if _, err := os.Stat(blobPath(dir, manifest.Config.Digest)); err != nil {
		t.Errorf("config blob: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Error(err)
	}

	got, err := testenv.LayoutManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != img.ManifestDigest {
		t.Errorf("LayoutManifests = %v, want [%s]", got, img.ManifestDigest)
	}

	// The content is deterministic, so pushes from different tests share blobs.
	if again := testenv.OCILayout(t, t.TempDir()); again.ManifestDigest != img.ManifestDigest {
		t.Errorf("second layout has digest %s, want %s", again.ManifestDigest, img.ManifestDigest)
	}
}

// TestVerifyLayoutFindsDamage checks that VerifyLayout reports a blob
// whose content does not match its name, a referenced blob that is
// missing, and a size that does not match the reference.
func TestVerifyLayoutFindsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, img testenv.OCIImage, layer string)
		want   string
	}{
		{"corrupt blob", func(t *testing.T, dir string, _ testenv.OCIImage, layer string) {
			writeFile(t, blobPath(dir, layer), "not the layer")
		}, "has digest"},
		{"missing layer", func(t *testing.T, dir string, _ testenv.OCIImage, layer string) {
			if err := os.Remove(blobPath(dir, layer)); err != nil {
				t.Fatal(err)
			}
		}, "layer of manifest"},
		{"missing manifest", func(t *testing.T, dir string, img testenv.OCIImage, _ string) {
			if err := os.Remove(blobPath(dir, img.ManifestDigest)); err != nil {
				t.Fatal(err)
			}
		}, "manifest sha256:"},
		{"wrong size", func(t *testing.T, dir string, img testenv.OCIImage, _ string) {
			b, err := os.ReadFile(filepath.Join(dir, "index.json"))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "index.json"), strings.Replace(string(b), `"size":`, `"size":1`, 1))
		}, "the reference says"},
		{"no oci-layout", func(t *testing.T, dir string, _ testenv.OCIImage, _ string) {
			if err := os.Remove(filepath.Join(dir, "oci-layout")); err != nil {
				t.Fatal(err)
			}
		}, "oci-layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := testenv.OCILayout(t, dir)
			var manifest struct {
				Layers []struct{ Digest string } `json:"layers"`
			}
			readJSON(t, blobPath(dir, img.ManifestDigest), &manifest)
			tt.damage(t, dir, img, manifest.Layers[0].Digest)
			_, err := testenv.VerifyLayout(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("VerifyLayout = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func blobPath(dir, digest string) string {
	return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
