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

// toolsDir returns <repo root>/.tools/bin, and whether a repository root
// was found.
func toolsDir() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".tools", "bin"), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
