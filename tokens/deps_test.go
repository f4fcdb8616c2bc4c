package tokens

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps tokens free of HTTP and of the packages that know
// users and groups (STYLE.md: tokens must not know users, groups or HTTP).
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/golang-jwt/jwt/v5") {
		t.Fatal("go list output does not hold golang-jwt; is the test reading the right package?")
	}
	const mod = "github.com/registry-bridge/bridge/"
	for _, d := range deps {
		forbidden := d == "net/http" ||
			(strings.HasPrefix(d, mod) && d != mod+"scope" && d != mod+"tokens")
		if forbidden {
			t.Errorf("tokens imports %s", d)
		}
	}
}
