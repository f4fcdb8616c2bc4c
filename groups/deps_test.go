package groups

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the policy pure: no networking, and nothing of
// this module but scope.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/registry-bridge/bridge/"
	for dep := range strings.FieldsSeq(string(out)) {
		switch {
		case dep == "net" || strings.HasPrefix(dep, "net/"), dep == "os/exec":
			t.Errorf("groups depends on %s", dep)
		case strings.HasPrefix(dep, module) && dep != module+"scope" && dep != module+"groups":
			t.Errorf("groups depends on %s; only scope is allowed", dep)
		}
	}
}
