package devidp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotImportedByProduct fails when a non-test package other than
// cmd/devidp reaches devidp: a development provider must never ship inside
// the bridge. Test files may import it.
func TestNotImportedByProduct(t *testing.T) {
	const module = "github.com/registry-bridge/bridge"
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{module + "/cmd/devidp": true, module + "/internal/devidp": true}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || allowed[fields[0]] {
			continue
		}
		for _, dep := range fields[1:] {
			if dep == module+"/internal/devidp" {
				t.Errorf("%s imports internal/devidp (development only)", fields[0])
			}
		}
	}
}
