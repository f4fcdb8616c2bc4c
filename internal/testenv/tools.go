package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Tool returns the path of a test tool: <repo root>/.tools/bin/name when
// scripts/install-deps.sh has built it there (the pinned versions), and
// otherwise whatever Require finds in PATH. The repository root is the
// nearest directory above the working directory that holds go.mod. Like
// Require, Tool fails the test with installHint when BRIDGE_E2E=1 and the
// tool is missing, and skips it otherwise.
func Tool(t testing.TB, name, installHint string) string {
	t.Helper()
	if dir, ok := toolsDir(); ok {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p
		}
	}
	return Require(t, name, installHint)
}

// RepoRoot returns the repository (module) root: the nearest directory
// above the working directory that holds go.mod. It fails the test if
// there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, ok := repoRoot()
	if !ok {
		t.Fatal("testenv: no go.mod above the working directory")
	}
	return root
}

// toolsDir returns <repo root>/.tools/bin, and whether a repository root
// was found.
func toolsDir() (string, bool) {
	root, ok := repoRoot()
	if !ok {
		return "", false
	}
	return filepath.Join(root, ".tools", "bin"), true
}

// repoRoot returns the nearest directory above the working directory that
// holds go.mod, and whether there is one.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
