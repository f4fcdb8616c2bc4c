package doctor_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps doctor outside the server: it checks from the outside
// and must reach neither httpapi nor go-redis (cmd/bridge hands it a ping).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/registry-bridge/bridge/doctor").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(dep, "github.com/registry-bridge/bridge/httpapi") || strings.HasPrefix(dep, "github.com/redis/") ||
			strings.HasPrefix(dep, "github.com/registry-bridge/bridge/internal/") {
			t.Errorf("doctor reaches %s", dep)
		}
	}
}
