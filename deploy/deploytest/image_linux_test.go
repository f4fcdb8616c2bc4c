//go:build linux

package deploytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// TestImage checks an image built by `make image`: its configuration
// matches the Dockerfile's runtime stage, its binary runs as the nonroot
// user and serves /healthz, and the keygen image writes keys once and
// keeps them. It needs buildah and root, and runs when BRIDGE_IMAGE names
// the image (make image sets it, with BRIDGE_KEYGEN_IMAGE and
// BRIDGE_CONTAINERS, the buildah storage directory).
func TestImage(t *testing.T) {
	image := os.Getenv("BRIDGE_IMAGE")
	if image == "" {
		t.Skip("BRIDGE_IMAGE is not set; `make image` builds the image and runs this test")
	}
	store := os.Getenv("BRIDGE_CONTAINERS")
	if store == "" {
		t.Fatal("BRIDGE_CONTAINERS (the buildah storage directory of make image) is not set")
	}
	buildah := testenv.Require(t, "buildah", "apt-get install -y buildah")
	// buildah's per-run scratch directories (TMPDIR, else /var/tmp) go
	// with the test, also for the run that is killed at the end.
	tmp := t.TempDir()
	ba := func(args ...string) []string {
		return append([]string{"--root", filepath.Join(store, "storage"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}, args...)
	}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), buildah, ba(args...)...)
		cmd.Env = append(os.Environ(), "BUILDAH_ISOLATION=chroot", "TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	container := func(t *testing.T, image string) string {
		c := run(t, "from", "--pull=never", image)
		t.Cleanup(func() { exec.Command(buildah, ba("rm", c)...).Run() })
		return c
	}
	_, stages := parseDockerfile(t, readFile(t, "Dockerfile"))

	t.Run("config", func(t *testing.T) {
		var info struct {
			OCIv1 struct {
				Config struct {
					User         string              `json:"User"`
					Entrypoint   []string            `json:"Entrypoint"`
					Cmd          []string            `json:"Cmd"`
					Env          []string            `json:"Env"`
					ExposedPorts map[string]struct{} `json:"ExposedPorts"`
					Labels       map[string]string   `json:"Labels"`
				} `json:"config"`
			} `json:"OCIv1"`
		}
		if err := json.Unmarshal([]byte(run(t, "inspect", "--type", "image", image)), &info); err != nil {
			t.Fatal(err)
		}
		cfg := info.OCIv1.Config
		r := stage(t, stages, "runtime")
		user, _ := r.last("USER")
		ep, _ := r.last("ENTRYPOINT")
		cmd, _ := r.last("CMD")
		expose, _ := r.last("EXPOSE")
		if cfg.User != user || mustJSON(t, cfg.Entrypoint) != ep || mustJSON(t, cfg.Cmd) != cmd {
			t.Errorf("image user %q entrypoint %v cmd %v; the Dockerfile says %s %s %s", cfg.User, cfg.Entrypoint, cfg.Cmd, user, ep, cmd)
		}
		if _, ok := cfg.ExposedPorts[expose+"/tcp"]; !ok {
			t.Errorf("image exposes %v, want %s/tcp", cfg.ExposedPorts, expose)
		}
		for _, l := range requiredLabels {
			if cfg.Labels[l] == "" {
				t.Errorf("image label %s is empty", l)
			}
		}
		if !slices.Contains(cfg.Env, "BRIDGE_CONFIG=/etc/bridge/bridge.yaml") {
			t.Errorf("image env %v lacks BRIDGE_CONFIG", cfg.Env)
		}
		// The binary reports the version the image is labelled with.
		out := run(t, "run", container(t, image), "--", "/bridge", "version")
		if want := cfg.Labels["org.opencontainers.image.version"]; !strings.HasPrefix(out, "bridge "+want+" ") {
			t.Errorf("bridge version in the image says %q, label says %q", out, want)
		}
	})

	t.Run("serves healthz as nonroot", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to hand the keys to uid 65532")
		}
		dir := t.TempDir()
		keys := filepath.Join(dir, "keys")
		// Generate keys with the image's own binary, as the nonroot user.
		if err := os.MkdirAll(keys, 0o755); err != nil {
			t.Fatal(err)
		}
		chown(t, keys)
		c := container(t, image)
		run(t, "run", "-v", keys+":/keys", c, "--", "/bridge", "keys", "generate", "--out", "/keys")
		port := testenv.FreePort(t)
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		cfgDir := filepath.Join(dir, "etc")
		writeFile(t, filepath.Join(cfgDir, "bridge.yaml"), fmt.Appendf(nil, `listen: 127.0.0.1:%d
public_url: %s
token:
  issuer: registry-bridge
  service: registry.test
  signing_key_file: /keys/signing.key
  certificate_file: /keys/signing.crt
access: []
`, port, url))
		chown(t, cfgDir)
		// The image's ENTRYPOINT and CMD: /bridge serve, with the config
		// found through the image's BRIDGE_CONFIG.
		testenv.Start(t, testenv.Cmd{
			Name:     "bridge in the image",
			Path:     buildah,
			Args:     ba("run", "-v", cfgDir+":/etc/bridge:ro", "-v", keys+":/keys:ro", container(t, image), "--", "/bridge", "serve"),
			Env:      []string{"BUILDAH_ISOLATION=chroot", "TMPDIR=" + tmp},
			ReadyURL: url + "/healthz",
		})
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /readyz: %s", resp.Status)
		}
		info, err := os.Stat(filepath.Join(keys, "signing.key"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fileUID(info); uid != 65532 {
			t.Errorf("keys written by the image are owned by uid %d, want 65532 (the image's user)", uid)
		}
	})

	t.Run("keygen is idempotent", func(t *testing.T) {
		keygen := os.Getenv("BRIDGE_KEYGEN_IMAGE")
		if keygen == "" {
			t.Skip("BRIDGE_KEYGEN_IMAGE is not set")
		}
		if os.Geteuid() != 0 {
			t.Skip("needs root to hand the directory to uid 65532")
		}
		keys := filepath.Join(t.TempDir(), "keys")
		if err := os.MkdirAll(keys, 0o755); err != nil {
			t.Fatal(err)
		}
		chown(t, keys)
		var info struct {
			OCIv1 struct {
				Config struct {
					Entrypoint []string `json:"Entrypoint"`
				} `json:"config"`
			} `json:"OCIv1"`
		}
		if err := json.Unmarshal([]byte(run(t, "inspect", "--type", "image", keygen)), &info); err != nil {
			t.Fatal(err)
		}
		entrypoint := info.OCIv1.Config.Entrypoint
		out := keygenOutDir(t, stage(t, stages, "keygen"))
		once := func() []byte {
			c := container(t, keygen)
			run(t, append([]string{"run", "-v", keys + ":" + out, c, "--"}, entrypoint...)...)
			data, err := os.ReadFile(filepath.Join(keys, "signing.key"))
			if err != nil {
				t.Fatalf("keygen wrote no signing.key: %v", err)
			}
			return data
		}
		first := once()
		if second := once(); string(first) != string(second) {
			t.Error("the second keygen run replaced the signing key; compose restarts would invalidate the registry's certificate")
		}
		for _, f := range []string{"signing.crt", "encryption.key"} {
			if _, err := os.Stat(filepath.Join(keys, f)); err != nil {
				t.Errorf("keygen: %v", err)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fileUID returns the owner of a file.
func fileUID(info os.FileInfo) int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// chown gives dir and everything in it to the image's user.
func chown(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, 65532, 65532)
	})
	if err != nil {
		t.Fatal(err)
	}
}
