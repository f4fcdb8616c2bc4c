package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ExampleConfigPath is the example bridge configuration, relative to the
// repository root: the one README.md shows, scripts/demo.sh runs and the
// tests use (adding to it or overriding keys).
const ExampleConfigPath = "deploy/examples/bridge.yaml"

// ExampleConfig returns the text of the example bridge configuration.
func ExampleConfig(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), ExampleConfigPath))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return string(b)
}

// ExampleAccess returns the example configuration's access section: the
// line "access:" and every line up to the next top-level key, as written.
func ExampleAccess(t testing.TB) string {
	t.Helper()
	s, err := Section(ExampleConfig(t), "access")
	if err != nil {
		t.Fatalf("testenv: %s: %v", ExampleConfigPath, err)
	}
	return s
}

// Section returns the top-level section key of a YAML document as written:
// its "key:" line and the lines after it up to the next line that starts
// in the first column (blank lines at its end left out).
func Section(doc, key string) (string, error) {
	lines := strings.SplitAfter(doc, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, key+":") {
			start = i
			break
		}
	}
	if start < 0 {
		return "", fmt.Errorf("no top-level %s: section", key)
	}
	end := start + 1
	for end < len(lines) && (lines[end] == "" || lines[end] == "\n" || strings.HasPrefix(lines[end], " ") || strings.HasPrefix(lines[end], "\t")) {
		end++
	}
	for end > start+1 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	return strings.Join(lines[start:end], ""), nil
}
