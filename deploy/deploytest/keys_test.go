package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// TestKeysForTheImageUser runs each `bridge keys generate` command the
// Dockerfile documents for host-generated keys and checks that the runtime
// image's USER can read every file it writes, as the documented `docker
// run -v $PWD/keys:/keys:ro` needs. It also checks that the plain command
// would not do (the test can fail), and that the Kubernetes Secret volume
// gives the image's user read access.
func TestKeysForTheImageUser(t *testing.T) {
	dockerfile := readFile(t, "Dockerfile")
	_, stages := parseDockerfile(t, dockerfile)
	user, _ := stage(t, stages, "runtime").last("USER")
	uid, gid := parseUser(t, user)

	// The documented commands: comment lines running `bridge keys generate`.
	var documented [][]string
	mountSource := ""
	for line := range strings.SplitSeq(string(dockerfile), "\n") {
		text, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		if !ok {
			continue
		}
		text, _, _ = strings.Cut(strings.TrimSpace(text), " #")
		if _, cmd, ok := strings.Cut(text, "bridge keys generate "); ok {
			documented = append(documented, strings.Fields(cmd))
		}
		if m := regexp.MustCompile(`-v \$PWD/(\S+):/keys`).FindStringSubmatch(text); m != nil {
			mountSource = m[1]
		}
	}
	if len(documented) == 0 || mountSource == "" {
		t.Fatalf("the Dockerfile documents no `bridge keys generate` (%d) or no `-v $PWD/…:/keys` mount (%q)", len(documented), mountSource)
	}
	if os.Geteuid() != 0 {
		t.Skip("the documented commands run as root (they hand files to uid 65532)")
	}
	bin := testenv.BuildBridge(t)

	generate := func(t *testing.T, args []string) string {
		t.Helper()
		dir := t.TempDir()
		args = append([]string(nil), args...)
		for i := range args {
			if args[i] == "--out" && i+1 < len(args) {
				if args[i+1] != mountSource {
					t.Errorf("documented --out %s, but docker run mounts $PWD/%s", args[i+1], mountSource)
				}
				args[i+1] = filepath.Join(dir, mountSource)
			}
		}
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"keys", "generate"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bridge keys generate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return filepath.Join(dir, mountSource)
	}
	files := []string{"signing.key", "signing.crt", "encryption.key"}

	for _, args := range documented {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			keys := generate(t, args)
			if !canAccess(t, keys, uid, gid, 0o5) {
				t.Errorf("uid %d gid %d cannot enter %s", uid, gid, keys)
			}
			for _, f := range files {
				p := filepath.Join(keys, f)
				if !canAccess(t, p, uid, gid, 0o4) {
					t.Errorf("%s: the image's user %s cannot read it", f, user)
				}
				if info, _ := os.Stat(p); f != "signing.crt" && info.Mode().Perm()&0o007 != 0 {
					t.Errorf("%s: mode %04o lets every user at it", f, info.Mode().Perm())
				}
			}
		})
	}
	t.Run("the plain command is not enough", func(t *testing.T) {
		keys := generate(t, []string{"--out", mountSource})
		if canAccess(t, filepath.Join(keys, "signing.key"), uid, gid, 0o4) {
			t.Error("a plain `keys generate` as root wrote a signing key uid 65532 can read; this test checks nothing")
		}
	})

	t.Run("kubernetes secret volume", func(t *testing.T) {
		var d struct {
			Spec struct {
				Template struct {
					Spec struct {
						SecurityContext struct {
							FSGroup int `yaml:"fsGroup"`
						} `yaml:"securityContext"`
						Volumes []struct {
							Name   string `yaml:"name"`
							Secret *struct {
								DefaultMode *int `yaml:"defaultMode"`
							} `yaml:"secret"`
						} `yaml:"volumes"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(readFile(t, "deploy/kubernetes/base/deployment.yaml"), &d); err != nil {
			t.Fatal(err)
		}
		pod := d.Spec.Template.Spec
		for _, v := range pod.Volumes {
			if v.Secret == nil {
				continue
			}
			mode := 0o644 // Kubernetes' default
			if v.Secret.DefaultMode != nil {
				mode = *v.Secret.DefaultMode
			}
			// Secret files are owned by root and the pod's fsGroup.
			groupReads := pod.SecurityContext.FSGroup == gid && mode&0o040 != 0
			if !groupReads && mode&0o004 == 0 {
				t.Errorf("secret volume %s: defaultMode %04o with fsGroup %d: the image's user %s cannot read it", v.Name, mode, pod.SecurityContext.FSGroup, user)
			}
			if mode&0o004 != 0 {
				t.Errorf("secret volume %s: defaultMode %04o lets every user in the container read the keys", v.Name, mode)
			}
		}
	})
}

// parseUser reads a numeric USER uid:gid.
func parseUser(t *testing.T, user string) (int, int) {
	t.Helper()
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("runtime USER %q: want numeric uid:gid", user)
	}
	return uid, gid
}

// canAccess reports whether uid/gid (with no other groups) gets every bit
// of want (0o4 read, 0o1 search) on path by its owner, group and mode.
func canAccess(t *testing.T, path string, uid, gid int, want os.FileMode) bool {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	perm := info.Mode().Perm()
	switch {
	case int(st.Uid) == uid:
		return (perm>>6)&want == want
	case int(st.Gid) == gid:
		return (perm>>3)&want == want
	default:
		return perm&want == want
	}
}
