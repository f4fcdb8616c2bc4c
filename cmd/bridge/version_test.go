package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildFrom(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
	}}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}}
	for _, tc := range []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		want            string
	}{
		{"ldflags win over vcs", "v0.1.0-2-gabc-dirty", "abc123", vcs, "bridge v0.1.0-2-gabc-dirty commit abc123 go1.26.8 "},
		{"plain build in a checkout", "dev", "", vcs, "bridge dev commit 0123abcd (modified) go1.26.8 "},
		{"go install at a version", "dev", "", installed, "bridge v0.1.0 commit unknown go1.26.8 "},
		{"ldflags version, vcs commit", "v0.1.0", "", vcs, "bridge v0.1.0 commit 0123abcd (modified) go1.26.8 "},
		{"no build information", "dev", "", nil, "bridge dev commit unknown go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildFrom(tc.version, tc.commit, tc.bi).String(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want prefix %q", got, tc.want)
			}
		})
	}
}

// TestVersionBinary builds the command twice from a scratch git repository
// holding this module: with the -ldflags make build passes, and with none,
// where the toolchain's VCS stamp must show. (Go records no VCS stamp in a
// git worktree, whose .git is a file, hence the scratch repository.)
func TestVersionBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bridge twice")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed: apt-get install -y git")
	}
	root := moduleRoot(t)
	repo := t.TempDir()
	files, err := exec.CommandContext(t.Context(), git, "-C", root, "ls-files", "-co", "--exclude-standard", "--", "go.mod", "go.sum", "*.go", "web").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for f := range strings.FieldsSeq(string(files)) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		} else if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(repo, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runIn := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	gitEnv := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost", "GIT_CONFIG_GLOBAL=/dev/null"}
	runIn(repo, gitEnv, git, "init", "-q")
	runIn(repo, gitEnv, git, "add", ".")
	runIn(repo, gitEnv, git, "commit", "-q", "-m", "scratch")
	rev := runIn(repo, gitEnv, git, "rev-parse", "HEAD")

	// GOFLAGS may say -buildvcs=false (this machine's go env does); the
	// flags below decide.
	goEnv := append(gitEnv, "GOFLAGS=", "CGO_ENABLED=0")
	bin := filepath.Join(t.TempDir(), "bridge")

	runIn(repo, goEnv, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-X main.version=v9.8.7-1-gdeadbee -X main.commit=deadbeefcafe", "-o", bin, "./cmd/bridge")
	if got, want := runIn(repo, nil, bin, "version"), "bridge v9.8.7-1-gdeadbee commit deadbeefcafe go"; !strings.HasPrefix(got, want) {
		t.Errorf("with ldflags: %q, want prefix %q", got, want)
	}

	runIn(repo, goEnv, "go", "build", "-trimpath", "-buildvcs=true", "-o", bin, "./cmd/bridge")
	got := runIn(repo, nil, bin, "version")
	if !strings.Contains(got, " commit "+rev+" ") || strings.Contains(got, "(modified)") {
		t.Errorf("without ldflags: %q, want commit %s, unmodified", got, rev)
	}
}

// moduleRoot is the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
