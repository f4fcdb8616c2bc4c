package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BridgeBinEnv names a bridge binary for BuildBridge to return instead of
// building cmd/bridge, e.g. a release build.
const BridgeBinEnv = "BRIDGE_E2E_BIN"

// buildTimeout bounds the one build of cmd/bridge.
const buildTimeout = 5 * time.Minute

// bridgeBuild is the test binary's one build of cmd/bridge.
var bridgeBuild struct {
	once sync.Once
	dir  string // the temporary directory that holds the binary
	path string
	err  error
}

// BuildBridge returns the path of the bridge binary: $BRIDGE_E2E_BIN if
// set, else ./cmd/bridge of the repository (RepoRoot) built with "go build"
// on first use, once per test binary, into a directory made with
// os.MkdirTemp. It fails the test if the binary does not build.
//
// The directory outlives the test that built it; a package that calls
// BuildBridge removes it by running its tests through Main, or by calling
// Cleanup after m.Run in its own TestMain.
func BuildBridge(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(BridgeBinEnv); bin != "" {
		return bin
	}
	root := RepoRoot(t)
	bridgeBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "bridge-build-")
		if err != nil {
			bridgeBuild.err = fmt.Errorf("testenv: build cmd/bridge: %w", err)
			return
		}
		bridgeBuild.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		out := filepath.Join(dir, "bridge")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/bridge")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			bridgeBuild.err = fmt.Errorf("testenv: go build ./cmd/bridge: %w\n%s", err, b)
			return
		}
		bridgeBuild.path = out
	})
	if bridgeBuild.err != nil {
		t.Fatal(bridgeBuild.err)
	}
	return bridgeBuild.path
}

// Cleanup removes what BuildBridge built. A TestMain calls it after m.Run;
// BuildBridge must not be called afterwards.
func Cleanup() {
	bridgeBuild.once.Do(func() {}) // waits for a build in progress; none starts later
	if bridgeBuild.dir != "" {
		os.RemoveAll(bridgeBuild.dir)
	}
}

// Main is a TestMain for packages that use BuildBridge: it runs the tests,
// calls Cleanup and exits with the tests' status.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
