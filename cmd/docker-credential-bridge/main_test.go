package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return map[string]string{"DOCKER_CREDENTIAL_BRIDGE_DIR": dir, "DOCKER_CREDENTIAL_BRIDGE_NONINTERACTIVE": "1"}[k]
		}
	}
	for _, tt := range []struct {
		name        string
		args        []string
		stdin       string
		env         map[string]string
		code        int
		out, errOut string
	}{
		{"no arguments", nil, "", nil, 2, "", "usage:"},
		{"version", []string{"version"}, "", nil, 0, "docker-credential-bridge", ""},
		{"nothing stored, not interactive", []string{"get"}, "registry.test\n", nil, 1, "credentials not found", ""},
		{"list empty", []string{"list"}, "", nil, 0, "{}", ""},
		{"store then get", []string{"store"}, `{"ServerURL":"registry.test","Username":"robot","Secret":"rbp_x"}`, nil, 0, "", ""},
		{"get stored", []string{"get"}, "registry.test", nil, 0, `"Secret":"rbp_x"`, ""},
		{"unknown action", []string{"frobnicate"}, "", nil, 1, "unknown action", ""},
		{"bad lifetime", []string{"get"}, "registry.test", map[string]string{"DOCKER_CREDENTIAL_BRIDGE_LIFETIME": "soon"}, 2, "", "DOCKER_CREDENTIAL_BRIDGE_LIFETIME"},
		{"bad mode", []string{"get"}, "registry.test", map[string]string{"DOCKER_CREDENTIAL_BRIDGE_MODE": "both"}, 2, "", "mode"},
		{"login without registry", []string{"login"}, "", nil, 2, "", "usage:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tt.args, strings.NewReader(tt.stdin), &out, &errOut, env(tt.env))
			// An empty expectation means nothing may be written there.
			matches := func(got, want string) bool {
				if want == "" {
					return got == ""
				}
				return strings.Contains(got, want)
			}
			if code != tt.code || !matches(out.String(), tt.out) || !matches(errOut.String(), tt.errOut) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errOut.String(), tt.code, tt.out, tt.errOut)
			}
		})
	}
}
