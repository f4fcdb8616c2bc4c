// Package testenv runs the real components of the end-to-end suite on
// loopback for one test: Redis, the distribution registries (v3 and
// Debian's 2.8), long-running processes such as the bridge itself, and the
// registry clients skopeo, crane, regctl and oras. Nothing here is a fake:
// a hand-written stand-in would prove nothing about compatibility.
//
// Everything a helper starts lives in t.TempDir() and dies in t.Cleanup;
// a failing test gets the processes' output in its log. Binaries come from
// <repo root>/.tools/bin or PATH (Tool, Require). Tests that need them call
// SkipUnlessE2E first: without BRIDGE_E2E=1 they skip, with it a missing
// binary fails the test with an install hint. BuildBridge builds
// cmd/bridge once per test binary (or returns $BRIDGE_E2E_BIN); a package
// that uses it sets "func TestMain(m *testing.M) { testenv.Main(m) }" so
// the build is removed afterwards.
//
// Usage:
//
//	testenv.SkipUnlessE2E(t)
//	redis := testenv.Redis(t)
//	bridge := testenv.Start(t, testenv.Cmd{
//		Name:     "bridge",
//		Path:     bin,
//		Args:     []string{"serve", "--config", config},
//		ReadyURL: "http://localhost:5001/readyz",
//	})
//	host := testenv.RegistryV3(t, testenv.TokenAuth{
//		Realm:          "http://localhost:5001/token",
//		Service:        "registry.test",
//		Issuer:         "registry-bridge",
//		RootCertBundle: keys + "/signing.crt",
//	})
//	img := testenv.OCILayout(t, t.TempDir())
//	c := testenv.Crane(t)
//	out, err := c.Login(t.Context(), host, "alice", password)
//	out, err = c.Push(t.Context(), img, host+"/users/alice/app:v1")
package testenv
