package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OCI media types and the annotation that names a tag in an image layout
// (opencontainers/image-spec, image-layout.md and annotations.md).
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	annotationRefName = "org.opencontainers.image.ref.name"
)

// OCIImage is an image in an OCI image layout directory.
type OCIImage struct {
	// Dir is the layout directory.
	Dir string
	// Tag is the index's org.opencontainers.image.ref.name for the image.
	Tag string
	// ManifestDigest is the manifest's digest, "sha256:…".
	ManifestDigest string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// OCILayout writes a tiny valid OCI image layout into dir (created if
// missing): one gzip'd tar layer holding hello.txt, a config blob, a
// manifest, an index.json naming the manifest "v1", and oci-layout. It
// needs no network, and its content is the same on every call, so its
// ManifestDigest is stable.
func OCILayout(t testing.TB, dir string) OCIImage {
	t.Helper()
	img, err := WriteOCILayout(dir, "hello from the registry-bridge test suite\n")
	if err != nil {
		t.Fatalf("testenv: OCI layout: %v", err)
	}
	return img
}

// WriteOCILayout is OCILayout for programs (scripts/demo.sh runs it through
// internal/testenv/cmd/ocilayout): hello.txt holds text.
func WriteOCILayout(dir, text string) (OCIImage, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return OCIImage{}, err
	}
	writeBlob := func(mediaType string, b []byte) (descriptor, error) {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(blobs, h), b, 0o644); err != nil {
			return descriptor{}, err
		}
		return descriptor{MediaType: mediaType, Digest: "sha256:" + h, Size: len(b)}, nil
	}

	layerTar, err := tarFile("hello.txt", []byte(text))
	if err != nil {
		return OCIImage{}, err
	}
	diffID := sha256.Sum256(layerTar)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // the zero header (no name, no mtime) keeps the blob stable
	if _, err := zw.Write(layerTar); err != nil {
		return OCIImage{}, err
	}
	if err := zw.Close(); err != nil {
		return OCIImage{}, err
	}
	layer, err := writeBlob(mediaTypeLayer, gz.Bytes())
	if err != nil {
		return OCIImage{}, err
	}

	type rootfs struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	}
	config, err := json.Marshal(struct {
		Architecture string   `json:"architecture"`
		OS           string   `json:"os"`
		Config       struct{} `json:"config"`
		RootFS       rootfs   `json:"rootfs"`
	}{
		Architecture: "amd64",
		OS:           "linux",
		RootFS:       rootfs{Type: "layers", DiffIDs: []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	})
	if err != nil {
		return OCIImage{}, err
	}
	configDesc, err := writeBlob(mediaTypeConfig, config)
	if err != nil {
		return OCIImage{}, err
	}

	manifest, err := json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{2, mediaTypeManifest, configDesc, []descriptor{layer}})
	if err != nil {
		return OCIImage{}, err
	}
	manifestDesc, err := writeBlob(mediaTypeManifest, manifest)
	if err != nil {
		return OCIImage{}, err
	}
	const tag = "v1"
	manifestDesc.Annotations = map[string]string{annotationRefName: tag}

	index, err := json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, mediaTypeIndex, []descriptor{manifestDesc}})
	if err != nil {
		return OCIImage{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return OCIImage{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return OCIImage{}, err
	}
	return OCIImage{Dir: dir, Tag: tag, ManifestDigest: manifestDesc.Digest}, nil
}

// tarFile returns a tar archive holding one regular file.
func tarFile(name string, content []byte) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// LayoutManifests returns the digests of the manifests that the
// index.json of the OCI image layout in dir lists, in order.
func LayoutManifests(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("testenv: read OCI layout: %w", err)
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("testenv: read OCI layout %s: %w", dir, err)
	}
	digests := make([]string, 0, len(index.Manifests))
	for _, d := range index.Manifests {
		digests = append(digests, d.Digest)
	}
	return digests, nil
}

// VerifyLayout checks the OCI image layout in dir and returns the digests
// of the manifests its index.json lists, in order. It checks that the
// oci-layout file exists, that every file in blobs/sha256 has the digest it
// is named by, and that every blob the index and the manifests reference
// (manifests, configs, layers) exists with the size the reference gives.
// A nested index that index.json lists is checked to exist, not followed.
// The error lists every problem found.
func VerifyLayout(dir string) ([]string, error) {
	var errs []error
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		errs = append(errs, err)
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	blobs, err := os.ReadDir(blobDir)
	if err != nil {
		return nil, fmt.Errorf("testenv: OCI layout %s: %w", dir, err)
	}
	for _, b := range blobs {
		content, err := os.ReadFile(filepath.Join(blobDir, b.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != b.Name() {
			errs = append(errs, fmt.Errorf("blob %s has digest %x", b.Name(), sum))
		}
	}
	// checkRef reports whether the blob a descriptor references exists with
	// its size, and returns its content.
	checkRef := func(what string, d descriptor) ([]byte, bool) {
		hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
		if !ok || hexDigest == "" || strings.ContainsAny(hexDigest, `/\.`) {
			errs = append(errs, fmt.Errorf("%s has digest %q, want sha256:…", what, d.Digest))
			return nil, false
		}
		content, err := os.ReadFile(filepath.Join(blobDir, hexDigest))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", what, d.Digest, err))
			return nil, false
		}
		if len(content) != d.Size {
			errs = append(errs, fmt.Errorf("%s %s is %d bytes, the reference says %d", what, d.Digest, len(content), d.Size))
		}
		return content, true
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("testenv: OCI layout %s: %w", dir, err)
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("testenv: OCI layout %s: index.json: %w", dir, err)
	}
	digests := make([]string, 0, len(index.Manifests))
	for _, m := range index.Manifests {
		digests = append(digests, m.Digest)
		content, ok := checkRef("manifest", m)
		if !ok || m.MediaType == mediaTypeIndex {
			continue // a nested index is only checked to exist
		}
		var manifest struct {
			Config descriptor   `json:"config"`
			Layers []descriptor `json:"layers"`
		}
		if err := json.Unmarshal(content, &manifest); err != nil {
			errs = append(errs, fmt.Errorf("manifest %s: %w", m.Digest, err))
			continue
		}
		checkRef("config of manifest "+m.Digest, manifest.Config)
		for _, l := range manifest.Layers {
			checkRef("layer of manifest "+m.Digest, l)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return digests, fmt.Errorf("testenv: OCI layout %s: %w", dir, err)
	}
	return digests, nil
}
