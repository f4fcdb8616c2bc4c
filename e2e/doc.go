// Package e2e holds the end-to-end suite: the real bridge binary, built
// from cmd/bridge, with real Redis, in front of the real distribution
// registries (v3 with a rootcertbundle and x5c tokens, and Debian's 2.8),
// driven by the real clients skopeo, crane, regctl and oras and by
// Docker-like HTTP flows written with net/http. Nothing is mocked.
//
// The package has only tests. They skip unless BRIDGE_E2E=1; with it, a
// missing component fails them with an install hint
// (scripts/install-deps.sh installs everything).
//
// Usage:
//
//	scripts/install-deps.sh
//	BRIDGE_E2E=1 go test ./e2e/
//	BRIDGE_E2E=1 go test ./e2e/ -run 'TestClients/v3/crane' -v
//	BRIDGE_E2E=1 BRIDGE_E2E_BIN=/path/to/bridge go test ./e2e/   # test a prebuilt binary
package e2e
