package testenv

import (
	"os"
	"testing"
)

// SkipUnlessE2E skips t unless BRIDGE_E2E=1 (E2EEnv), so that a plain
// "go test ./..." on a laptop without the real components passes. Once
// enabled, tests must not skip: Require and Tool then fail the test, with an
// install hint, when a component is missing. The one exception is
// deploy/deploytest's TestImage, which checks an image that only `make
// image` builds (as root, with buildah): it skips unless BRIDGE_IMAGE names
// that image, whatever BRIDGE_E2E says.
func SkipUnlessE2E(t testing.TB) {
	t.Helper()
	if os.Getenv(E2EEnv) != "1" {
		t.Skipf("end-to-end test: set %s=1 to run it against real registries, clients and Redis", E2EEnv)
	}
}
